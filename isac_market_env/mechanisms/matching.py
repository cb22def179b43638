"""Ascending-price many-to-many deferred acceptance: offRFW2M (Alg. 1) and onEBW2M (Alg. 2).

One engine serves both (DESIGN.md section 4). Each round:

1. every client that is not held ranks its live solutions by (expected) utility at its current bid
   for that solution (eq. 27/28 offline, eq. 49/50 online) and drops those violating its IR or risk
   bound (eq. 73/74); it proposes the best one (ties: lowest solution index). A held client
   proposes only a revived solution (step 3) it strictly prefers to the one it holds;
2. every BS that received proposals keeps the subset of held + new proposals maximising its
   (expected) utility (eq. 33+34 or 51+52) under its capacity and risk constraints (exact knapsack,
   eq. 37c-37f / 83c-83d), with at most one item per client; the rest are rejected (held clients
   can be displaced). A held client whose new proposal is kept leaves its former solution;
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
Every proposal is one exchange (it is answered); a displaced held client's notice is one more,
and so is a moving client's release of its former BS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from isac_market_env.mechanisms._jit import compile_or_warn, numba_jit
from isac_market_env.mechanisms.knapsack import (
    SEARCHED,
    SOLVERS,
    TOO_HARD,
    compiled_solver,
    solve_knapsack,
)
from isac_market_env.model.utilities import (
    bs_expected_contract_value,
    client_expected_utility,
    client_risk,
)

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
# search nodes before a BS's selection goes to HiGHS (``solve_knapsack``'s default)
NODE_LIMIT = 3_000
# a held client switches to a revived solution only for a gain above this (stability's tolerance)
SWITCH_GAIN = 1e-9
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


class AscendingMatching:
    """The matching as a state machine: one ``play_round`` per round (used by the RL envs).

    ``rule_proposals()`` gives the proposals the rule makes this round (one per free client);
    ``play_round(proposals, pays)`` lets the BSs answer them. A caller may replace one client's
    proposal and price (``pays`` defaults to the rule's current bids); a proposal at a price other
    than the rule's bid does not move the rule's bid when rejected.
    """

    def __init__(self, problem: MatchingProblem,
                 volunteer_estimator: VolunteerEstimator | None = None) -> None:
        p = self.problem = problem
        self.estimator = volunteer_estimator
        load_compiled_matching()  # compile before the clock starts (no-op after the first call)
        self.started = time.perf_counter()
        self.elapsed_s = 0.0
        self.bids = p.sol_start_bid.astype(np.float64).copy()
        self.step = np.maximum(p.bid_increment, p.bid_increment_fraction * p.sol_value)
        # a bundle larger than the BS's published supply can never be accepted
        presence = p.client_presence[p.sol_client]
        self.fits = ((p.sol_bandwidth_hz <= p.bs_cap_bandwidth_hz[p.sol_bs] * (1 + 1e-12))
                     & (p.sol_power_w <= p.bs_cap_power_w[p.sol_bs] * (1 + 1e-12))
                     & (presence * p.sol_bandwidth_hz
                        <= p.bs_risk_cap_bandwidth_hz[p.sol_bs] * (1 + 1e-12))
                     & (presence * p.sol_power_w <= p.bs_risk_cap_power_w[p.sol_bs] * (1 + 1e-12)))
        n_sol = len(p.sol_client)
        self.alive = (self.bids <= p.sol_value) & self.fits  # bid can still rise
        self.capped = np.zeros(n_sol, dtype=bool)  # re-proposable after a BS change
        self.capped_version = np.full(n_sol, -1, dtype=np.int64)
        self.revivals = np.zeros(n_sol, dtype=np.int64)
        self.bs_version = np.zeros(p.n_bss, dtype=np.int64)
        self.estimated_version = np.full(p.n_bss, -1, dtype=np.int64)  # of the published E[v]
        self.held = np.full(p.n_clients, -1, dtype=np.int64)  # client -> held solution
        self.held_pay = np.zeros(p.n_clients)
        self.volunteer_rate = np.zeros(p.n_bss)
        self.sol_presence = presence
        self.sol_risk_limit = p.client_risk_limit[p.sol_client]
        self.sol_threshold = p.client_utility_threshold[p.sol_client]
        self.risk_on = bool(np.any(np.isfinite(self.sol_risk_limit)))
        # knapsack rows per solution and capacities per BS (eq. 37c, 37d, 69, 70)
        self.sol_weights = np.vstack([p.sol_bandwidth_hz, p.sol_power_w,
                                      presence * p.sol_bandwidth_hz, presence * p.sol_power_w])
        self.bs_caps = np.column_stack([p.bs_cap_bandwidth_hz, p.bs_cap_power_w,
                                        p.bs_risk_cap_bandwidth_hz, p.bs_risk_cap_power_w])
        self.n_proposals = self.n_displacements = self.knapsack_calls = 0
        self.rounds = 0
        self.converged = n_sol == 0
        self.finished = n_sol == 0

    def utility(self, sols: IntArray, pay: FloatArray) -> FloatArray:
        """Clients' (expected) utility of ``sols`` at ``pay`` under the published E[v]."""
        p = self.problem
        return client_expected_utility(p.sol_value[sols], pay, self.sol_presence[sols],
                                       self.volunteer_rate[p.sol_bs[sols]],
                                       p.penalty_client_ratio, p.penalty_bs_ratio)

    def acceptable(self, sols: IntArray, pay: FloatArray) -> NDArray[np.bool_]:
        """IR (pay <= value), positive expected utility and the risk bound at ``pay``."""
        p = self.problem
        ok = (pay <= p.sol_value[sols] + 1e-12) & (self.utility(sols, pay) > 0)
        if self.risk_on:
            risk = client_risk(p.sol_value[sols], pay, self.sol_presence[sols],
                               self.volunteer_rate[p.sol_bs[sols]], self.sol_threshold[sols],
                               p.penalty_client_ratio, p.penalty_bs_ratio)
            ok &= risk <= self.sol_risk_limit[sols] + 1e-12
        return np.asarray(ok)

    def candidates(self) -> IntArray:
        """Solutions clients may propose now at the rule's bid.

        A free client may propose its live and revived solutions; a held client only a revived
        solution it strictly prefers to the one it holds (it goes back to a capped solution once
        that solution's BS has room; otherwise a Type 2 blocking pair can remain).
        """
        p = self.problem
        revived = (self.capped & (self.capped_version != self.bs_version[p.sol_bs])
                   & (self.revivals < p.max_revivals))
        holding = self.held[p.sol_client]
        free_sol = np.flatnonzero((self.alive | revived) & (holding < 0))
        switch = np.flatnonzero(revived & (holding >= 0) & (holding != np.arange(len(holding))))
        if switch.size:
            now = self.utility(holding[switch], self.held_pay[p.sol_client[switch]])
            switch = switch[self.utility(switch, self.bids[switch]) > now + SWITCH_GAIN]
            free_sol = np.union1d(free_sol, switch)
        if free_sol.size:
            free_sol = free_sol[self.acceptable(free_sol, self.bids[free_sol])]
        return free_sol

    def rule_proposals(self) -> IntArray:
        """Each free client's best acceptable solution (ties: lowest index)."""
        t0 = time.perf_counter()
        try:
            return self._rule_proposals()
        finally:
            self.elapsed_s += time.perf_counter() - t0

    def _rule_proposals(self) -> IntArray:
        propose = compiled_proposals()
        if propose is not None:
            p = self.problem
            return propose(self.capped, self.capped_version, self.bs_version, self.revivals,
                           p.max_revivals, self.alive, self.held, self.held_pay, self.bids,
                           p.sol_bs, p.sol_client, p.sol_value, self.sol_presence,
                           self.sol_threshold, self.sol_risk_limit, self.volunteer_rate,
                           p.penalty_client_ratio, p.penalty_bs_ratio, self.risk_on)
        free_sol = self.candidates()
        if free_sol.size == 0:
            return free_sol
        utility = self.utility(free_sol, self.bids[free_sol])
        clients = self.problem.sol_client[free_sol]
        starts = np.flatnonzero(np.r_[True, clients[1:] != clients[:-1]])
        best = np.maximum.reduceat(utility, starts)
        is_best = utility >= np.repeat(best, np.diff(np.r_[starts, len(clients)])) - 1e-12
        first = np.flatnonzero(is_best)
        _, pick = np.unique(clients[first], return_index=True)
        return free_sol[first[pick]]

    def play_round(self, proposals: IntArray, pays: FloatArray | None = None) -> None:
        """Let the BSs answer ``proposals`` (one per client); no proposals ends the matching."""
        if self.finished:
            raise RuntimeError("the matching has finished")
        t0 = time.perf_counter()
        p = self.problem
        if proposals.size == 0:
            self.converged = self.finished = True
            self.elapsed_s += time.perf_counter() - t0
            return
        self.rounds += 1
        pays = self.bids[proposals] if pays is None else np.asarray(pays, dtype=np.float64)
        at_rule_price = pays == self.bids[proposals]
        held, bids = self.held, self.bids
        proposals = np.ascontiguousarray(proposals, dtype=np.int64)
        self.revivals[proposals[self.capped[proposals]]] += 1
        self.n_proposals += len(proposals)
        rejected: list[IntArray] = []
        answered = np.unique(p.sol_bs[proposals]).tolist()
        released: set[int] = set()  # BSs a client left for a solution at another BS
        answer = compiled_answer()
        for j in answered:
            outcome = TOO_HARD
            if answer is not None:
                outcome, rej, left, n_displaced = answer(
                    j, proposals, pays, at_rule_price, held, self.held_pay, self.bs_version,
                    p.sol_bs, p.sol_client, self.sol_presence, self.sol_weights,
                    float(self.volunteer_rate[j]), self.bs_caps[j], p.penalty_client_ratio,
                    p.penalty_bs_ratio, NODE_LIMIT)
            if outcome == TOO_HARD:  # no numba, or an instance for HiGHS
                outcome, rej, left, n_displaced = self._answer_with_numpy(j, proposals, pays,
                                                                           at_rule_price)
            self.knapsack_calls += outcome in (SEARCHED, TOO_HARD)
            self.n_displacements += n_displaced
            released.update(left.tolist())
            rejected.append(rej)
        if self.estimator is not None:
            for j in sorted(released.union(answered)):
                if self.estimated_version[j] == self.bs_version[j]:
                    continue  # tentative set unchanged: so is its E[v]
                self.estimated_version[j] = self.bs_version[j]
                contracts = held[held >= 0]
                contracts = contracts[p.sol_bs[contracts] == j]
                self.volunteer_rate[j] = self.estimator(j, p.sol_client[contracts], contracts,
                                                        self.held_pay[p.sol_client[contracts]])
        if rejected:  # bid raises of rejected solutions
            rej = np.concatenate(rejected)
            raised = np.minimum(bids[rej] + self.step[rej], p.sol_value[rej])
            can_raise = (raised > bids[rej] + 1e-12) & self.acceptable(rej, raised)
            bids[rej[can_raise]] = raised[can_raise]
            stuck = rej[~can_raise]
            self.alive[stuck] = False
            self.capped[stuck] = True
            self.capped_version[stuck] = self.bs_version[p.sol_bs[stuck]]
        if self.rounds >= p.max_rounds:
            self.finished = True
        self.elapsed_s += time.perf_counter() - t0

    def _answer_with_numpy(self, j: int, proposals: IntArray, pays: FloatArray,
                           at_rule_price: NDArray[np.bool_]
                           ) -> tuple[int, IntArray, IntArray, int]:
        """BS ``j`` keeps the best subset of its held and new proposals (step 2 above).

        Updates the held solutions, payments and BS versions; returns (knapsack outcome,
        solutions whose bid may rise, BSs that clients left for ``j``, displacement exchanges).
        ``_answer_with_loops`` is its compiled twin.
        """
        p, held = self.problem, self.held
        held_here = held[held >= 0]
        held_here = held_here[p.sol_bs[held_here] == j]
        n_held = len(held_here)
        mask = p.sol_bs[proposals] == j
        new = proposals[mask]
        items = np.concatenate([held_here, new])
        prices = np.concatenate([self.held_pay[p.sol_client[held_here]], pays[mask]])
        values = bs_expected_contract_value(prices, self.sol_presence[items],
                                            self.volunteer_rate[j], p.penalty_client_ratio,
                                            p.penalty_bs_ratio)
        # a held client proposing another solution here gets at most one of the two
        before = held[p.sol_client[new]]  # held_here is sorted: solutions go by client
        same_bs = np.flatnonzero((before >= 0) & (p.sol_bs[np.maximum(before, 0)] == j))
        conflicts = np.column_stack([np.searchsorted(held_here, before[same_bs]),
                                     n_held + same_bs])
        incumbent = np.arange(len(items)) < n_held  # the held set still fits
        result = solve_knapsack(values, self.sol_weights[:, items], self.bs_caps[j],
                                node_limit=NODE_LIMIT, incumbent=incumbent, conflicts=conflicts)
        keep = result.selected
        if np.any(keep[:n_held] == 0) or np.any(keep[n_held:]):
            self.bs_version[j] += 1
        # a client that moves here from another BS tells that BS it leaves (one exchange)
        moved = before[keep[n_held:]]
        left = moved[(moved >= 0) & (p.sol_bs[np.maximum(moved, 0)] != j)]
        self.bs_version[p.sol_bs[left]] += 1
        held[p.sol_client[items[keep]]] = items[keep]
        self.held_pay[p.sol_client[items[keep]]] = prices[keep]
        # dropped held items: displaced, unless their client moved to a new item here
        dropped_held = held_here[~keep[:n_held]]
        displaced = dropped_held[held[p.sol_client[dropped_held]] == dropped_held]
        held[p.sol_client[displaced]] = -1
        # only rejections at the rule's bid move the rule's bid
        rejected = np.concatenate([displaced, new[~keep[n_held:] & at_rule_price[mask]]])
        outcome = SOLVERS.index(result.solver)
        return outcome, rejected, p.sol_bs[left], len(left) + len(displaced)

    def run(self) -> MatchingResult:
        """Play rule rounds until the matching finishes."""
        while not self.finished:
            self.play_round(self.rule_proposals())
        return self.result()

    def result(self) -> MatchingResult:
        matched = self.held >= 0
        payment = np.where(matched, self.held_pay, 0.0)
        return MatchingResult(self.held.copy(), payment, self.bids.copy(),
                              self.volunteer_rate.copy(), self.rounds, self.converged,
                              self.n_proposals, self.n_displacements, self.knapsack_calls,
                              self.elapsed_s * 1e3)


def run_matching(problem: MatchingProblem,
                 volunteer_estimator: VolunteerEstimator | None = None) -> MatchingResult:
    """Run the ascending-price deferred acceptance to convergence (or ``max_rounds``)."""
    if len(problem.sol_client) == 0:
        return empty_result(problem)
    return AscendingMatching(problem, volunteer_estimator).run()


def _answer_with_loops(j: int, proposals: Any, pays: Any, at_rule_price: Any, held: Any,
                       held_pay: Any, bs_version: Any, sol_bs: Any, sol_client: Any,
                       sol_presence: Any, sol_weights: Any, volunteer_rate: float, caps: Any,
                       penalty_client_ratio: float, penalty_bs_ratio: float, node_limit: int
                       ) -> tuple[int, Any, Any, int]:
    """``AscendingMatching._answer_with_numpy`` in loops, for numba (compiled only).

    Returns its (outcome, rejected, left BSs, displacements); an instance the branch and bound
    leaves to HiGHS returns ``TOO_HARD`` before changing anything, and the numpy twin takes over.
    """
    held_here = np.empty(len(held), dtype=np.int64)
    n_held = 0
    for c in range(len(held)):  # by client, hence by solution
        if held[c] >= 0 and sol_bs[held[c]] == j:
            held_here[n_held] = held[c]
            n_held += 1
    slot = np.empty(len(proposals), dtype=np.int64)  # positions of the new proposals here
    n_new = 0
    for k in range(len(proposals)):
        if sol_bs[proposals[k]] == j:
            slot[n_new] = k
            n_new += 1
    n = n_held + n_new
    items = np.empty(n, dtype=np.int64)
    prices = np.empty(n)
    for i in range(n_held):
        items[i] = held_here[i]
        prices[i] = held_pay[sol_client[held_here[i]]]
    for k in range(n_new):
        items[n_held + k] = proposals[slot[k]]
        prices[n_held + k] = pays[slot[k]]
    values = np.empty(n)
    weights = np.empty((sol_weights.shape[0], n))
    for i in range(n):
        a = sol_presence[items[i]]
        share = ((1.0 - volunteer_rate) * a + (1.0 - a) * penalty_client_ratio
                 - a * volunteer_rate * penalty_bs_ratio)  # bs_expected_contract_value
        values[i] = prices[i] * share
        for r in range(sol_weights.shape[0]):
            weights[r, i] = sol_weights[r, items[i]]
    before = np.empty(n_new, dtype=np.int64)
    pair_a = np.empty(n_new, dtype=np.int64)
    pair_b = np.empty(n_new, dtype=np.int64)
    n_pairs = 0
    for k in range(n_new):
        before[k] = held[sol_client[items[n_held + k]]]
        if before[k] >= 0 and sol_bs[before[k]] == j:
            for i in range(n_held):
                if held_here[i] == before[k]:
                    pair_a[n_pairs] = i
            pair_b[n_pairs] = n_held + k
            n_pairs += 1
    start = np.zeros(n, dtype=np.int8)
    start[:n_held] = 1
    keep, _, outcome = _solve_kernel(values, weights, caps, pair_a[:n_pairs], pair_b[:n_pairs],
                                     start, True, node_limit)
    if outcome == TOO_HARD:
        return outcome, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), 0
    changed = False
    for i in range(n):
        if (i < n_held) != (keep[i] == 1):
            changed = True
    if changed:
        bs_version[j] += 1
    left_mask = np.zeros(len(bs_version), dtype=np.bool_)
    left = []
    for k in range(n_new):
        if keep[n_held + k] and before[k] >= 0 and sol_bs[before[k]] != j:
            left_mask[sol_bs[before[k]]] = True
            left.append(sol_bs[before[k]])
    for b in range(len(bs_version)):
        if left_mask[b]:
            bs_version[b] += 1
    for i in range(n):
        if keep[i]:
            held[sol_client[items[i]]] = items[i]
            held_pay[sol_client[items[i]]] = prices[i]
    rejected = []
    for i in range(n_held):
        if not keep[i] and held[sol_client[held_here[i]]] == held_here[i]:
            held[sol_client[held_here[i]]] = -1
            rejected.append(held_here[i])
    n_displaced = len(left) + len(rejected)
    for k in range(n_new):
        if not keep[n_held + k] and at_rule_price[slot[k]]:
            rejected.append(items[n_held + k])
    rejected_array = np.empty(len(rejected), dtype=np.int64)
    for i in range(len(rejected)):
        rejected_array[i] = rejected[i]
    left_array = np.empty(len(left), dtype=np.int64)
    for i in range(len(left)):
        left_array[i] = left[i]
    return outcome, rejected_array, left_array, n_displaced


