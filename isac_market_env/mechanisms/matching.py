"""Ascending-price many-to-many deferred acceptance: offRFW2M (Alg. 1) and onEBW2M (Alg. 2).

One engine serves both (docs/model.md, offRFW2M and onEBW2M). Each round:

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

With numba installed (the ``fast`` extra) the loops run compiled: ``_proposals_with_loops``
(step 1), ``_answer_with_loops`` (step 2), ``_raise_with_loops`` (step 3),
``_volunteer_rate_with_loops`` (step 4) and whole runs of rounds (``_rounds_with_loops``, up to
the next round in which a bidding agent's client must choose), on the typed records
``SolutionTable``, ``BSTable``, ``MatchingTerms`` and ``MatchingState``. They repeat the numpy
methods operation for operation (raising bids is one function for both); tests check that
episodes and env rollouts are identical.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from isac_market_env.mechanisms._jit import (
    compile_or_warn,
    compiled_loops_enabled,
    cut,
    numba_jit,
    numba_prange,
    shared_kernel,
    threads_available,
)
from isac_market_env.mechanisms.knapsack import (
    DEFAULT_NODE_LIMIT,
    PROVEN,
    SEARCHED,
    SOLVERS,
    TOO_HARD,
    TYPED,
    compiled_solver,
    load_compiled_solver,
    solve_knapsack,
)
from isac_market_env.mechanisms.volunteers import (
    VolunteerKernels,
    VolunteerModel,
    compiled_volunteer_kernels,
)
from isac_market_env.model.utilities import (
    bs_expected_contract_value,
    client_expected_utility,
    client_risk,
)
from isac_market_env.validation import check_integer

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
# a held client switches to a revived solution only for a gain above this (stability's tolerance)
SWITCH_GAIN = 1e-9
# a bid blocked by the client's limit rises to that limit, found to within 2**-40 of the step, if
# that gains more than this fraction of the step; else the solution is capped
LIMIT_BISECTIONS = 40
LIMIT_GAIN = 1e-6


class SolutionTable(NamedTuple):
    """Per solution of one matching, fixed for its whole run (the compiled loops' argument):
    BS, client, value, client's presence probability, utility threshold and risk limit, the
    knapsack rows (bandwidth, power, and both times presence), the bid step, and whether it
    fits the BS's published supply at all; and per client the index of its first solution
    (``client_start``, n_clients + 1 entries: solutions are sorted by client)."""

    bs: Any
    client: Any
    value: Any
    presence: Any
    threshold: Any
    risk_limit: Any
    weights: Any
    step: Any
    fits: Any
    client_start: Any


class BSTable(NamedTuple):
    """Per BS of one matching: its four capacities (eq. 37c-37f) and, for the published E[v],
    its real supply and the Monte Carlo uniforms per (sample, client)."""

    caps: Any
    supply_bandwidth_hz: Any
    supply_power_w: Any
    uniforms: Any


class MatchingTerms(NamedTuple):
    """The scalar terms of one matching (MatchingProblem's, and whether E[v] is published)."""

    max_rounds: int
    max_revivals: int
    penalty_client_ratio: float
    penalty_bs_ratio: float
    risk_on: bool
    node_limit: int
    estimate: bool
    exact_max_contracts: int
    per_client_rate: bool
    threads: int = 1  # > 1: the rule proposals and the BSs' selections on that many threads


class MatchingState(NamedTuple):
    """What the rounds change, as arrays the compiled loops update in place (the same arrays
    as ``AscendingMatching``'s attributes of these names). ``counters``: rounds, proposals,
    displacements, knapsack calls. ``live`` and ``live_count``: per client, the solutions the
    compiled proposals still visit (``_proposals_with_loops``); ``revivable``: per client, how
    many of its solutions are capped with revivals left. ``volunteer_rate``: each BS's
    published E[v]; ``held_rate``: each held client's own E[v] from its BS's last estimate."""

    counters: Any
    live: Any
    live_count: Any
    capped: Any
    capped_version: Any
    bs_version: Any
    revivals: Any
    revivable: Any
    alive: Any
    held: Any
    held_pay: Any
    bids: Any
    volunteer_rate: Any
    estimated_version: Any
    held_rate: Any


@dataclass(frozen=True, eq=False)
class MatchingProblem:
    """Arrays describing one matching instance; solutions sorted by client.

    ``client_presence`` is E[alpha]/E[beta] offline and 1 online. ``bs_cap_*`` are the booking
    limits ((1+O)B_j offline, residual supply online); ``bs_risk_cap_*`` bound the expected booked
    demand (rho * B_j, eq. 69/70), ``inf`` when risk control is off. ``client_risk_limit`` is
    rho_3 / rho_4 per client (``inf`` = off) with thresholds ``client_utility_threshold``.
    ``knapsack_node_limit`` is the branch-and-bound budget of each BS selection before the typed
    search or HiGHS takes over (any value gives an optimal selection; see ``MarketConfig``).
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
    knapsack_node_limit: int = DEFAULT_NODE_LIMIT
    volunteer_rate_per_client: bool = True

    def bid_steps(self) -> FloatArray:
        """Delta p per solution: ``max(bid_increment, bid_increment_fraction * value)``."""
        return np.maximum(self.bid_increment, self.bid_increment_fraction * self.sol_value)


@dataclass(frozen=True, eq=False)
class MatchingResult:
    """Final matching: per client its solution index (-1 = unmatched) and payment.

    ``knapsack_calls`` counts the BS selections that needed a solver (branch and bound, the typed
    search or HiGHS; trivial and all-fit ones are not counted), ``milp_calls`` those of them
    that got HiGHS's selection: from HiGHS, or (compiled) from a proof that it is the only one
    HiGHS may return (``knapsack._prove_highs_selection``), so that the count is the same with
    and without numba. ``client_volunteer_rate``: each matched client's E[v] at its BS (0
    unmatched).
    """

    client_solution: IntArray
    client_payment: FloatArray
    final_bids: FloatArray
    bs_volunteer_rate: FloatArray
    rounds: int
    converged: bool
    n_proposals: int
    n_displacements: int
    knapsack_calls: int
    milp_calls: int
    runtime_ms: float
    client_volunteer_rate: FloatArray

    def solution_volunteer_rate(self, sols: IntArray, sol_client: IntArray,
                                sol_bs: IntArray) -> FloatArray:
        """E[v] of ``sols``: a client's own for the solution it holds, else its BS's."""
        return valued_rate(sols, sol_client, sol_bs, self.client_solution,
                           self.client_volunteer_rate, self.bs_volunteer_rate)

    @property
    def n_exchanges(self) -> int:
        return self.n_proposals + self.n_displacements


def valued_rate(sols: IntArray, sol_client: IntArray, sol_bs: IntArray, held: IntArray,
                held_rate: FloatArray, bs_rate: FloatArray) -> FloatArray:
    """The E[v] each of ``sols`` is valued at: its client's own (``held_rate``) for the
    solution it holds, its BS's (``bs_rate``) for any other, a new proposal's (docs/model.md)."""
    clients = sol_client[sols]
    return np.asarray(np.where(held[clients] == sols, held_rate[clients], bs_rate[sol_bs[sols]]),
                      dtype=np.float64)


def empty_result(problem: MatchingProblem) -> MatchingResult:
    return MatchingResult(np.full(problem.n_clients, -1, dtype=np.int64),
                          np.zeros(problem.n_clients), problem.sol_start_bid.copy(),
                          np.zeros(problem.n_bss), 0, True, 0, 0, 0, 0, 0.0,
                          np.zeros(problem.n_clients))


class AscendingMatching:
    """The matching as a state machine: one ``play_round`` per round (used by the RL envs).

    ``rule_proposals()`` gives the proposals the rule makes this round (one per free client);
    ``play_round(proposals, pays)`` lets the BSs answer them. A caller may replace one client's
    proposal and price (``pays`` defaults to the rule's current bids); a proposal at a price other
    than the rule's bid does not move the rule's bid when rejected.
    """

    def __init__(self, problem: MatchingProblem,
                 volunteers: VolunteerModel | None = None, threads: int = 1) -> None:
        p = self.problem = problem
        self.volunteers = volunteers
        load_compiled_matching()  # compile before the clock starts (no-op after the first call)
        self.compiled = compiled_kernels() is not None  # chosen once, for the whole matching
        # the compiled rule rounds' proposals and selections on ``threads`` threads where numba
        # can run them (``threads_available``); the same rounds either way
        threads = check_integer("threads", threads, 1)
        self.threads = threads if threads > 1 and self.compiled and threads_available() else 1
        self.elapsed_s = 0.0
        self.bids = p.sol_start_bid.astype(np.float64).copy()
        self.step = p.bid_steps()
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
        self.client_start = np.searchsorted(p.sol_client, np.arange(p.n_clients + 1))
        # the compiled proposals visit only each client's ``live`` solutions, which it keeps
        # from ``client_start`` on (``live_count`` of them): those alive or capped with revivals
        # left (the others can never be proposed again: nothing revives ``alive``, only a
        # proposal is capped, revivals only grow); they drop the rest as they go
        self.live = np.arange(n_sol, dtype=np.int64)
        self.live_count = np.diff(self.client_start)
        self.capped_version = np.full(n_sol, -1, dtype=np.int64)
        self.revivals = np.zeros(n_sol, dtype=np.int64)
        self.revivable = np.zeros(p.n_clients, dtype=np.int64)  # capped, revivals left
        self.bs_version = np.zeros(p.n_bss, dtype=np.int64)
        self.estimated_version = np.full(p.n_bss, -1, dtype=np.int64)  # of the published E[v]
        self.held = np.full(p.n_clients, -1, dtype=np.int64)  # client -> held solution
        self.held_pay = np.zeros(p.n_clients)
        self.volunteer_rate = np.zeros(p.n_bss)
        self.held_rate = np.zeros(p.n_clients)
        self.sol_presence = presence
        self.sol_risk_limit = p.client_risk_limit[p.sol_client]
        self.sol_threshold = p.client_utility_threshold[p.sol_client]
        self.risk_on = bool(np.any(np.isfinite(self.sol_risk_limit)))
        # knapsack rows per solution and capacities per BS (eq. 37c, 37d, 69, 70)
        self.sol_weights = np.vstack([p.sol_bandwidth_hz, p.sol_power_w,
                                      presence * p.sol_bandwidth_hz, presence * p.sol_power_w])
        self.bs_caps = np.column_stack([p.bs_cap_bandwidth_hz, p.bs_cap_power_w,
                                        p.bs_risk_cap_bandwidth_hz, p.bs_risk_cap_power_w])
        self.n_proposals = self.n_displacements = self.knapsack_calls = self.milp_calls = 0
        self.rounds = 0
        self._proposals: IntArray | None = None  # this round's rule proposals, once computed
        self.converged = n_sol == 0
        self.finished = n_sol == 0
        v = volunteers
        self.solutions = SolutionTable(p.sol_bs, p.sol_client, p.sol_value, presence,
                                       self.sol_threshold, self.sol_risk_limit, self.sol_weights,
                                       self.step, self.fits, self.client_start)
        self.bs_table = BSTable(self.bs_caps,
                                np.zeros(0) if v is None else v.supply_bandwidth_hz,
                                np.zeros(0) if v is None else v.supply_power_w,
                                np.zeros((0, 0)) if v is None else v.uniforms)
        self.terms = MatchingTerms(int(p.max_rounds), int(p.max_revivals),
                                   float(p.penalty_client_ratio), float(p.penalty_bs_ratio),
                                   self.risk_on, int(p.knapsack_node_limit), v is not None,
                                   0 if v is None else int(v.exact_max_contracts),
                                   bool(p.volunteer_rate_per_client), self.threads)

    @property
    def kernels(self) -> Kernels | None:
        """The compiled loops if this matching runs them (``compiled``), else None."""
        return compiled_kernels() if self.compiled else None

    def state(self, counters: IntArray | None = None) -> MatchingState:
        """The mutable arrays as one record (no copies: the compiled loops write into them)."""
        return MatchingState(np.zeros(4, dtype=np.int64) if counters is None else counters,
                             self.live, self.live_count, self.capped, self.capped_version,
                             self.bs_version, self.revivals, self.revivable, self.alive,
                             self.held, self.held_pay, self.bids, self.volunteer_rate,
                             self.estimated_version, self.held_rate)

    def solution_rate(self, sols: IntArray) -> FloatArray:
        """The published E[v] each of ``sols`` is valued at (``valued_rate``)."""
        p = self.problem
        return valued_rate(sols, p.sol_client, p.sol_bs, self.held, self.held_rate,
                           self.volunteer_rate)

    def utility(self, sols: IntArray, pay: FloatArray) -> FloatArray:
        """Clients' (expected) utility of ``sols`` at ``pay`` under the published E[v]."""
        p = self.problem
        return client_expected_utility(p.sol_value[sols], pay, self.sol_presence[sols],
                                       self.solution_rate(sols), p.penalty_client_ratio,
                                       p.penalty_bs_ratio)

    def acceptable(self, sols: IntArray, pay: FloatArray) -> NDArray[np.bool_]:
        """IR (pay <= value), positive expected utility and the risk bound at ``pay``."""
        p = self.problem
        ok = (pay <= p.sol_value[sols] + 1e-12) & (self.utility(sols, pay) > 0)
        if self.risk_on:
            risk = client_risk(p.sol_value[sols], pay, self.sol_presence[sols],
                               self.solution_rate(sols), self.sol_threshold[sols],
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
        revived = self.revived(np.arange(len(p.sol_client)))
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
        """Each free client's best acceptable solution (ties: lowest index); computed once per
        round (a round is played by ``play_round`` or ``run_rounds`` only)."""
        if self._proposals is None:
            t0 = time.perf_counter()
            self._proposals = self._rule_proposals()
            self.elapsed_s += time.perf_counter() - t0
        return self._proposals.copy()

    def _rule_proposals(self) -> IntArray:
        kernels = self.kernels
        if kernels is not None:
            return kernels.proposals(self.state(), self.solutions, self.terms)
        return self._rule_proposals_with_numpy()

    def _rule_proposals_with_numpy(self) -> IntArray:
        """``_rule_proposals`` with numpy (``_proposals_with_loops`` is its compiled twin)."""
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
        """Let the BSs answer ``proposals`` (one per client); no proposals ends the matching.
        With the compiled loops the whole round is one compiled call (``_play_with_loops``)."""
        if self.finished:
            raise RuntimeError("the matching has finished")
        t0 = time.perf_counter()
        p = self.problem
        if proposals.size == 0:
            self.converged = self.finished = True
            self.elapsed_s += time.perf_counter() - t0
            return
        self._proposals = None
        proposals = np.ascontiguousarray(proposals, dtype=np.int64)
        pays = self.bids[proposals] if pays is None else np.asarray(pays, dtype=np.float64)
        at_rule_price = pays == self.bids[proposals]
        kernels = self.kernels
        if kernels is not None:
            counters = self._counters()
            status, position, rejected = kernels.play(proposals, pays, at_rule_price,
                                                      self.state(counters), self.solutions,
                                                      self.bs_table, self.terms)
            self._take_counters(counters)
            if status == INTERRUPTED:
                self._finish_interrupted(proposals, pays, at_rule_price, position, rejected)
        else:
            self.rounds += 1
            _count_revivals(proposals, self.state(), self.solutions, self.terms)
            self.n_proposals += len(proposals)
            answered = np.unique(p.sol_bs[proposals])
            self._raise_bids(self._answer(answered, proposals, pays, at_rule_price))
        if self.rounds >= p.max_rounds:
            self.finished = True
        self.elapsed_s += time.perf_counter() - t0

    def _counters(self) -> IntArray:
        """The counters the compiled loops update (``MatchingState.counters``)."""
        return np.array([self.rounds, self.n_proposals, self.n_displacements,
                         self.knapsack_calls], dtype=np.int64)

    def _take_counters(self, counters: IntArray) -> None:
        self.rounds, self.n_proposals, self.n_displacements, self.knapsack_calls = (
            int(c) for c in counters)

    def _finish_interrupted(self, proposals: IntArray, pays: FloatArray,
                            at_rule_price: NDArray[np.bool_], position: int,
                            rejected: IntArray) -> None:
        """Finish a round the compiled loops left at the BS in ``position`` among the answering
        BSs (its selection needs the typed search or HiGHS)."""
        answered = np.unique(self.problem.sol_bs[proposals])[position:]
        rest = self._answer(answered, proposals, pays, at_rule_price,
                            searched_out=int(answered[0]))
        self._raise_bids([rejected, *rest])

    def _answer(self, answered: IntArray, proposals: IntArray, pays: FloatArray,
                at_rule_price: NDArray[np.bool_], searched_out: int = -1) -> list[IntArray]:
        """The ``answered`` BSs answer in turn (step 2), then publish E[v] (step 4); returns the
        solutions whose bid may rise. ``searched_out``: a BS whose compiled search for this
        answer already ran out of nodes (it goes straight to the typed search or HiGHS)."""
        p = self.problem
        kernels = self.kernels
        state = self.state() if kernels is not None else None
        rejected: list[IntArray] = []
        for j in answered.tolist():
            outcome = TOO_HARD
            searched = j == searched_out
            if kernels is not None and not searched:
                outcome, rej, n_displaced = kernels.answer(
                    j, proposals, pays, at_rule_price, state, self.solutions, self.bs_table,
                    self.terms, ANSWER, _NO_SELECTION)
                searched = outcome == TOO_HARD
            if outcome == TOO_HARD:  # no numba, or an instance for HiGHS
                # the same search would run out of nodes again: a limit of 0 goes straight on to
                # the typed search or HiGHS
                outcome, rej, n_displaced = self._answer_with_numpy(
                    j, proposals, pays, at_rule_price, 0 if searched else p.knapsack_node_limit)
            self.knapsack_calls += outcome in (SEARCHED, TOO_HARD, TYPED, PROVEN)
            self.milp_calls += outcome in (TOO_HARD, PROVEN)
            self.n_displacements += n_displaced
            rejected.append(rej)
        self._publish_volunteer_rates()
        return rejected

    def _publish_volunteer_rates(self) -> None:
        """Step 4: every BS whose tentative set changed since its last estimate publishes E[v]
        (``_volunteer_rate_with_loops`` is the compiled twin)."""
        if self.volunteers is None:
            return
        p, held = self.problem, self.held
        all_contracts = held[held >= 0]
        for j in np.flatnonzero(self.estimated_version != self.bs_version).tolist():
            self.estimated_version[j] = self.bs_version[j]
            contracts = all_contracts[p.sol_bs[all_contracts] == j]
            clients = p.sol_client[contracts]
            self.volunteer_rate[j], own = self.volunteers.rates(
                j, clients, self.sol_presence[contracts], p.sol_bandwidth_hz[contracts],
                p.sol_power_w[contracts], p.penalty_bs_ratio * self.held_pay[clients])
            self.held_rate[clients] = own if p.volunteer_rate_per_client else \
                self.volunteer_rate[j]

    def _raise_bids(self, rejected: list[IntArray]) -> None:
        """Step 3: rejected solutions' bids rise by Delta p, or the solution is capped (one
        function, ``_raise_with_loops``: compiled with numba, plain Python without)."""
        if not rejected:
            return
        kernels = self.kernels
        raise_bids = _raise_with_loops if kernels is None else kernels.raise_bids
        raise_bids(np.concatenate(rejected), self.state(), self.solutions, self.terms)

    def _answer_with_numpy(self, j: int, proposals: IntArray, pays: FloatArray,
                           at_rule_price: NDArray[np.bool_], node_limit: int
                           ) -> tuple[int, IntArray, int]:
        """BS ``j`` keeps the best subset of its held and new proposals (step 2 above).

        Updates the held solutions, payments and BS versions; returns (knapsack outcome,
        solutions whose bid may rise, displacement exchanges).
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
        rates = np.concatenate([self.held_rate[p.sol_client[held_here]],
                                np.full(len(new), self.volunteer_rate[j])])
        values = bs_expected_contract_value(prices, self.sol_presence[items], rates,
                                            p.penalty_client_ratio, p.penalty_bs_ratio)
        # a held client proposing another solution here gets at most one of the two
        before = held[p.sol_client[new]]  # held_here is sorted: solutions go by client
        same_bs = np.flatnonzero((before >= 0) & (p.sol_bs[np.maximum(before, 0)] == j))
        conflicts = np.column_stack([np.searchsorted(held_here, before[same_bs]),
                                     n_held + same_bs])
        incumbent = np.arange(len(items)) < n_held  # the held set still fits
        result = solve_knapsack(values, self.sol_weights[:, items], self.bs_caps[j],
                                node_limit=node_limit, incumbent=incumbent,
                                conflicts=conflicts)
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
        return outcome, rejected, len(left) + len(displaced)

    def revived(self, sols: IntArray) -> NDArray[np.bool_]:
        """Per solution: capped, its BS's tentative set changed since, revivals left."""
        p = self.problem
        return np.asarray(self.capped[sols]
                          & (self.capped_version[sols] != self.bs_version[p.sol_bs[sols]])
                          & (self.revivals[sols] < p.max_revivals))

    def proposable(self, sols: IntArray) -> NDArray[np.bool_]:
        """Per solution: its client, if free, may propose it this round (live, or revived, and
        within the BS's published supply), whatever its utility."""
        return np.asarray((self.alive[sols] | self.revived(sols)) & self.fits[sols])

    def solutions_of(self, client: int) -> IntArray:
        """The solutions of ``client`` (contiguous: solutions are sorted by client); none for
        a client outside the matching (-1: no client)."""
        if not 0 <= client < self.problem.n_clients:
            return np.zeros(0, dtype=np.int64)
        return np.arange(self.client_start[client], self.client_start[client + 1],
                         dtype=np.int64)

    def must_choose(self, client: int, sols: IntArray | None = None) -> bool:
        """``client`` is free and has a solution it may propose this round: the rounds at which
        a bidding agent decides (``sols``: its ``solutions_of``, when the caller has them).
        ``_must_choose_with_loops`` is its compiled twin, called inside the compiled rounds
        (here, between rounds, numpy is faster than a call into compiled code)."""
        sols = self.solutions_of(client) if sols is None else sols
        return bool(self.held[client] < 0 and self.proposable(sols).any())

    def run(self) -> MatchingResult:
        """Play rule rounds until the matching finishes."""
        self.run_rounds()
        return self.result()

    def run_rounds(self, stop_client: int = -1) -> None:
        """Play rule rounds until the matching finishes or, for ``stop_client`` >= 0, until that
        client must choose (``must_choose``) at the start of a round."""
        kernels = self.kernels
        stop_sols = self.solutions_of(stop_client)  # none for -1
        while not self.finished and not (stop_client >= 0
                                         and self.must_choose(stop_client, stop_sols)):
            if kernels is not None:
                self._run_compiled(kernels, stop_sols)
            else:
                self.play_round(self.rule_proposals())

    def _run_compiled(self, kernels: Kernels, stop_sols: IntArray) -> None:
        """Rule rounds in one compiled call until the matching ends, the client of ``stop_sols``
        must choose, or a BS's selection needs the typed search or HiGHS; that round is then
        finished here."""
        t0 = time.perf_counter()
        self._proposals = None
        counters = self._counters()
        status, proposals, position, rejected = kernels.rounds(
            self.state(counters), self.solutions, self.bs_table, self.terms,
            stop_sols[0] if stop_sols.size else -1, stop_sols[-1] + 1 if stop_sols.size else -1)
        self._take_counters(counters)
        if status == CONVERGED:
            self.converged = self.finished = True
        elif status == INTERRUPTED:
            self._finish_interrupted(proposals, self.bids[proposals],
                                     np.ones(len(proposals), dtype=bool), position, rejected)
        if self.rounds >= self.problem.max_rounds:
            self.finished = True
        self.elapsed_s += time.perf_counter() - t0

    def result(self) -> MatchingResult:
        matched = self.held >= 0
        payment = np.where(matched, self.held_pay, 0.0)
        return MatchingResult(self.held.copy(), payment, self.bids.copy(),
                              self.volunteer_rate.copy(), self.rounds, self.converged,
                              self.n_proposals, self.n_displacements, self.knapsack_calls,
                              self.milp_calls, self.elapsed_s * 1e3,
                              np.where(matched, self.held_rate, 0.0))


def run_matching(problem: MatchingProblem, volunteers: VolunteerModel | None = None,
                 threads: int = 1) -> MatchingResult:
    """Run the ascending-price deferred acceptance to convergence (or ``max_rounds``); BSs
    publish E[v] with ``volunteers`` (offline with overbooking), else E[v] = 0. ``threads``:
    the rule rounds' proposals and the BSs' selections on that many threads, where numba can
    (the same result)."""
    if len(problem.sol_client) == 0:
        return empty_result(problem)
    return AscendingMatching(problem, volunteers, threads).run()


# what ``_answer_with_loops`` does: answer; only select (on a thread); answer with that selection
ANSWER, SELECT, COMMIT = 0, 1, 2
_NO_SELECTION = np.zeros(0, dtype=np.int64)


def _answer_with_loops(j: int, proposals: Any, pays: Any, at_rule_price: Any,
                       state: MatchingState, sols: SolutionTable, bss: BSTable,
                       terms: MatchingTerms, mode: int, selection: Any) -> tuple[int, Any, int]:
    """``AscendingMatching._answer_with_numpy`` in loops, for numba (compiled only).

    Returns its (outcome, rejected, displacements); an instance the branch and bound leaves to
    the typed search or HiGHS returns ``TOO_HARD`` before changing anything, and the numpy twin
    takes over. ``mode`` ``ANSWER`` (``selection`` unused); ``SELECT``: only the selection,
    written into ``selection`` (the kept flags of the BS's items, then the outcome), nothing
    else written (``_answers_on_threads`` runs it on threads); ``COMMIT``: the answer with
    that selection instead of a new one.
    """
    held, held_pay, bs_version = state.held, state.held_pay, state.bs_version
    sol_bs, sol_client, sol_presence, sol_weights = (sols.bs, sols.client, sols.presence,
                                                     sols.weights)
    volunteer_rate, caps = state.volunteer_rate[j], bss.caps[j]
    held_rate = state.held_rate
    penalty_client_ratio, penalty_bs_ratio = terms.penalty_client_ratio, terms.penalty_bs_ratio
    node_limit = terms.node_limit
    n_held = 0
    for c in range(len(held)):
        if held[c] >= 0 and sol_bs[held[c]] == j:
            n_held += 1
    n_new = 0
    for k in range(len(proposals)):
        if sol_bs[proposals[k]] == j:
            n_new += 1
    n = n_held + n_new
    # the small arrays, cut from one integer and one float buffer (``cut``)
    ints = np.empty(n_held + 4 * n_new + 2 * n, dtype=np.int64)
    held_here, at = _cut_kernel(ints, 0, n_held)
    slot, at = _cut_kernel(ints, at, n_new)  # positions of the new proposals here
    items, at = _cut_kernel(ints, at, n)
    before, at = _cut_kernel(ints, at, n_new)
    pair_a, at = _cut_kernel(ints, at, n_new)
    pair_b, at = _cut_kernel(ints, at, n_new)
    rejected, at = _cut_kernel(ints, at, n)  # every item is rejected at most once
    floats = np.empty(2 * n)
    prices, at = _cut_kernel(floats, 0, n)
    values, at = _cut_kernel(floats, at, n)
    i = 0
    for c in range(len(held)):  # by client, hence by solution
        if held[c] >= 0 and sol_bs[held[c]] == j:
            held_here[i] = held[c]
            i += 1
    i = 0
    for k in range(len(proposals)):
        if sol_bs[proposals[k]] == j:
            slot[i] = k
            i += 1
    for i in range(n_held):
        items[i] = held_here[i]
        prices[i] = held_pay[sol_client[held_here[i]]]
    for k in range(n_new):
        items[n_held + k] = proposals[slot[k]]
        prices[n_held + k] = pays[slot[k]]
    weights = np.empty((sol_weights.shape[0], n if mode != COMMIT else 0))
    for i in range(n if mode != COMMIT else 0):
        a = sol_presence[items[i]]
        # a held contract's own E[v], the BS's for a new proposal (``_answer_with_numpy``)
        rate = held_rate[sol_client[items[i]]] if i < n_held else volunteer_rate
        share = ((1.0 - rate) * a + (1.0 - a) * penalty_client_ratio
                 - a * rate * penalty_bs_ratio)  # bs_expected_contract_value
        values[i] = prices[i] * share
        for r in range(sol_weights.shape[0]):
            weights[r, i] = sol_weights[r, items[i]]
    n_pairs = 0
    for k in range(n_new):
        before[k] = held[sol_client[items[n_held + k]]]
        if before[k] >= 0 and sol_bs[before[k]] == j:
            for i in range(n_held):
                if held_here[i] == before[k]:
                    pair_a[n_pairs] = i
            pair_b[n_pairs] = n_held + k
            n_pairs += 1
    if mode == COMMIT:
        keep = np.empty(n, dtype=np.int8)
        for i in range(n):
            keep[i] = selection[i]
        outcome = selection[n]
    else:
        start = np.zeros(n, dtype=np.int8)
        start[:n_held] = 1
        keep, _, outcome = _solve_kernel(values, weights, caps, pair_a[:n_pairs],
                                         pair_b[:n_pairs], start, True, node_limit)
        if mode == SELECT:
            for i in range(n):
                selection[i] = keep[i]
            selection[n] = outcome
            return outcome, rejected[:0], 0
    if outcome == TOO_HARD:
        return outcome, np.empty(0, dtype=np.int64), 0
    changed = False
    for i in range(n):
        if (i < n_held) != (keep[i] == 1):
            changed = True
    if changed:
        bs_version[j] += 1
    left_mask = np.zeros(len(bs_version), dtype=np.bool_)
    n_left = 0
    for k in range(n_new):
        if keep[n_held + k] and before[k] >= 0 and sol_bs[before[k]] != j:
            left_mask[sol_bs[before[k]]] = True
            n_left += 1
    for b in range(len(bs_version)):
        if left_mask[b]:
            bs_version[b] += 1
    for i in range(n):
        if keep[i]:
            held[sol_client[items[i]]] = items[i]
            held_pay[sol_client[items[i]]] = prices[i]
    n_rejected = 0
    for i in range(n_held):
        if not keep[i] and held[sol_client[held_here[i]]] == held_here[i]:
            held[sol_client[held_here[i]]] = -1
            rejected[n_rejected] = held_here[i]
            n_rejected += 1
    n_displaced = n_left + n_rejected
    for k in range(n_new):
        if not keep[n_held + k] and at_rule_price[slot[k]]:
            rejected[n_rejected] = items[n_held + k]
            n_rejected += 1
    return outcome, rejected[:n_rejected], n_displaced


def _utility_at(value: float, pay: float, presence: float, volunteer: float,
                penalty_client_ratio: float, penalty_bs_ratio: float) -> float:
    """``client_expected_utility`` (eq. 27/28) of one solution, same operations, for numba."""
    return (presence * (1.0 - volunteer) * (value - pay) - (1.0 - presence) * penalty_client_ratio
            * pay + presence * volunteer * penalty_bs_ratio * pay)


def _acceptable_at(value: float, pay: float, presence: float, volunteer: float, threshold: float,
                   risk_limit: float, penalty_client_ratio: float, penalty_bs_ratio: float,
                   risk_on: bool) -> bool:
    """``AscendingMatching.acceptable`` for one solution (``client_risk``, eq. 73/74), for numba."""
    utility = _utility_at(value, pay, presence, volunteer, penalty_client_ratio, penalty_bs_ratio)
    if not (pay <= value + 1e-12 and utility > 0):
        return False
    if not risk_on:
        return True
    u_max = max(value - pay, penalty_bs_ratio * pay)
    span = u_max - threshold
    risk = (u_max - utility) / span if span > 0 else np.inf
    return bool(risk <= risk_limit + 1e-12)


def _proposals_with_loops(state: MatchingState, sols: SolutionTable,
                          terms: MatchingTerms) -> Any:
    """``candidates`` + ``_rule_proposals`` of ``AscendingMatching`` in loops, for numba
    (compiled only): every client's ``_propose``, in client order."""
    proposals = np.empty(len(state.held), dtype=np.int64)  # at most one per client
    return proposals[:_propose(0, len(proposals), proposals, state, sols, terms)]


def _proposals_on_threads(state: MatchingState, sols: SolutionTable, terms: MatchingTerms
                          ) -> Any:
    """``_proposals_with_loops`` on ``terms.threads`` threads (numba's ``prange``, compiled
    only), each taking a run of consecutive clients with about as many live solutions as the
    others: a client's proposal reads the round's state and writes only its own ``live``
    segment, so the proposals are the same, in the same order."""
    n_clients, threads = len(state.held), terms.threads
    total = 0
    for client in range(n_clients):
        total += state.live_count[client]
    bounds = np.full(threads + 1, n_clients, dtype=np.int64)  # thread t: bounds[t]..[t + 1]
    bounds[0] = 0
    t, seen = 1, 0
    for client in range(n_clients):
        while t < threads and seen >= t * total / threads:
            bounds[t] = client
            t += 1
        seen += state.live_count[client]
    proposals = np.empty(n_clients, dtype=np.int64)
    counts = np.empty(threads, dtype=np.int64)
    for thread in prange(threads):
        counts[thread] = _propose(bounds[thread], bounds[thread + 1], proposals, state, sols,
                                  terms)
    n_proposals = counts[0]
    for thread in range(1, threads):  # each thread's proposals start at its first client
        for i in range(counts[thread]):
            proposals[n_proposals + i] = proposals[bounds[thread] + i]
        n_proposals += counts[thread]
    return proposals[:n_proposals]


def _propose(first_client: int, stop_client: int, proposals: Any, state: MatchingState,
             sols: SolutionTable, terms: MatchingTerms) -> int:
    """The solutions clients ``first_client`` to ``stop_client`` - 1 propose this round by the
    rule, in client order, written into ``proposals`` from position ``first_client`` on;
    returns how many (compiled only).

    The same eligibility tests, utilities and risks as ``AscendingMatching``'s numpy rule with
    the same floating-point operations, so the same proposals. Visits each client's ``live``
    solutions (ascending), dropping those that can never be proposed again, and skips a held
    client none of whose solutions is ``revivable`` (it proposes only a revived solution; most
    held clients have none).
    """
    live, live_count, capped, capped_version, bs_version = (
        state.live, state.live_count, state.capped, state.capped_version, state.bs_version)
    revivals, alive, held, held_pay, bids = (state.revivals, state.alive, state.held,
                                             state.held_pay, state.bids)
    volunteer_rate, max_revivals, risk_on = state.volunteer_rate, terms.max_revivals, terms.risk_on
    sol_bs, sol_value, sol_presence = sols.bs, sols.value, sols.presence
    sol_threshold, sol_risk_limit = sols.threshold, sols.risk_limit
    penalty_client_ratio, penalty_bs_ratio = terms.penalty_client_ratio, terms.penalty_bs_ratio
    most = 0  # solutions of one client, at most
    for client in range(len(held)):
        most = max(most, sols.client_start[client + 1] - sols.client_start[client])
    utility = np.empty(most)  # by position among the client's live solutions
    eligible = np.empty(most, dtype=np.bool_)
    n_proposals = 0
    for client in range(first_client, stop_client):
        holding = held[client]
        if holding >= 0 and state.revivable[client] == 0:
            continue
        first = sols.client_start[client]
        kept = first  # this client's live solutions, compacted
        for e in range(first, first + live_count[client]):
            s = live[e]
            if alive[s] or (capped[s] and revivals[s] < max_revivals):
                live[kept] = s
                kept += 1
        live_count[client] = kept - first
        best = -np.inf
        for e in range(first, kept):
            s = live[e]
            eligible[e - first] = False
            revived = (capped[s] and capped_version[s] != bs_version[sol_bs[s]]
                       and revivals[s] < max_revivals)
            if not ((alive[s] or revived) if holding < 0 else (revived and holding != s)):
                continue  # most solutions: no need for their utility
            v = volunteer_rate[sol_bs[s]]
            u = _utility_at(sol_value[s], bids[s], sol_presence[s], v, penalty_client_ratio,
                            penalty_bs_ratio)
            if holding >= 0 and not u > _utility_at(
                    sol_value[holding], held_pay[client], sol_presence[holding],
                    state.held_rate[client], penalty_client_ratio,
                    penalty_bs_ratio) + SWITCH_GAIN:
                continue
            eligible[e - first] = _acceptable_at(sol_value[s], bids[s], sol_presence[s], v,
                                                 sol_threshold[s], sol_risk_limit[s],
                                                 penalty_client_ratio, penalty_bs_ratio, risk_on)
            if eligible[e - first]:
                utility[e - first] = u
                best = max(best, u)
        for e in range(first, kept):
            if eligible[e - first] and utility[e - first] >= best - 1e-12:
                proposals[first_client + n_proposals] = live[e]
                n_proposals += 1
                break
    return n_proposals


def _count_revivals(proposals: Any, state: MatchingState, sols: SolutionTable,
                    terms: MatchingTerms) -> None:
    """A capped solution proposed again uses one of its revivals (step 3); keeps ``revivable``.
    Compiled with numba, and run as plain Python by the numpy rounds (one function for both)."""
    for s in proposals:
        if state.capped[s]:
            state.revivals[s] += 1
            if state.revivals[s] == terms.max_revivals:
                state.revivable[sols.client[s]] -= 1


def _raise_with_loops(rejected: Any, state: MatchingState, sols: SolutionTable,
                      terms: MatchingTerms) -> None:
    """Step 3 for the solutions ``rejected``, in loops: compiled with numba, and run as plain
    Python by ``AscendingMatching._raise_bids`` without it (one function for both)."""
    bids = state.bids
    for s in rejected:
        raised = min(bids[s] + sols.step[s], sols.value[s])
        if raised > bids[s] + 1e-12:
            raised = _highest_acceptable_bid(s, bids[s], raised, state, sols, terms)
        if raised > bids[s] + LIMIT_GAIN * sols.step[s]:
            bids[s] = raised
        else:
            state.alive[s] = False
            if not state.capped[s] and state.revivals[s] < terms.max_revivals:
                state.revivable[sols.client[s]] += 1
            state.capped[s] = True
            state.capped_version[s] = state.bs_version[sols.bs[s]]


def _highest_acceptable_bid(s: int, bid: float, raised: float, state: MatchingState,
                            sols: SolutionTable, terms: MatchingTerms) -> float:
    """``raised`` if the client accepts it for solution ``s``, else its limit in (``bid``,
    ``raised``): the highest price it still accepts (IR, positive utility, risk bound), or
    ``bid`` if it no longer accepts ``bid`` either. The accepted prices form one interval
    (``metrics.stability._client_prices``), so bisection between the accepted ``bid`` and the
    refused ``raised`` finds its upper end.

    The limit is the price the paper's proofs let a client reach: capped at ``bid``, a client
    that would still pay up to its limit leaves a blocking pair (Def. 7/8) behind it.
    """
    v, a, rate = sols.value[s], sols.presence[s], state.volunteer_rate[sols.bs[s]]
    threshold, limit = sols.threshold[s], sols.risk_limit[s]
    lam_u, lam_s, risk_on = terms.penalty_client_ratio, terms.penalty_bs_ratio, terms.risk_on
    if _acceptable_at(v, raised, a, rate, threshold, limit, lam_u, lam_s, risk_on):
        return raised
    if not _acceptable_at(v, bid, a, rate, threshold, limit, lam_u, lam_s, risk_on):
        return bid
    low, high = bid, raised
    for _ in range(LIMIT_BISECTIONS):
        middle = 0.5 * (low + high)
        if _acceptable_at(v, middle, a, rate, threshold, limit, lam_u, lam_s, risk_on):
            low = middle
        else:
            high = middle
    return low


def _volunteer_rate_with_loops(j: int, state: MatchingState, sols: SolutionTable,
                               bss: BSTable, terms: MatchingTerms) -> float:
    """BS ``j``'s E[v] for its tentative contracts: ``AscendingMatching._publish_volunteer_rates``
    and ``expected_volunteer_rates`` in loops, for numba (compiled only; same sums, same order).
    Writes each held client's own E[v] (or the BS's, without ``per_client_rate``) into
    ``state.held_rate``."""
    held, held_pay, sol_bs, sol_presence, sol_weights = (state.held, state.held_pay, sols.bs,
                                                         sols.presence, sols.weights)
    penalty_bs_ratio, exact_max_contracts = terms.penalty_bs_ratio, terms.exact_max_contracts
    supply_bandwidth_hz, supply_power_w = bss.supply_bandwidth_hz[j], bss.supply_power_w[j]
    uniforms = bss.uniforms
    n = 0
    for c in range(len(held)):
        if held[c] >= 0 and sol_bs[held[c]] == j:
            n += 1
    if n == 0:
        return 0.0
    clients = np.empty(n, dtype=np.int64)
    floats = np.zeros(5 * n)  # one buffer (``cut``)
    presence, at = _cut_kernel(floats, 0, n)
    bandwidth, at = _cut_kernel(floats, at, n)
    power, at = _cut_kernel(floats, at, n)
    compensation, at = _cut_kernel(floats, at, n)
    volunteered, at = _cut_kernel(floats, at, n)  # per contract, Pr(volunteered)
    k = 0
    for c in range(len(held)):  # contracts by client, as the numpy twin takes them
        s = held[c]
        if s >= 0 and sol_bs[s] == j:
            clients[k] = c
            presence[k] = sol_presence[s]
            bandwidth[k] = sol_weights[0, s]
            power[k] = sol_weights[1, s]
            compensation[k] = penalty_bs_ratio * held_pay[c]
            state.held_rate[c] = 0.0
            k += 1
    total_b = bandwidth[0]
    total_p = power[0]
    expected_present = presence[0]
    for k in range(1, n):
        total_b += bandwidth[k]
        total_p += power[k]
        expected_present += presence[k]
    if (total_b <= supply_bandwidth_hz and total_p <= supply_power_w) or expected_present <= 0:
        return 0.0
    if n <= exact_max_contracts:
        rate = _expected_volunteers_kernel(presence, bandwidth, power, compensation,
                                           supply_bandwidth_hz, supply_power_w,
                                           volunteered) / expected_present
    else:
        draws = np.empty((uniforms.shape[0], n))
        for r in range(draws.shape[0]):
            for k in range(n):
                draws[r, k] = uniforms[r, clients[k]]
        marks = np.zeros((draws.shape[0], n), dtype=np.bool_)
        weights, counts = _volunteer_kernel(presence, bandwidth, power, compensation,
                                            supply_bandwidth_hz, supply_power_w, False, draws,
                                            marks)
        expected_volunteers = weights[0] * counts[0]
        for c in range(1, len(weights)):
            expected_volunteers += weights[c] * counts[c]
        rate = expected_volunteers / expected_present
        for c in range(len(weights)):  # ``_marked_sums``: every case, in order
            for k in range(n):
                volunteered[k] += weights[c] * marks[c, k]
    for k in range(n):
        if not terms.per_client_rate:
            state.held_rate[clients[k]] = rate
        elif presence[k] > 0:
            state.held_rate[clients[k]] = volunteered[k] / presence[k]
    return rate


def _must_choose_with_loops(client_start: int, client_stop: int, state: MatchingState,
                            sols: SolutionTable, terms: MatchingTerms) -> bool:
    """``AscendingMatching.must_choose`` for the client of solutions ``client_start`` to
    ``client_stop`` - 1, in loops, for numba (compiled only)."""
    if state.held[sols.client[client_start]] >= 0:
        return False
    for s in range(client_start, client_stop):
        revived = (state.capped[s] and state.capped_version[s] != state.bs_version[sols.bs[s]]
                   and state.revivals[s] < terms.max_revivals)
        if (state.alive[s] or revived) and sols.fits[s]:
            return True
    return False


# how a compiled run of rounds (or one round) ended
CONVERGED, ROUND_LIMIT, INTERRUPTED, STOPPED, PLAYED = 0, 1, 2, 3, 4


def _play_with_loops(proposals: Any, pays: Any, at_rule_price: Any, state: MatchingState,
                     sols: SolutionTable, bss: BSTable, terms: MatchingTerms
                     ) -> tuple[int, int, Any]:
    """``AscendingMatching.play_round`` for a non-empty round, in loops, for numba (compiled
    only): the answering BSs answer in increasing order (step 2), publish E[v] when
    ``terms.estimate`` (step 4) and the rejected bids rise (step 3).

    Returns ``PLAYED`` (or ``ROUND_LIMIT`` at ``max_rounds``), 0 and the rejected solutions; or
    ``INTERRUPTED``, the position of the BS whose selection needs the typed search or HiGHS
    among the answering BSs, and the solutions rejected before it (the caller finishes the
    round).
    """
    counters, bs_version, sol_bs = state.counters, state.bs_version, sols.bs
    counters[0] += 1
    counters[1] += len(proposals)
    proposed_to = np.zeros(len(bs_version), dtype=np.bool_)
    for i in range(len(proposals)):
        proposed_to[sol_bs[proposals[i]]] = True
    _count_revivals_kernel(proposals, state, sols, terms)
    # every held and every proposed solution is rejected at most once
    rejected = np.empty(len(state.held) + len(proposals), dtype=np.int64)
    if terms.threads > 1:
        position, n_rejected = _threaded_answers_kernel(proposals, pays, at_rule_price,
                                                        proposed_to, state, sols, bss, terms,
                                                        rejected)
        if position >= 0:
            return INTERRUPTED, position, rejected[:n_rejected]
    else:
        n_rejected = 0
        position = 0  # among the answering BSs, in increasing order
        for j in range(len(bs_version)):
            if not proposed_to[j]:
                continue
            outcome, rej, n_displaced = _answer_kernel(j, proposals, pays, at_rule_price, state,
                                                       sols, bss, terms, ANSWER, proposals[:0])
            if outcome == TOO_HARD:
                return INTERRUPTED, position, rejected[:n_rejected]
            counters[2] += n_displaced
            if outcome == SEARCHED:
                counters[3] += 1
            rejected[n_rejected:n_rejected + len(rej)] = rej
            n_rejected += len(rej)
            position += 1
    rejected = rejected[:n_rejected]
    if terms.estimate:
        for j in range(len(bs_version)):
            if state.estimated_version[j] != bs_version[j]:
                state.estimated_version[j] = bs_version[j]
                state.volunteer_rate[j] = _volunteer_rate_kernel(j, state, sols, bss, terms)
    _raise_kernel(rejected, state, sols, terms)
    return (ROUND_LIMIT if counters[0] >= terms.max_rounds else PLAYED), 0, rejected


def _answers_on_threads(proposals: Any, pays: Any, at_rule_price: Any, proposed_to: Any,
                        state: MatchingState, sols: SolutionTable, bss: BSTable,
                        terms: MatchingTerms, rejected: Any) -> tuple[int, int]:
    """Step 2 of ``_play_with_loops`` with the BSs' selections made on ``terms.threads``
    threads (numba's ``prange``, compiled only), all from the round's state, which they only
    read (``_answer_with_loops``'s ``SELECT``); then the BSs answer in increasing order with
    them (``COMMIT``). The largest selections go first, each to the thread with the fewest
    items so far.

    A BS's selection depends on the round's state only through the contracts it holds (and
    their prices and E[v]), and an earlier BS's answer changes those only by taking a client
    it holds, which moves the BS's version: so an answer with a selection made on a thread is
    the serial answer, and a BS whose version moved before its turn selects again.

    Writes the rejected solutions into ``rejected`` and returns (-1, how many), or, when a
    BS's selection needs the typed search or HiGHS, (its position among the answering BSs,
    how many were rejected before it).
    """
    held, sol_bs, bs_version, threads = state.held, sols.bs, state.bs_version, terms.threads
    answering = np.flatnonzero(proposed_to)  # in increasing order
    offsets = np.zeros(len(answering) + 1, dtype=np.int64)  # BS b's selection: its items, outcome
    size = np.zeros(len(bs_version), dtype=np.int64)  # items per BS: held and proposed
    for c in range(len(held)):
        if held[c] >= 0:
            size[sol_bs[held[c]]] += 1
    for k in range(len(proposals)):
        size[sol_bs[proposals[k]]] += 1
    largest_first = np.empty(len(answering), dtype=np.int64)  # a sort key
    for b in range(len(answering)):
        offsets[b + 1] = offsets[b] + size[answering[b]] + 1
        largest_first[b] = -size[answering[b]]
    thread_of = np.empty(len(answering), dtype=np.int64)
    load = np.zeros(threads, dtype=np.int64)
    for b in np.argsort(largest_first, kind="mergesort"):
        thread_of[b] = np.argmin(load)
        load[thread_of[b]] += size[answering[b]]
    selections = np.empty(offsets[len(answering)], dtype=np.int64)
    for thread in prange(threads):
        for b in range(len(answering)):
            if thread_of[b] == thread:
                _answer_kernel(answering[b], proposals, pays, at_rule_price, state, sols, bss,
                               terms, SELECT, selections[offsets[b]:offsets[b + 1]])
    versions = bs_version.copy()
    counters, n_rejected = state.counters, 0
    for b in range(len(answering)):
        j = answering[b]
        outcome, rej, n_displaced = _answer_kernel(
            j, proposals, pays, at_rule_price, state, sols, bss, terms,
            COMMIT if bs_version[j] == versions[j] else ANSWER, selections[offsets[b]:])
        if outcome == TOO_HARD:
            return b, n_rejected
        counters[2] += n_displaced
        if outcome == SEARCHED:
            counters[3] += 1
        rejected[n_rejected:n_rejected + len(rej)] = rej
        n_rejected += len(rej)
    return -1, n_rejected


def _rounds_with_loops(state: MatchingState, sols: SolutionTable, bss: BSTable,
                       terms: MatchingTerms, stop_start: int, stop_stop: int
                       ) -> tuple[int, Any, int, Any]:
    """``AscendingMatching.run_rounds`` in loops, for numba (compiled only).

    Plays rule rounds (``_play_with_loops``; ``state.counters``: rounds, proposals,
    displacements, knapsack calls) until no proposal is left (``CONVERGED``), ``max_rounds``
    (``ROUND_LIMIT``), the client of solutions ``stop_start`` to ``stop_stop`` - 1 must choose
    (``STOPPED``; -1: none), or a BS's selection needs the typed search or HiGHS
    (``INTERRUPTED``: returns the round's proposals, the position of that BS among the
    answering BSs and the solutions rejected so far; the caller finishes the round).
    """
    bids = state.bids
    while True:
        if stop_start >= 0 and _must_choose_kernel(stop_start, stop_stop, state, sols, terms):
            return STOPPED, np.empty(0, dtype=np.int64), 0, np.empty(0, dtype=np.int64)
        proposals = (_threaded_proposals_kernel(state, sols, terms) if terms.threads > 1
                     else _proposals_kernel(state, sols, terms))
        if len(proposals) == 0:
            return CONVERGED, proposals, 0, np.empty(0, dtype=np.int64)
        pays = np.empty(len(proposals))
        for i in range(len(proposals)):
            pays[i] = bids[proposals[i]]
        status, position, rejected = _play_kernel(proposals, pays,
                                                  np.ones(len(proposals), dtype=np.bool_),
                                                  state, sols, bss, terms)
        if status != PLAYED:
            return status, proposals, position, rejected


@dataclass(frozen=True)
class Kernels:
    """The compiled twins of the matching's loops (see ``mechanisms/_jit.py``)."""

    answer: Callable[..., tuple[int, IntArray, int]]
    proposals: Callable[..., IntArray]
    raise_bids: Callable[..., None]
    play: Callable[..., tuple[int, int, IntArray]]
    rounds: Callable[..., tuple[int, IntArray, int, IntArray]]


# compiled functions that compiled callers reach as globals (set by ``_compile``)
_solve_kernel: Any = None
_cut_kernel: Any = None
_volunteer_kernel: Any = None
_expected_volunteers_kernel: Any = None
_volunteer_rate_kernel: Any = None
_must_choose_kernel: Any = None
_answer_kernel: Any = None
_proposals_kernel: Any = None
_threaded_proposals_kernel: Any = None
_threaded_answers_kernel: Any = None
prange: Any = range  # numba's ``prange`` once compiling (the threaded loops run compiled only)
_raise_kernel: Any = None
_count_revivals_kernel: Any = None
_play_kernel: Any = None
_KERNELS: list[Kernels | None] = []


def load_compiled_matching() -> bool:
    """Compile (or load from numba's cache) the matching's inner loops, the knapsack searches
    and the volunteer estimate now; False without numba.

    Called before any timed region, so that no reported running time includes compilation.
    """
    solver = load_compiled_solver()  # the branch and bound and both typed searches
    return (solver and compiled_volunteer_kernels() is not None
            and compiled_kernels() is not None)


def compiled_kernels() -> Kernels | None:
    """The compiled loops, or None (numba missing or turned off: the numpy code runs)."""
    if not compiled_loops_enabled():
        return None
    if not _KERNELS:
        jit, solver, volunteers = numba_jit(), compiled_solver(), compiled_volunteer_kernels()
        kernels = None
        if jit is not None and solver is not None and volunteers is not None:
            volunteer_kernels = volunteers  # not None, also inside the lambda (for mypy)
            kernels = compile_or_warn(lambda: _compile(jit, solver, volunteer_kernels),
                                      "matching loops")
        _KERNELS.append(kernels)
    return _KERNELS[0]


def _compile(jit: Any, solver: Any, volunteers: VolunteerKernels) -> Kernels:
    global _utility_at, _acceptable_at, _solve_kernel, _volunteer_kernel, _volunteer_rate_kernel
    global _expected_volunteers_kernel, _must_choose_kernel, _answer_kernel, _proposals_kernel
    global _raise_kernel, _highest_acceptable_bid, _play_kernel, _count_revivals_kernel
    global _cut_kernel, _propose, prange
    global _threaded_proposals_kernel, _threaded_answers_kernel
    # the scalar helpers are called by name from compiled code, so their names must hold the
    # compiled versions (``py_func``: the plain function, should this run again)
    _utility_at = jit(getattr(_utility_at, "py_func", _utility_at))
    _acceptable_at = jit(getattr(_acceptable_at, "py_func", _acceptable_at))
    _solve_kernel = solver
    _cut_kernel = shared_kernel(cut, jit)
    _volunteer_kernel = volunteers.cases
    _expected_volunteers_kernel = volunteers.expected
    _volunteer_rate_kernel = jit(_volunteer_rate_with_loops)
    _must_choose_kernel = jit(_must_choose_with_loops)
    _answer_kernel = jit(_answer_with_loops)
    _propose = jit(getattr(_propose, "py_func", _propose))
    _proposals_kernel = jit(_proposals_with_loops)
    # its threaded twin (numba's prange), for matchings where ``threads_available``
    prange = numba_prange()
    _threaded_proposals_kernel = (numba_jit(parallel=True) or jit)(_proposals_on_threads)
    _threaded_answers_kernel = (numba_jit(parallel=True) or jit)(_answers_on_threads)
    _highest_acceptable_bid = jit(getattr(_highest_acceptable_bid, "py_func",
                                          _highest_acceptable_bid))
    _raise_kernel = jit(_raise_with_loops)
    _count_revivals_kernel = jit(_count_revivals)
    _play_kernel = jit(_play_with_loops)
    rounds = jit(_rounds_with_loops)
    # one client, one solution, one BS: compiles (or loads) every loop for the argument types
    # of the calls, including those the Python methods make, so that no timed region compiles
    one, no, unit = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.bool_), np.ones(1)
    sols = SolutionTable(one.copy(), one.copy(), unit.copy(), unit.copy(), np.zeros(1),
                         np.full(1, np.inf), np.ones((4, 1)), unit / 10, ~no,
                         np.array([0, 1]))
    bss = BSTable(np.full((1, 4), 2.0), unit.copy(), unit.copy(), np.zeros((0, 1)))
    terms = MatchingTerms(10, 10, 0.1, 0.1, False, DEFAULT_NODE_LIMIT, True, 4, True)

    def state() -> MatchingState:
        return MatchingState(np.ones(4, dtype=np.int64), one - 1, one.copy(), no.copy(),
                             one - 1, one.copy(), one.copy(), one - 1, ~no, one - 1, np.zeros(1),
                             unit / 2, np.zeros(1), one - 1, np.zeros(1))

    rounds(state(), sols, bss, terms, 0, 1)
    _proposals_kernel(state(), sols, terms)
    _answer_kernel(0, one.copy(), unit / 2, ~no, state(), sols, bss, terms, ANSWER, one[:0])
    _raise_kernel(one.copy(), state(), sols, terms)
    _play_kernel(one.copy(), unit / 2, ~no, state(), sols, bss, terms)
    return Kernels(_answer_kernel, _proposals_kernel, _raise_kernel, _play_kernel, rounds)
