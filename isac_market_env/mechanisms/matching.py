"""Ascending-price many-to-many deferred acceptance: offRFW2M (Alg. 1) and onEBW2M (Alg. 2).

One engine serves both (DESIGN.md section 4). Each round:

1. every client that is not held ranks its live solutions by (expected) utility at its current bid
   for that solution (eq. 27/28 offline, eq. 49/50 online) and drops those violating its IR or risk
   bound (eq. 73/74); it proposes the best one (ties: lowest solution index). Held clients do not
   propose (deferred acceptance);
2. every BS that received proposals keeps the subset of held + new proposals maximising its
   (expected) utility (eq. 33+34 or 51+52) under its capacity and risk constraints (exact knapsack,
   eq. 37c-37f / 83c-83d); the rest are rejected (held clients can be displaced);
3. a rejected client raises its bid on that solution by Delta p (``bid_increment``, or
   ``bid_increment_fraction`` of the solution's value if larger), capped at its value; a
   solution whose bid cannot rise (cap reached, or the raise breaks the client's risk bound) is
   capped: it leaves the list until its BS's tentative set changes, after which the client may
   propose it again at the capped bid, at most ``max_revivals`` times (Alg. 1 keeps such solutions
   and stops only when a round changes nothing; without this, knapsack choices that are not
   substitutes leave blocking pairs; the budget guarantees termination when the published E[v]
   makes preferences depend on the matching);
4. BSs whose tentative set changed publish a new volunteer estimate E[v] (offline only).

The matching stops when a round has no proposal (no bid and no tentative set can change), or after
``max_rounds`` (reported in the result).
Every proposal is one exchange (it is answered); a displaced held client's notice is one more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from isac_market_env.mechanisms.knapsack import solve_knapsack
from isac_market_env.model.utilities import (
    bs_expected_contract_value,
    client_expected_utility,
    client_risk,
)

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
# (bs, contract clients, contract solutions, their bids) -> published volunteer probability
VolunteerEstimator = Callable[[int, IntArray, IntArray, FloatArray], float]


@dataclass(frozen=True, eq=False)
class MatchingProblem:
    """Arrays describing one matching instance; solutions sorted by client.

    ``client_presence`` is E[alpha]/E[beta] offline and 1 online. ``bs_cap_*`` are the booking
    limits ((1+O)B_j offline, residual supply online); ``bs_risk_cap_*`` bound the expected booked
    demand (rho * B_j, eq. 69/70), ``inf`` when risk control is off. ``client_risk_limit`` is
    rho_3 / rho_4 per client (``inf`` = off) with thresholds ``client_utility_threshold``.
    """

    n_clients: int
    n_bss: int
    sol_client: IntArray
    sol_bs: IntArray
    sol_bandwidth_hz: FloatArray
    sol_power_w: FloatArray
    sol_value: FloatArray
    sol_start_bid: FloatArray
    client_presence: FloatArray
    client_risk_limit: FloatArray
    client_utility_threshold: FloatArray
    bs_cap_bandwidth_hz: FloatArray
    bs_cap_power_w: FloatArray
    bs_risk_cap_bandwidth_hz: FloatArray
    bs_risk_cap_power_w: FloatArray
    bid_increment: float
    bid_increment_fraction: float
    penalty_client_ratio: float
    penalty_bs_ratio: float
    max_rounds: int
    max_revivals: int = 10


@dataclass(frozen=True, eq=False)
class MatchingResult:
    """Final matching: per client its solution index (-1 = unmatched) and payment."""

    client_solution: IntArray
    client_payment: FloatArray
    final_bids: FloatArray
    bs_volunteer_rate: FloatArray
    rounds: int
    converged: bool
    n_proposals: int
    n_displacements: int
    knapsack_calls: int
    runtime_ms: float

    @property
    def n_exchanges(self) -> int:
        return self.n_proposals + self.n_displacements


def empty_result(problem: MatchingProblem) -> MatchingResult:
    return MatchingResult(np.full(problem.n_clients, -1, dtype=np.int64),
                          np.zeros(problem.n_clients), problem.sol_start_bid.copy(),
                          np.zeros(problem.n_bss), 0, True, 0, 0, 0, 0.0)


def run_matching(problem: MatchingProblem,
                 volunteer_estimator: VolunteerEstimator | None = None) -> MatchingResult:
    """Run the ascending-price deferred acceptance to convergence (or ``max_rounds``)."""
    started = time.perf_counter()
    p = problem
    n_sol = len(p.sol_client)
    if n_sol == 0:
        return empty_result(p)
    bids = p.sol_start_bid.astype(np.float64).copy()
    step = np.maximum(p.bid_increment, p.bid_increment_fraction * p.sol_value)
    # a bundle larger than the BS's published supply can never be accepted
    fits = ((p.sol_bandwidth_hz <= p.bs_cap_bandwidth_hz[p.sol_bs] * (1 + 1e-12))
            & (p.sol_power_w <= p.bs_cap_power_w[p.sol_bs] * (1 + 1e-12))
            & (p.client_presence[p.sol_client] * p.sol_bandwidth_hz
               <= p.bs_risk_cap_bandwidth_hz[p.sol_bs] * (1 + 1e-12))
            & (p.client_presence[p.sol_client] * p.sol_power_w
               <= p.bs_risk_cap_power_w[p.sol_bs] * (1 + 1e-12)))
    alive = (bids <= p.sol_value) & fits  # bid can still rise, or never proposed
    capped = np.zeros(n_sol, dtype=bool)  # bid cannot rise; re-proposable after a BS change
    capped_version = np.full(n_sol, -1, dtype=np.int64)
    revivals = np.zeros(n_sol, dtype=np.int64)
    bs_version = np.zeros(p.n_bss, dtype=np.int64)
    held = np.full(p.n_clients, -1, dtype=np.int64)  # client -> held solution
    volunteer_rate = np.zeros(p.n_bss)
    sol_presence = p.client_presence[p.sol_client]
    sol_risk_limit = p.client_risk_limit[p.sol_client]
    sol_threshold = p.client_utility_threshold[p.sol_client]
    risk_on = bool(np.any(np.isfinite(sol_risk_limit)))
    caps = np.vstack([p.bs_cap_bandwidth_hz, p.bs_cap_power_w, p.bs_risk_cap_bandwidth_hz,
                      p.bs_risk_cap_power_w])
    n_proposals = n_displacements = knapsack_calls = 0
    converged = False
    rounds = 0

    def acceptable(sols: IntArray, pay: FloatArray) -> NDArray[np.bool_]:
        """IR (pay <= value), positive expected utility and the risk bound at ``pay``."""
        vol = volunteer_rate[p.sol_bs[sols]]
        value = p.sol_value[sols]
        utility = client_expected_utility(value, pay, sol_presence[sols], vol,
                                          p.penalty_client_ratio, p.penalty_bs_ratio)
        ok = (pay <= value + 1e-12) & (utility > 0)
        if risk_on:
            risk = client_risk(value, pay, sol_presence[sols], vol, sol_threshold[sols],
                               p.penalty_client_ratio, p.penalty_bs_ratio)
            ok &= risk <= sol_risk_limit[sols] + 1e-12
        return np.asarray(ok)

    for rounds in range(1, p.max_rounds + 1):  # noqa: B007 - rounds is reported
        # 1. proposals of clients that are not held
        revived = (capped & (capped_version != bs_version[p.sol_bs])
                   & (revivals < p.max_revivals))
        free_sol = np.flatnonzero((alive | revived) & (held[p.sol_client] < 0))
        if free_sol.size:
            free_sol = free_sol[acceptable(free_sol, bids[free_sol])]
        if free_sol.size == 0:
            converged = True
            break
        utility = client_expected_utility(
            p.sol_value[free_sol], bids[free_sol], sol_presence[free_sol],
            volunteer_rate[p.sol_bs[free_sol]], p.penalty_client_ratio, p.penalty_bs_ratio)
        clients = p.sol_client[free_sol]
        starts = np.flatnonzero(np.r_[True, clients[1:] != clients[:-1]])
        best = np.maximum.reduceat(utility, starts)
        is_best = utility >= np.repeat(best, np.diff(np.r_[starts, len(clients)])) - 1e-12
        first = np.flatnonzero(is_best)
        _, pick = np.unique(clients[first], return_index=True)
        proposals = free_sol[first[pick]]
        revivals[proposals[capped[proposals]]] += 1
        n_proposals += len(proposals)
        # 2. BS-side selection
        rejected: list[IntArray] = []
        changed_bss = np.unique(p.sol_bs[proposals])
        for j in changed_bss.tolist():
            held_here = held[held >= 0]
            held_here = held_here[p.sol_bs[held_here] == j]
            new_here = proposals[p.sol_bs[proposals] == j]
            items = np.concatenate([held_here, new_here])
            presence = sol_presence[items]
            values = bs_expected_contract_value(bids[items], presence, volunteer_rate[j],
                                                p.penalty_client_ratio, p.penalty_bs_ratio)
            weights = np.vstack([p.sol_bandwidth_hz[items], p.sol_power_w[items],
                                 presence * p.sol_bandwidth_hz[items],
                                 presence * p.sol_power_w[items]])
            incumbent = np.arange(len(items)) < len(held_here)  # the held set still fits
            result = solve_knapsack(values, weights, caps[:, j], incumbent=incumbent)
            knapsack_calls += result.solver not in ("all-fit", "trivial")
            keep = result.selected
            if np.any(keep[: len(held_here)] == 0) or np.any(keep[len(held_here):]):
                bs_version[j] += 1
            held[p.sol_client[items[keep]]] = items[keep]
            dropped = items[~keep]
            n_displacements += int(np.count_nonzero(~keep[: len(held_here)]))
            held[p.sol_client[dropped]] = -1
            rejected.append(dropped)
            if volunteer_estimator is not None:
                contracts = held[held >= 0]
                contracts = contracts[p.sol_bs[contracts] == j]
                volunteer_rate[j] = volunteer_estimator(j, p.sol_client[contracts], contracts,
                                                        bids[contracts])
        # 3. bid raises of rejected solutions
        if rejected:
            rej = np.concatenate(rejected)
            raised = np.minimum(bids[rej] + step[rej], p.sol_value[rej])
            can_raise = (raised > bids[rej] + 1e-12) & acceptable(rej, raised)
            bids[rej[can_raise]] = raised[can_raise]
            stuck = rej[~can_raise]
            alive[stuck] = False
            capped[stuck] = True
            capped_version[stuck] = bs_version[p.sol_bs[stuck]]
    matched = held >= 0
    payment = np.zeros(p.n_clients)
    payment[matched] = bids[held[matched]]
    return MatchingResult(held, payment, bids, volunteer_rate, rounds, converged, n_proposals,
                          n_displacements, knapsack_calls,
                          (time.perf_counter() - started) * 1e3)