def _proposals_with_loops(capped: Any, capped_version: Any, bs_version: Any, revivals: Any,
                          max_revivals: int, alive: Any, held: Any, held_pay: Any, bids: Any,
                          sol_bs: Any, sol_client: Any, sol_value: Any, sol_presence: Any,
                          sol_threshold: Any, sol_risk_limit: Any, volunteer_rate: Any,
                          penalty_client_ratio: float, penalty_bs_ratio: float, risk_on: bool
                          ) -> Any:
    """``candidates`` + ``_rule_proposals`` of ``AscendingMatching`` in loops, for numba.

    Compiled only; the same eligibility tests, utilities (eq. 27/28) and risks (eq. 73/74) with
    the same floating-point operations, so the same proposals.
    """
    n_sol = len(sol_client)
    proposals = []
    utility = np.empty(n_sol)
    eligible = np.zeros(n_sol, dtype=np.bool_)
    start = 0
    while start < n_sol:
        client = sol_client[start]
        stop = start
        while stop < n_sol and sol_client[stop] == client:
            stop += 1
        holding = held[client]
        best = -np.inf
        for s in range(start, stop):
            v = volunteer_rate[sol_bs[s]]
            a = sol_presence[s]
            pay = bids[s]
            revived = (capped[s] and capped_version[s] != bs_version[sol_bs[s]]
                       and revivals[s] < max_revivals)
            u = (a * (1.0 - v) * (sol_value[s] - pay) - (1.0 - a) * penalty_client_ratio * pay
                 + a * v * penalty_bs_ratio * pay)
            if holding < 0:
                ok = alive[s] or revived
            elif revived and holding != s:
                hv = volunteer_rate[sol_bs[holding]]
                ha = sol_presence[holding]
                hp = held_pay[client]
                now = (ha * (1.0 - hv) * (sol_value[holding] - hp)
                       - (1.0 - ha) * penalty_client_ratio * hp + ha * hv * penalty_bs_ratio * hp)
                ok = u > now + SWITCH_GAIN
            else:
                ok = False
            ok = ok and pay <= sol_value[s] + 1e-12 and u > 0
            if ok and risk_on:
                u_max = max(sol_value[s] - pay, penalty_bs_ratio * pay)
                span = u_max - sol_threshold[s]
                risk = (u_max - u) / span if span > 0 else np.inf
                ok = risk <= sol_risk_limit[s] + 1e-12
            eligible[s] = ok
            if ok:
                utility[s] = u
                best = max(best, u)
        for s in range(start, stop):
            if eligible[s] and utility[s] >= best - 1e-12:
                proposals.append(s)
                break
        start = stop
    out = np.empty(len(proposals), dtype=np.int64)
    for i in range(len(proposals)):
        out[i] = proposals[i]
    return out


