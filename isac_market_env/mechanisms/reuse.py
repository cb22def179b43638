"""Spectrum trading with spatial reuse (seed 003, D-FRONT) in the ISAC market.

A BS may give the same bandwidth to several clients that do not conflict. Conflicts
(``ReuseModel``):

* ``angle`` (the default): the BS's uniform linear array (half-wavelength spacing, boresight
  along +x) separates two MUs whose spatial frequencies u = sin(theta) differ by at least its
  main-lobe half-width 2 / N_T: each then sits in the other's beam null. Closer MUs conflict.
  The conflict graph is a unit interval graph on u, so its maximal cliques are the windows
  [u_i, u_i + 2 / N_T) and the clique bound is exact: a selection whose every window fits the
  band has a conflict-free sub-channel assignment (``assign_subchannels``).
* ``distance``: the seed's protocol model, two MUs conflict on a band when they are closer than
  the interference range R_I (eq. 6-7). Cliques by Bron-Kerbosch; on a unit disk graph the
  clique bound is exact when every client needs more than half the band (then it is the
  independent-set constraint of eq. 10), a relaxation otherwise.

Power is not reused: a BS's power budget is shared by all its clients. A client of the
comm and sensing kinds of the same MU conflicts with itself (same direction, same place).

Mechanisms (every client bids its value and pays its bid, the seed's fixed bids; a BS's
revenue is then the value it delivers):

* ``dfront`` (Sec. IV-B): deferred acceptance; each round a BS keeps the maximum-weight
  feasible set (with full-band demands, the maximum-weight independent set) of its held and new
  proposers, exactly; rejected clients move to their next solution. Ties keep the set with less
  bandwidth, which leaves room for later proposers (the seed's evolving preferences: clients
  that conflict with the kept set fall behind, those that do not can still join).
* ``gale_shapley``: the same deferred acceptance without reuse (every pair at a BS conflicts).
* ``cfront`` (Sec. III, eq. 8-10): the centralized ILP, maximum total bid over every candidate
  with one solution per client and the clique rows: the upper bound of the reuse market.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array, vstack

from isac_market_env.mechanisms._highs import highs_solve
from isac_market_env.mechanisms.deferred import (
    CAPACITY_TOLERANCE,
    TradeResult,
    deferred_acceptance,
    elapsed_ms,
    exact_fill,
    no_reuse,
)
from isac_market_env.physics.channel import pairwise_distance_m

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
ConflictModel = Literal["angle", "distance"]
CONFLICT_MODELS = ("angle", "distance")
CFRONT_MIP_GAP = 1e-6
CFRONT_TIME_LIMIT_S = 20.0


@dataclass(frozen=True, eq=False)
class ReuseModel:
    """Who conflicts with whom at each BS (module docstring). ``client_xy_m``: the position of
    each client's MU; ``bs_tx_antennas``: N_T per BS (angle model)."""

    conflict: ConflictModel
    client_xy_m: FloatArray
    bs_xy_m: FloatArray
    bs_tx_antennas: IntArray
    interference_range_m: float

    def spatial_frequency(self, clients: IntArray, j: int) -> FloatArray:
        """u = sin(theta) of each client's MU seen from BS ``j``'s array (boresight +x)."""
        d = self.client_xy_m[clients] - self.bs_xy_m[j]
        return np.asarray(d[:, 1] / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-12))

    def conflicts(self, clients: IntArray, j: int) -> NDArray[np.bool_]:
        """Pairwise conflict matrix of ``clients`` at BS ``j`` (diagonal True)."""
        if self.conflict == "angle":
            u = self.spatial_frequency(clients, j)
            return np.asarray(np.abs(u[:, None] - u[None, :]) < 2.0 / self.bs_tx_antennas[j])
        xy = self.client_xy_m[clients]
        return np.asarray(pairwise_distance_m(xy, xy) < self.interference_range_m)

    def cliques(self, clients: IntArray, j: int) -> list[IntArray]:
        """The maximal cliques of the conflict graph of ``clients`` at BS ``j`` (positions)."""
        n = len(clients)
        if n == 0:
            return []
        if self.conflict == "angle":
            u = self.spatial_frequency(clients, j)
            order = np.argsort(u, kind="stable")
            ends = np.searchsorted(u[order], u[order] + 2.0 / self.bs_tx_antennas[j], "left")
            out, last_end = [], -1
            for start, stop in enumerate(ends.tolist()):
                if stop > last_end:  # a window ending where the previous one ended is inside it
                    out.append(np.sort(order[start:stop]))
                    last_end = stop
            return out
        return bron_kerbosch(self.conflicts(clients, j))

    def clique_rows(self, sol_client: IntArray, j: int) -> list[IntArray]:
        """Cliques over solutions (positions into ``sol_client``): a clique of clients holds
        every solution of its members."""
        clients, which = np.unique(sol_client, return_inverse=True)
        return [np.flatnonzero(np.isin(which, c)) for c in self.cliques(clients, j)]


def bron_kerbosch(adjacent: NDArray[np.bool_]) -> list[IntArray]:
    """Every maximal clique of the graph ``adjacent`` (Bron-Kerbosch with pivoting)."""
    n = len(adjacent)
    neighbours = [set(np.flatnonzero(adjacent[i]).tolist()) - {i} for i in range(n)]
    out: list[IntArray] = []

    def expand(r: list[int], p: set[int], x: set[int]) -> None:
        if not p and not x:
            out.append(np.array(sorted(r), dtype=np.int64))
            return
        pivot = max(p | x, key=lambda v: len(neighbours[v] & p))
        for v in sorted(p - neighbours[pivot]):
            expand([*r, v], p & neighbours[v], x & neighbours[v])
            p = p - {v}
            x = x | {v}

    expand([], set(range(n)), set())
    return out


