"""Welfare upper bound: the value-maximising allocation of one transaction (exact MILP, HiGHS).

Not a market: no prices, no interactions. HiGHS stops at a relative gap of ``OPTIMAL_MIP_GAP`` or
after ``time_limit_s``; ``upper_bound`` is its proven dual bound, so every market's delivered
value in that transaction is at most ``upper_bound`` whatever the gap. Each client gets at most
one solution; clients listed together in an exclusivity group share that limit (a coalition and
its members' individual sensing requests); every BS's bandwidth and power stay within its real
supply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array, vstack

from isac_market_env.mechanisms._highs import highs_solve

OPTIMAL_MIP_GAP = 1e-3
OPTIMAL_TIME_LIMIT_S = 5.0


@dataclass(frozen=True, eq=False)
class OptimalResult:
    selected: NDArray[np.int64]  # indices of chosen solutions
    value: float
    upper_bound: float
    runtime_ms: float


def optimal_allocation(sol_client: NDArray[np.int64], sol_bs: NDArray[np.int64],
                       sol_bandwidth_hz: NDArray[np.float64], sol_power_w: NDArray[np.float64],
                       sol_value: NDArray[np.float64], supply_bandwidth_hz: NDArray[np.float64],
                       supply_power_w: NDArray[np.float64],
                       exclusive_groups: list[NDArray[np.int64]] | None = None,
                       time_limit_s: float = OPTIMAL_TIME_LIMIT_S,
                       mip_rel_gap: float = OPTIMAL_MIP_GAP) -> OptimalResult:
    """Maximise delivered value; ``exclusive_groups`` lists client sets served at most once."""
    started = time.perf_counter()
    n = len(sol_client)
    if n == 0:
        return OptimalResult(np.zeros(0, dtype=np.int64), 0.0, 0.0, 0.0)
    clients, client_row = np.unique(sol_client, return_inverse=True)
    cols = np.arange(n)
    one_each = csr_array((np.ones(n), (client_row, cols)), shape=(len(clients), n))
    n_bss = len(supply_bandwidth_hz)
    capacity = vstack([csr_array((sol_bandwidth_hz, (sol_bs, cols)), shape=(n_bss, n)),
                       csr_array((sol_power_w, (sol_bs, cols)), shape=(n_bss, n))])
    blocks = [one_each, capacity]
    upper = [np.ones(len(clients)), np.r_[supply_bandwidth_hz, supply_power_w]]
    if exclusive_groups:
        rows, cs = [], []
        for g, group in enumerate(exclusive_groups):
            hit = np.flatnonzero(np.isin(sol_client, group))
            rows.append(np.full(len(hit), g))
            cs.append(hit)
        r, c = np.concatenate(rows), np.concatenate(cs)
        blocks.append(csr_array((np.ones(len(r)), (r, c)), shape=(len(exclusive_groups), n)))
        upper.append(np.ones(len(exclusive_groups)))
    a = vstack(blocks).tocsr()
    with highs_solve():
        res = milp(-sol_value, constraints=LinearConstraint(a, -np.inf, np.concatenate(upper)),
                   integrality=np.ones(n), bounds=Bounds(0, 1),
                   options={"mip_rel_gap": mip_rel_gap, "time_limit": time_limit_s})
    if res.x is None:  # pragma: no cover - the empty allocation is feasible
        raise RuntimeError(f"optimal allocation MILP failed: {res.message}")
    chosen = np.flatnonzero(res.x > 0.5)
    value = float(sol_value[chosen].sum())
    dual = getattr(res, "mip_dual_bound", None)
    bound_value: float = value
    if dual is not None and np.isfinite(dual):
        bound_value = max(value, -float(dual))
    return OptimalResult(chosen, value, bound_value, (time.perf_counter() - started) * 1e3)