# the compiled knapsack solver that the compiled ``_answer_with_loops`` calls (set on first use)
_solve_kernel: Any = None
_ANSWER: list[Callable[..., tuple[int, IntArray, IntArray, int]] | None] = []
_PROPOSALS: list[Callable[..., IntArray] | None] = []


def load_compiled_matching() -> bool:
    """Compile (or load from numba's cache) the matching's inner loops now; False without numba.

    Called before any timed region, so that no reported running time includes compilation.
    """
    return compiled_answer() is not None and compiled_proposals() is not None


def compiled_answer() -> Callable[..., tuple[int, IntArray, IntArray, int]] | None:
    """The compiled ``_answer_with_loops``, or None (numba missing or turned off)."""
    if not _ANSWER:
        jit, solver = numba_jit(), compiled_solver()

        def build() -> Callable[..., tuple[int, IntArray, IntArray, int]]:
            global _solve_kernel
            _solve_kernel = solver
            kernel = jit(_answer_with_loops)  # type: ignore[misc]
            one = np.zeros(1, dtype=np.int64)  # compile for the argument types of the calls
            kernel(0, one, np.ones(1), np.ones(1, dtype=np.bool_), np.full(1, -1, dtype=np.int64),
                   np.zeros(1), np.zeros(1, dtype=np.int64), one, one, np.ones(1),
                   np.ones((4, 1)), 0.0, np.ones(4), 0.1, 0.1, NODE_LIMIT)
            return cast(Callable[..., tuple[int, IntArray, IntArray, int]], kernel)

        usable = jit is not None and solver is not None
        _ANSWER.append(compile_or_warn(build, "matching round") if usable else None)
    return _ANSWER[0]


def compiled_proposals() -> Callable[..., IntArray] | None:
    """The compiled ``_proposals_with_loops``, or None (numba missing or turned off)."""
    if not _PROPOSALS:
        jit = numba_jit()

        def build() -> Callable[..., IntArray]:
            kernel = jit(_proposals_with_loops)  # type: ignore[misc]
            one = np.zeros(1, dtype=np.int64)  # compile for the argument types of the calls
            flag = np.ones(1, dtype=np.bool_)
            kernel(flag, one, one, one, 10, flag, one, np.zeros(1), np.zeros(1), one, one,
                   np.ones(1), np.ones(1), np.zeros(1), np.full(1, np.inf), np.zeros(1), 0.1, 0.1,
                   True)
            return cast(Callable[..., IntArray], kernel)

        _PROPOSALS.append(None if jit is None else compile_or_warn(build, "matching proposals"))
    return _PROPOSALS[0]