def _reuse_cliques(model: ReuseModel | None,
                   sol_client: IntArray) -> Callable[[int, IntArray], list[IntArray]]:
    def cliques_of(j: int, pool: IntArray) -> list[IntArray]:
        if model is None:
            return no_reuse(j, pool)
        return model.clique_rows(sol_client[pool], j)

    return cliques_of


def deferred_trade(n_clients: int, sol_client: IntArray, sol_bs: IntArray,
                   sol_bandwidth_hz: FloatArray, sol_power_w: FloatArray, sol_value: FloatArray,
                   supply_bandwidth_hz: FloatArray, supply_power_w: FloatArray,
                   model: ReuseModel | None) -> TradeResult:
    """D-FRONT (``model`` given) or Gale-Shapley (``model=None``): clients propose by value,
    BSs keep the feasible set of largest total bid; every client pays its bid (its value)."""
    started = time.perf_counter()
    select = exact_fill(sol_value, sol_bandwidth_hz, sol_power_w, supply_bandwidth_hz,
                        supply_power_w, _reuse_cliques(model, sol_client))
    da = deferred_acceptance(n_clients, sol_client, sol_bs, sol_value, select)
    served = da.client_solution >= 0
    pay = np.where(served, sol_value[np.maximum(da.client_solution, 0)], 0.0)
    return TradeResult(da.client_solution, pay, da.n_proposals, da.rounds, da.converged,
                       elapsed_ms(started))


def cfront(n_clients: int, sol_client: IntArray, sol_bs: IntArray, sol_bandwidth_hz: FloatArray,
           sol_power_w: FloatArray, sol_value: FloatArray, supply_bandwidth_hz: FloatArray,
           supply_power_w: FloatArray, model: ReuseModel,
           time_limit_s: float = CFRONT_TIME_LIMIT_S) -> TradeResult:
    """C-FRONT (eq. 8-10): the value-maximising reuse allocation, exact to ``CFRONT_MIP_GAP``;
    ``welfare_bound`` is HiGHS's proven bound. Every client pays its bid (its value)."""
    started = time.perf_counter()
    n = len(sol_client)
    chosen = np.full(n_clients, -1, dtype=np.int64)
    if n == 0:
        return TradeResult(chosen, np.zeros(n_clients), 0, 0, True, 0.0, 0.0)
    cols = np.arange(n)
    clients, client_row = np.unique(sol_client, return_inverse=True)
    blocks = [csr_array((np.ones(n), (client_row, cols)), shape=(len(clients), n))]
    upper = [np.ones(len(clients))]
    n_bss = len(supply_bandwidth_hz)
    blocks.append(csr_array((sol_power_w, (sol_bs, cols)), shape=(n_bss, n)))
    upper.append(supply_power_w * (1 + CAPACITY_TOLERANCE))
    for j in range(n_bss):
        at_j = np.flatnonzero(sol_bs == j)
        rows = model.clique_rows(sol_client[at_j], j)
        if not rows:
            continue
        r = np.concatenate([np.full(len(c), k) for k, c in enumerate(rows)])
        c = np.concatenate([at_j[c] for c in rows])
        blocks.append(csr_array((sol_bandwidth_hz[c], (r, c)), shape=(len(rows), n)))
        upper.append(np.full(len(rows), supply_bandwidth_hz[j] * (1 + CAPACITY_TOLERANCE)))
    with highs_solve():
        res = milp(-sol_value, constraints=LinearConstraint(vstack(blocks).tocsr(), -np.inf,
                                                            np.concatenate(upper)),
                   integrality=np.ones(n), bounds=Bounds(0, 1),
                   options={"mip_rel_gap": CFRONT_MIP_GAP, "time_limit": time_limit_s})
    if res.x is None:  # pragma: no cover - the empty allocation is feasible
        raise RuntimeError(f"C-FRONT MILP failed: {res.message}")
    picked = np.flatnonzero(res.x > 0.5)
    chosen[sol_client[picked]] = picked
    pay = np.zeros(n_clients)
    pay[sol_client[picked]] = sol_value[picked]
    value = float(sol_value[picked].sum())
    dual = getattr(res, "mip_dual_bound", None)
    bound = max(value, -float(dual)) if dual is not None and np.isfinite(dual) else value
    return TradeResult(chosen, pay, len(clients) + len(picked), 1, True, elapsed_ms(started),
                       bound)


def assign_subchannels(u: FloatArray, subchannels: IntArray, half_width: float,
                       n_subchannels: int) -> list[IntArray] | None:
    """A conflict-free sub-channel assignment for clients at spatial frequencies ``u`` needing
    ``subchannels`` each (angle model), or None if the band has too few sub-channels.

    Interval-graph colouring: in increasing u, each client takes the lowest sub-channels not
    held by a conflicting (|du| < ``half_width``) client already placed; this needs exactly the
    largest clique's demand (the clique bound is exact)."""
    out: list[IntArray] = [np.zeros(0, dtype=np.int64)] * len(u)
    order = np.argsort(u, kind="stable")
    for pos, i in enumerate(order.tolist()):
        taken = np.zeros(n_subchannels, dtype=bool)
        for k in order[:pos].tolist():
            if abs(u[i] - u[k]) < half_width:
                taken[out[k]] = True
        free = np.flatnonzero(~taken)
        if len(free) < subchannels[i]:
            return None
        out[i] = free[:subchannels[i]]
    return out
