"""Fixed-price deferred acceptance and the BS selections the other seeds' mechanisms share.

``deferred_acceptance`` is many-to-one deferred acceptance without price changes: every
unmatched client proposes its next solution (highest ``preference`` first, each solution once);
every BS keeps, from its held and new proposals, the set its ``select`` rule returns and rejects
the rest (held clients can be displaced); it ends when no client has a proposal left. The
ascending-price matching of FRBank (``matching.py``) is a different engine: there a rejected
client raises its bid instead of moving on.

Selections (``select(bs, proposals) -> kept``):

* ``greedy_fill``: the BS ranks proposals by a key and accepts them in that order while its
  bandwidth and power last (responsive preferences with a resource quota).
* ``exact_fill``: the set of largest total bid within the BS's power and, for every clique of
  mutually conflicting clients, its bandwidth (``reuse.py``; without reuse one clique holds
  every client and the rows are the plain capacity). Exact: brute force up to
  ``BRUTE_FORCE_MAX`` proposals, HiGHS beyond.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp

from isac_market_env.mechanisms._highs import highs_solve

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
Select = Callable[[int, IntArray], NDArray[np.bool_]]
CAPACITY_TOLERANCE = 1e-9
BRUTE_FORCE_MAX = 10
EXACT_MIP_GAP = 1e-9


@dataclass(frozen=True, eq=False)
class TradeResult:
    """One online trade: each client's solution (an index into the arrays the mechanism was
    given, -1 if unserved) and payment, the exchanges, rounds and running time (ms);
    ``welfare_bound``: a certified upper bound on the value (the exact solvers only)."""

    client_solution: IntArray
    client_payment: FloatArray
    n_exchanges: int
    rounds: int
    converged: bool
    runtime_ms: float
    welfare_bound: float | None = None


@dataclass(frozen=True, eq=False)
class Acceptance:
    """The outcome of one ``deferred_acceptance`` run."""

    client_solution: IntArray
    rounds: int
    n_proposals: int
    converged: bool


def deferred_acceptance(n_clients: int, sol_client: IntArray, sol_bs: IntArray,
                        preference: FloatArray, select: Select,
                        max_rounds: int = 100_000) -> Acceptance:
    """Run fixed-price deferred acceptance over the given solutions (module docstring).

    A client's solutions are proposed in decreasing ``preference`` (ties: lowest index)."""
    order = np.lexsort((np.arange(len(sol_client)), -preference, sol_client))
    starts = np.searchsorted(sol_client[order], np.arange(n_clients + 1))
    nxt = starts[:-1].copy()
    end = starts[1:]
    chosen = np.full(n_clients, -1, dtype=np.int64)
    held: dict[int, IntArray] = {}
    rounds = proposals = 0
    while rounds < max_rounds:
        active = np.flatnonzero((chosen < 0) & (nxt < end))
        if active.size == 0:
            return Acceptance(chosen, rounds, proposals, True)
        rounds += 1
        new = order[nxt[active]]
        nxt[active] += 1
        proposals += len(new)
        for j in np.unique(sol_bs[new]).tolist():
            pool = np.concatenate([held.get(j, np.zeros(0, dtype=np.int64)),
                                   new[sol_bs[new] == j]])
            keep = select(j, pool)
            kept, dropped = pool[keep], pool[~keep]
            held[j] = kept
            chosen[sol_client[kept]] = kept
            chosen[sol_client[dropped]] = -1
    return Acceptance(chosen, rounds, proposals, False)


def greedy_fill(key: FloatArray, sol_bandwidth: FloatArray, sol_power: FloatArray,
                cap_bandwidth: FloatArray, cap_power: FloatArray) -> Select:
    """A BS accepts proposals by decreasing ``key`` (ties: lowest index) while they fit."""

    def select(j: int, pool: IntArray) -> NDArray[np.bool_]:
        keep = np.zeros(len(pool), dtype=bool)
        left_b, left_p = float(cap_bandwidth[j]), float(cap_power[j])
        for k in np.lexsort((pool, -key[pool])).tolist():
            s = pool[k]
            if (sol_bandwidth[s] <= left_b * (1 + CAPACITY_TOLERANCE)
                    and sol_power[s] <= left_p * (1 + CAPACITY_TOLERANCE)):
                left_b -= sol_bandwidth[s]
                left_p -= sol_power[s]
                keep[k] = True
        return keep

    return select


def best_subset(bid: FloatArray, bandwidth: FloatArray, power: FloatArray,
                cliques: Sequence[IntArray], cap_bandwidth: float, cap_power: float
                ) -> NDArray[np.bool_]:
    """The subset of largest total ``bid`` with ``power`` within ``cap_power`` and, for every
    clique (positions into the arrays), its ``bandwidth`` within ``cap_bandwidth``.

    Where several subsets tie, the one using the least bandwidth is kept (it leaves the most
    room for later proposals: D-FRONT's "promising highest revenue in the future rounds")."""
    n = len(bid)
    b_cap = cap_bandwidth * (1 + CAPACITY_TOLERANCE)
    p_cap = cap_power * (1 + CAPACITY_TOLERANCE)
    if n == 0:
        return np.zeros(0, dtype=bool)
    everyone = np.ones(n, dtype=bool)
    if power.sum() <= p_cap and all(bandwidth[c].sum() <= b_cap for c in cliques):
        return everyone
    tie = 1e-9 * bid.max() / max(float(bandwidth.sum()), 1e-300)
    score = bid - tie * bandwidth
    if n <= BRUTE_FORCE_MAX:
        masks = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(bool)
        ok = masks.astype(np.float64) @ power <= p_cap
        for c in cliques:
            ok &= masks[:, c].astype(np.float64) @ bandwidth[c] <= b_cap
        value = np.where(ok, masks.astype(np.float64) @ score, -np.inf)
        return np.asarray(masks[int(np.argmax(value))])
    rows = [power] + [np.where(np.isin(np.arange(n), c), bandwidth, 0.0) for c in cliques]
    upper = [p_cap] + [b_cap] * len(cliques)
    with highs_solve():
        res = milp(-score, constraints=LinearConstraint(np.vstack(rows), -np.inf, upper),
                   integrality=np.ones(n), bounds=Bounds(0, 1),
                   options={"mip_rel_gap": EXACT_MIP_GAP})
    if res.x is None:  # pragma: no cover - the empty set is feasible
        raise RuntimeError(f"BS selection MILP failed: {res.message}")
    return np.asarray(res.x > 0.5)


def exact_fill(bid: FloatArray, sol_bandwidth: FloatArray, sol_power: FloatArray,
               cap_bandwidth: FloatArray, cap_power: FloatArray,
               cliques_of: Callable[[int, IntArray], list[IntArray]]) -> Select:
    """A BS keeps the proposals of largest total bid that fit (``best_subset``);
    ``cliques_of(bs, pool)`` gives the conflict cliques of the pool (positions into it)."""

    def select(j: int, pool: IntArray) -> NDArray[np.bool_]:
        return best_subset(bid[pool], sol_bandwidth[pool], sol_power[pool],
                           cliques_of(j, pool), float(cap_bandwidth[j]), float(cap_power[j]))

    return select


def no_reuse(j: int, pool: IntArray) -> list[IntArray]:
    """Without spatial reuse every proposal at a BS conflicts with every other."""
    return [np.arange(len(pool))]


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1e3
