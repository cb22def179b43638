"""Greedy-driven resource provisioning (paper Sec. V-A, "Greedy" benchmark [32]).

One round per transaction: each present client bids its value for its highest-value feasible
solution; each BS accepts the highest payments first while its resources last. With retries
(the ``greedy-retry`` mechanism, the strongest greedy we could make of it) a rejected client
goes on to its next most valuable solution, at any BS, until it is served or has none left:
every (client, solution) bid is considered once, highest value first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, eq=False)
class GreedyResult:
    client_solution: NDArray[np.int64]
    client_payment: NDArray[np.float64]
    n_proposals: int
    runtime_ms: float


def greedy_allocation(n_clients: int, sol_client: NDArray[np.int64], sol_bs: NDArray[np.int64],
                      sol_bandwidth_hz: NDArray[np.float64], sol_power_w: NDArray[np.float64],
                      sol_value: NDArray[np.float64], supply_bandwidth_hz: NDArray[np.float64],
                      supply_power_w: NDArray[np.float64], retry: bool = False
                      ) -> GreedyResult:
    """Run the one-shot greedy auction over the given solutions (sorted by client); with
    ``retry``, rejected clients bid on their next solutions (module docstring)."""
    started = time.perf_counter()
    chosen = np.full(n_clients, -1, dtype=np.int64)
    payment = np.zeros(n_clients)
    if len(sol_client) == 0:
        return GreedyResult(chosen, payment, 0, 0.0)
    if retry:
        bids = np.arange(len(sol_client))
    else:  # best solution per client: highest value, ties by lowest index
        order = np.lexsort((np.arange(len(sol_client)), -sol_value, sol_client))
        bids = order[np.r_[True, sol_client[order][1:] != sol_client[order][:-1]]]
    # BSs accept highest payments first (ties: lowest client index, then lowest solution)
    left_b = supply_bandwidth_hz.astype(np.float64).copy()
    left_p = supply_power_w.astype(np.float64).copy()
    n_proposals = 0
    for s in bids[np.lexsort((bids, sol_client[bids], -sol_value[bids]))].tolist():
        c = sol_client[s]
        if chosen[c] >= 0:
            continue  # served by a more valuable bid: it makes no further ones
        n_proposals += 1
        j = sol_bs[s]
        if sol_bandwidth_hz[s] <= left_b[j] + 1e-9 and sol_power_w[s] <= left_p[j] + 1e-9:
            left_b[j] -= sol_bandwidth_hz[s]
            left_p[j] -= sol_power_w[s]
            chosen[c] = s
            payment[c] = sol_value[s]
    return GreedyResult(chosen, payment, n_proposals, (time.perf_counter() - started) * 1e3)
