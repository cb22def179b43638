"""The market simulator: an episode is an offline signing phase plus T practical transactions.

``Market`` is driven step by step (``sign()``, then ``transact()`` T times; the RL envs do this)
or in one call (``run()``). All randomness flows from one seed split into named streams
(``SeedSequence.spawn``): the scenario, participation, interaction delays, the Monte Carlo volunteer
estimate and fading. The participation draws depend only on the seed, so every mechanism sees the
same present MUs in every transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from isac_market_env.config import EpisodeConfig
from isac_market_env.market.random_models import draw_overhead, draw_participation
from isac_market_env.market.records import (
    ContractBook,
    EpisodeResult,
    SigningRecord,
    TransactionRecord,
)
from isac_market_env.market.variants import TRADE_MODES, MechanismSpec, get_mechanism
from isac_market_env.mechanisms import cdna, cooperative, reuse
from isac_market_env.mechanisms.deferred import TradeResult
from isac_market_env.mechanisms.greedy import greedy_allocation
from isac_market_env.mechanisms.matching import (
    MatchingProblem,
    MatchingResult,
    load_compiled_matching,
    run_matching,
)
from isac_market_env.mechanisms.optimal import optimal_allocation
from isac_market_env.mechanisms.volunteers import VolunteerModel, select_volunteers
from isac_market_env.memory import check_memory
from isac_market_env.metrics.overhead import Overhead
from isac_market_env.model.clients import COMM, SENSING, ClientBook, build_client_book
from isac_market_env.physics.channel import pairwise_distance_m
from isac_market_env.scenarios.scenario import Scenario

STREAMS = ("scenario", "participation", "delays", "volunteer_estimate", "fading", "mechanism")


@dataclass(eq=False)
class PendingTransaction:
    """A transaction between contract execution and online trading (internal state)."""

    index: int
    mu_present: NDArray[np.bool_]
    fading: NDArray[np.float64] | None
    paid: NDArray[np.float64]
    received: NDArray[np.float64]
    bs_income: NDArray[np.float64]
    rdsl_b: NDArray[np.float64]
    rdsl_p: NDArray[np.float64]
    absent: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    volunteered: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    breached: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    served: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    served_value: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    residual_b: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    residual_p: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    candidates: NDArray[np.int64] | None = None
    candidate_values: NDArray[np.float64] | None = None
    online_problem: MatchingProblem | None = None
    online_solutions: NDArray[np.int64] | None = None  # book index of each problem solution
    runtime_ms: float = 0.0


@dataclass(frozen=True, eq=False)
class OnlineOutcome:
    """What the online step allocated (rows: solution, client, BS, B, P, pay, value)."""

    solutions: NDArray[np.int64]
    clients: NDArray[np.int64]
    bs: NDArray[np.int64]
    bandwidth_hz: NDArray[np.float64]
    power_w: NDArray[np.float64]
    pay: NDArray[np.float64]
    values: NDArray[np.float64]
    n_exchanges: int
    rounds: int
    converged: bool
    runtime_ms: float
    welfare_bound: float | None = None  # the optimal mechanism's certified bound
    trade: TradeResult | None = None  # an other seed's trade, as the mechanism returned it

    @classmethod
    def empty(cls) -> OnlineOutcome:
        zi, zf = np.zeros(0, dtype=np.int64), np.zeros(0)
        return cls(zi, zi, zi, zf, zf, zf, zf, 0, 0, True, 0.0)


@dataclass(frozen=True)
class EpisodeStreams:
    """Named child generators of one episode seed."""

    scenario: np.random.Generator
    participation: np.random.Generator
    delays: np.random.Generator
    volunteer_estimate: np.random.Generator
    fading: np.random.Generator
    mechanism: np.random.Generator  # a randomised mechanism's own draws (random matching)

    @classmethod
    def from_seed(cls, seed: int | np.random.SeedSequence | None) -> EpisodeStreams:
        root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        # (SeedSequence children depend on their index only: adding a stream at the end
        # leaves the others' draws unchanged)
        return cls(*(np.random.default_rng(child) for child in root.spawn(len(STREAMS))))


class Market:
    """One episode of one mechanism on one scenario."""

    def __init__(self, scenario: Scenario, config: EpisodeConfig,
                 mechanism: str | MechanismSpec = "frbank", seed: int | None = None,
                 streams: EpisodeStreams | None = None,
                 participation: NDArray[np.bool_] | None = None) -> None:
        check_memory(config)  # before any array of the episode is allocated
        self.scenario = scenario
        self.config = config
        self.spec = get_mechanism(mechanism)
        load_compiled_matching()  # so that no reported running time includes compilation
        self.seed = seed
        self.streams = streams or EpisodeStreams.from_seed(seed)
        m = config.market
        self.book = build_client_book(scenario, config.scenario, config.physics, m,
                                      self.spec.coalitions)
        # the welfare bound also needs the other client structure (individual sensing requests)
        self.alt_book: ClientBook | None = None
        self._groups: list[NDArray[np.int64]] = []
        if self.spec.online == "optimal":
            self.alt_book = build_client_book(scenario, config.scenario, config.physics, m,
                                              not self.spec.coalitions)
            self._groups = self._exclusive_sensing_groups(self.book, self.alt_book)
        if participation is None:
            participation = draw_participation(scenario.mu_participation, config.n_transactions,
                                               self.streams.participation)
        self.participation = np.asarray(participation, dtype=bool)
        if self.participation.shape != (config.n_transactions, scenario.n_mus):
            raise ValueError("participation must have shape (n_transactions, n_mus)")
        self.contracts = ContractBook.empty()
        self.signing: SigningRecord | None = None
        self.transactions: list[TransactionRecord] = []
        self._prepared = 0  # transactions prepared so far (the next one's index)
        # the last online trade of the other seeds' mechanisms, as the mechanism returned it
        # (the cooperative trade's blocks and groups, for its experiment)
        self.last_trade: TradeResult | None = None
        self._volunteer_uniforms = self.streams.volunteer_estimate.random(
            (m.volunteer_mc_samples, self.book.n_clients))
        # where each client is (its first member MU: with coalitions off, its only one)
        self.client_xy_m = scenario.mu_xy_m[self.book.member_index[self.book.member_start[:-1]]]
        self.reuse_model: reuse.ReuseModel | None = None
        if self.spec.reuse:
            self.reuse_model = reuse.ReuseModel(
                m.reuse_conflict, self.client_xy_m,  # type: ignore[arg-type]
                np.asarray(scenario.bs_xy_m, dtype=np.float64),
                np.asarray(scenario.bs_tx_antennas, np.int64), m.reuse_interference_range_m)

    # ------------------------------------------------------------------ offline signing phase
    @property
    def n_transactions_done(self) -> int:
        return len(self.transactions)

    @property
    def done(self) -> bool:
        return len(self.transactions) >= self.config.n_transactions

    @property
    def all_prepared(self) -> bool:
        """Every transaction has been prepared (``prepare_transaction``), if not completed."""
        return self._prepared >= self.config.n_transactions

    def offline_problem(self) -> MatchingProblem:
        """The offRFW2M instance of this market (eq. 37, 38) for the mechanism's options."""
        m, sc, book, spec = self.config.market, self.scenario, self.book, self.spec
        o_b, o_p = m.overbooking_rates(sc.n_bss)
        if not spec.overbooking:
            o_b, o_p = [0.0] * sc.n_bss, [0.0] * sc.n_bss
        inf = np.full(sc.n_bss, np.inf)
        kind = book.client_kind
        return MatchingProblem(
            n_clients=book.n_clients, n_bss=sc.n_bss, sol_client=book.sol_client,
            sol_bs=book.sol_bs, sol_bandwidth_hz=book.sol_bandwidth_hz,
            sol_power_w=book.sol_power_w, sol_value=book.sol_value,
            sol_start_bid=book.sol_reserve_price, client_presence=book.client_presence_prob,
            client_risk_limit=(np.where(kind == COMM, m.risk_client_comm, m.risk_client_sensing)
                               if spec.risk else np.full(book.n_clients, np.inf)),
            client_utility_threshold=np.where(kind == COMM, m.utility_threshold_comm,
                                              m.utility_threshold_sensing).astype(np.float64),
            bs_cap_bandwidth_hz=sc.bs_bandwidth_hz * (1.0 + np.asarray(o_b)),
            bs_cap_power_w=sc.bs_power_w * (1.0 + np.asarray(o_p)),
            bs_risk_cap_bandwidth_hz=m.risk_bs_bandwidth * sc.bs_bandwidth_hz if spec.risk else inf,
            bs_risk_cap_power_w=m.risk_bs_power * sc.bs_power_w if spec.risk else inf,
            bid_increment=m.bid_increment, bid_increment_fraction=m.bid_increment_fraction,
            penalty_client_ratio=m.penalty_client_ratio,
            penalty_bs_ratio=m.penalty_bs_ratio, max_rounds=m.max_rounds,
            max_revivals=m.max_revivals, knapsack_node_limit=m.knapsack_node_limit,
            volunteer_rate_per_client=m.volunteer_rate_per_client,
        )

    def volunteer_model(self) -> VolunteerModel:
        """What the BSs need to publish E[v] in the signing phase (App. B)."""
        return VolunteerModel(np.asarray(self.scenario.bs_bandwidth_hz, dtype=np.float64),
                              np.asarray(self.scenario.bs_power_w, dtype=np.float64),
                              self.config.market.volunteer_exact_max_contracts,
                              self._volunteer_uniforms)

    def sign(self, problem: MatchingProblem | None = None, threads: int = 1) -> SigningRecord:
        """Run the offline signing phase (offRFW2M) and store the contracts; ``threads``: its
        rounds' rule proposals and the BSs' selections on that many threads where numba can
        (the same contracts, ``run_matching``)."""
        if self.signing is not None:
            raise RuntimeError("the signing phase of this episode has already run")
        if not self.spec.offline:
            self.signing = SigningRecord(ContractBook.empty(), 0, True, Overhead(), 0.0,
                                         np.zeros(self.scenario.n_bss),
                                         np.zeros(self.scenario.n_bss),
                                         np.zeros(self.scenario.n_bss))
            return self.signing
        problem = problem or self.offline_problem()
        volunteers = self.volunteer_model() if self.spec.overbooking else None
        return self.record_signing(run_matching(problem, volunteers, threads))

    def record_signing(self, result: MatchingResult) -> SigningRecord:
        """Turn a finished offRFW2M result into the contract book and signing record."""
        book, m = self.book, self.config.market
        clients = np.flatnonzero(result.client_solution >= 0)
        sols = result.client_solution[clients]
        pay = result.client_payment[clients]
        self.contracts = ContractBook(
            client=clients.astype(np.int64), solution=sols, bs=book.sol_bs[sols],
            bandwidth_hz=book.sol_bandwidth_hz[sols], power_w=book.sol_power_w[sols], pay=pay,
            penalty_client=m.penalty_client_ratio * pay, penalty_bs=m.penalty_bs_ratio * pay)
        n_bss = self.scenario.n_bss
        self.signing = SigningRecord(
            self.contracts, result.rounds, result.converged,
            draw_overhead(result.n_exchanges, m, self.streams.delays), result.runtime_ms,
            result.bs_volunteer_rate,
            np.bincount(self.contracts.bs, self.contracts.bandwidth_hz,
                        minlength=n_bss).astype(np.float64),
            np.bincount(self.contracts.bs, self.contracts.power_w,
                        minlength=n_bss).astype(np.float64),
            result.milp_calls,
            result.solution_volunteer_rate(sols, book.sol_client, book.sol_bs))
        return self.signing

    # ------------------------------------------------------------------ practical transactions
    def online_problem(self, values: NDArray[np.float64], sols: NDArray[np.int64],
                       residual_b: NDArray[np.float64],
                       residual_p: NDArray[np.float64]) -> MatchingProblem:
        """The onEBW2M instance (eq. 83, 84): realised values, residual supply, no risk."""
        book, m = self.book, self.config.market
        n = book.n_clients
        inf = np.full(self.scenario.n_bss, np.inf)
        return MatchingProblem(
            n_clients=n, n_bss=self.scenario.n_bss, sol_client=book.sol_client[sols],
            sol_bs=book.sol_bs[sols], sol_bandwidth_hz=book.sol_bandwidth_hz[sols],
            sol_power_w=book.sol_power_w[sols], sol_value=values,
            sol_start_bid=book.sol_reserve_price[sols], client_presence=np.ones(n),
            client_risk_limit=np.full(n, np.inf), client_utility_threshold=np.zeros(n),
            bs_cap_bandwidth_hz=residual_b, bs_cap_power_w=residual_p,
            bs_risk_cap_bandwidth_hz=inf, bs_risk_cap_power_w=inf,
            bid_increment=m.bid_increment, bid_increment_fraction=m.bid_increment_fraction,
            penalty_client_ratio=0.0, penalty_bs_ratio=0.0,
            max_rounds=m.max_rounds, max_revivals=m.max_revivals,
            knapsack_node_limit=m.knapsack_node_limit)

    def transact(self) -> TransactionRecord:
        """Run the next practical transaction (docs/model.md, Transactions)."""
        pending = self.prepare_transaction()
        return self.complete_transaction(pending, self.run_online(pending))

    def prepare_transaction(self) -> PendingTransaction:
        """Participation, contract execution, PelU, volunteers; builds the online market.

        Transactions are prepared and completed in order (each draws its fading, and its
        completion its delays, from the episode's streams); between the two, ``run_online``
        reads the market without changing it, so several may run at once
        (``MechanismSpec.concurrent_transactions``)."""
        if self.signing is None:
            self.sign()
        if self.all_prepared:
            raise RuntimeError("all transactions of this episode have run; start a new episode")
        sc, book, c = self.scenario, self.book, self.contracts
        t = self._prepared
        self._prepared += 1
        mu_present = self.participation[t]
        fading = (self.streams.fading.exponential(1.0, sc.n_mus)
                  if self.config.physics.rayleigh_fading else None)
        started = time.perf_counter()
        client_present = book.client_present(mu_present)
        pt = PendingTransaction(index=t, mu_present=mu_present, fading=fading,
                                paid=np.zeros(book.n_clients),
                                received=np.zeros(book.n_clients),
                                bs_income=np.zeros(sc.n_bss), rdsl_b=np.zeros(sc.n_bss),
                                rdsl_p=np.zeros(sc.n_bss))
        # 1. contract execution: absent clients pay PelU, and so do present clients whose
        # contract would cost them more than PelU (strategic breach); overloaded BSs pick
        # volunteers among the rest
        present_c = client_present[c.client]
        pt.absent = np.flatnonzero(~present_c)
        realised = np.zeros(len(c))
        present_idx = np.flatnonzero(present_c)
        realised[present_idx] = book.realised_values(c.solution[present_idx], mu_present,
                                                     fading)
        if self.config.market.strategic_breach:
            pt.breached = present_idx[realised[present_idx] - c.pay[present_idx]
                                      < -c.penalty_client[present_idx]]
            present_c[pt.breached] = False
        for rows in (pt.absent, pt.breached):
            np.add.at(pt.paid, c.client[rows], c.penalty_client[rows])
            np.add.at(pt.bs_income, c.bs[rows], c.penalty_client[rows])
        volunteer = np.zeros(len(c), dtype=bool)
        for j in range(sc.n_bss):
            idx = np.flatnonzero(present_c & (c.bs == j))
            if idx.size == 0:
                continue
            demand_b, demand_p = c.bandwidth_hz[idx].sum(), c.power_w[idx].sum()
            pt.rdsl_b[j] = demand_b / sc.bs_bandwidth_hz[j]
            pt.rdsl_p[j] = demand_p / sc.bs_power_w[j]
            if demand_b <= sc.bs_bandwidth_hz[j] and demand_p <= sc.bs_power_w[j]:
                continue  # nobody volunteers (``select_volunteers``' own first test)
            picked = select_volunteers(np.ones(idx.size, dtype=bool), c.bandwidth_hz[idx],
                                       c.power_w[idx], c.penalty_bs[idx],
                                       float(sc.bs_bandwidth_hz[j]), float(sc.bs_power_w[j]))
            volunteer[idx[picked]] = True
        pt.volunteered = np.flatnonzero(volunteer)
        np.add.at(pt.received, c.client[pt.volunteered], c.penalty_bs[pt.volunteered])
        np.add.at(pt.bs_income, c.bs[pt.volunteered], -c.penalty_bs[pt.volunteered])
        pt.served = np.flatnonzero(present_c & ~volunteer)
        served = pt.served
        pt.served_value = realised[served]
        pt.residual_b = sc.bs_bandwidth_hz - np.bincount(c.bs[served], c.bandwidth_hz[served],
                                                         minlength=sc.n_bss)
        pt.residual_p = sc.bs_power_w - np.bincount(c.bs[served], c.power_w[served],
                                                    minlength=sc.n_bss)
        # 2. the online market: present clients with unmet demand (no contract, volunteers)
        unmet = client_present.copy()
        unmet[c.client] = False
        unmet[c.client[pt.volunteered]] = True
        unmet[c.client[pt.breached]] = True  # a breaching client may buy online instead
        if self.spec.online != "none" and unmet.any():
            pt.candidates = np.flatnonzero(unmet[book.sol_client])
            pt.candidate_values = book.realised_values(pt.candidates, mu_present, fading)
            if self.spec.online == "matching":
                keep = pt.candidate_values > book.sol_reserve_price[pt.candidates]
                pt.online_solutions = pt.candidates[keep]
                pt.online_problem = self.online_problem(
                    pt.candidate_values[keep], pt.online_solutions, pt.residual_b, pt.residual_p)
        pt.runtime_ms = (time.perf_counter() - started) * 1e3
        return pt

    def online_outcome(self, pending: PendingTransaction,
                       result: MatchingResult) -> OnlineOutcome:
        """Translate a finished onEBW2M result into the transaction's online allocations."""
        assert pending.online_problem is not None and pending.online_solutions is not None
        book = self.book
        matched = np.flatnonzero(result.client_solution >= 0)
        local = result.client_solution[matched]
        sols = pending.online_solutions[local]
        return OnlineOutcome(sols, book.sol_client[sols], book.sol_bs[sols],
                             book.sol_bandwidth_hz[sols], book.sol_power_w[sols],
                             result.client_payment[matched],
                             pending.online_problem.sol_value[local], result.n_exchanges,
                             result.rounds, result.converged, result.runtime_ms)

    def run_online(self, pending: PendingTransaction) -> OnlineOutcome:
        """The mechanism's online step: onEBW2M, greedy, the welfare bound, or nothing."""
        book = self.book
        if pending.online_problem is not None:
            return self.online_outcome(pending, run_matching(pending.online_problem))
        cand, values = pending.candidates, pending.candidate_values
        if cand is None or values is None:
            return OnlineOutcome.empty()
        if self.spec.online in ("greedy", "greedy-retry"):
            g = greedy_allocation(book.n_clients, book.sol_client[cand], book.sol_bs[cand],
                                  book.sol_bandwidth_hz[cand], book.sol_power_w[cand], values,
                                  pending.residual_b, pending.residual_p,
                                  retry=self.spec.online == "greedy-retry")
            matched = np.flatnonzero(g.client_solution >= 0)
            sols = cand[g.client_solution[matched]]
            return OnlineOutcome(sols, book.sol_client[sols], book.sol_bs[sols],
                                 book.sol_bandwidth_hz[sols], book.sol_power_w[sols],
                                 g.client_payment[matched], values[g.client_solution[matched]],
                                 g.n_proposals, 1, True, g.runtime_ms)
        if self.spec.online in TRADE_MODES:
            return self._trade(pending)
        return self._optimal(pending)

    def _trade(self, pending: PendingTransaction) -> OnlineOutcome:
        """One of the other seeds' online trades (docs/mechanisms.md) over the candidates worth
        more than their reserve price that fit their BS's residual supply on their own (a client
        never bargains or proposes for what the BS cannot give)."""
        book, m, mode = self.book, self.config.market, self.spec.online
        assert pending.candidates is not None and pending.candidate_values is not None
        pool, pool_bs = pending.candidates, book.sol_bs[pending.candidates]
        keep = ((pending.candidate_values > book.sol_reserve_price[pool])
                & (book.sol_bandwidth_hz[pool] <= pending.residual_b[pool_bs])
                & (book.sol_power_w[pool] <= pending.residual_p[pool_bs]))
        cand, values = pending.candidates[keep], pending.candidate_values[keep]
        args = (book.n_clients, book.sol_client[cand], book.sol_bs[cand],
                book.sol_bandwidth_hz[cand], book.sol_power_w[cand])
        supply = (pending.residual_b, pending.residual_p)
        reserve = book.sol_reserve_price[cand]
        res: TradeResult
        if mode == "pricing":
            res = cdna.pricing_matching(*args, values, *supply, m.reserve_price_per_mhz / 1e6,
                                        m.reserve_price_per_w, m.pricing_max_iterations)
        elif mode == "centralized":
            res = cdna.centralized_trade(*args, values, reserve, *supply, m.negotiation_tolerance)
        elif mode == "bargaining":
            res = cdna.bargaining_trade(*args, values, reserve, *supply, m.negotiation_tolerance)
        elif mode == "nearest":
            distance = pairwise_distance_m(self.client_xy_m,
                                           np.asarray(self.scenario.bs_xy_m, dtype=np.float64))
            res = cdna.nearest_trade(*args, values, reserve, *supply, distance)
        elif mode == "random":
            res = cdna.random_trade(*args, reserve, *supply, self.streams.mechanism)
        elif mode == "cfront":
            assert self.reuse_model is not None
            res = reuse.cfront(*args, values, *supply, self.reuse_model)
        elif mode == "cooperative":
            res = cooperative.cooperative_trade(
                *args, values, *supply, m.reserve_price_per_mhz / 1e6, m.reserve_price_per_w,
                cooperative.BlockTerms(m.cooperative_massive_share,
                                       m.cooperative_small_block_mhz * 1e6,
                                       m.primary_return_rate, m.cooperative_max_rounds),
                self.streams.mechanism)
        else:  # dfront, gale-shapley
            res = reuse.deferred_trade(*args, values, *supply,
                                       self.reuse_model if mode == "dfront" else None)
        matched = np.flatnonzero(res.client_solution >= 0)
        local = res.client_solution[matched]
        sols = cand[local]
        delivered = values[local]
        if isinstance(res, cooperative.CooperativeResult):  # served until preempted
            assert res.served_fraction is not None
            delivered = delivered * res.served_fraction[matched]
        return OnlineOutcome(sols, book.sol_client[sols], book.sol_bs[sols],
                             book.sol_bandwidth_hz[sols], book.sol_power_w[sols],
                             res.client_payment[matched], delivered, res.n_exchanges,
                             res.rounds, res.converged, res.runtime_ms, res.welfare_bound,
                             trade=res)

    def complete_transaction(self, pending: PendingTransaction,
                             online: OnlineOutcome) -> TransactionRecord:
        """Settle served contracts and online contracts; record the transaction."""
        book, c, pt = self.book, self.contracts, pending
        if pt.index != len(self.transactions):
            raise RuntimeError(f"transaction {pt.index} completed out of order (expected "
                               f"{len(self.transactions)})")
        if online.trade is not None:
            self.last_trade = online.trade
        served = pt.served
        value = np.zeros(book.n_clients)
        alloc_client = np.concatenate([c.client[served], online.clients]).astype(np.int64)
        alloc_pay = np.concatenate([c.pay[served], online.pay])
        alloc_value = np.concatenate([pt.served_value, online.values])
        alloc_bs = np.concatenate([c.bs[served], online.bs]).astype(np.int64)
        in_book = alloc_client < book.n_clients
        np.add.at(value, alloc_client[in_book], alloc_value[in_book])
        np.add.at(pt.paid, alloc_client[in_book], alloc_pay[in_book])
        np.add.at(pt.bs_income, alloc_bs, alloc_pay)
        kind = book.client_kind
        net = value - pt.paid + pt.received
        transfer = pt.paid - pt.received
        extra_value = float(alloc_value[~in_book].sum())  # optimal: individual sensing requests
        bound = (None if online.welfare_bound is None
                 else online.welfare_bound + float(pt.served_value.sum()))
        record = TransactionRecord(
            index=pt.index, mu_present=pt.mu_present, alloc_client=alloc_client,
            alloc_solution=np.concatenate([c.solution[served], online.solutions]).astype(
                np.int64),
            alloc_bs=alloc_bs,
            alloc_bandwidth_hz=np.concatenate([c.bandwidth_hz[served], online.bandwidth_hz]),
            alloc_power_w=np.concatenate([c.power_w[served], online.power_w]),
            alloc_pay=alloc_pay, alloc_value=alloc_value,
            alloc_online=np.arange(len(alloc_client)) >= len(served),
            contract_absent=pt.absent.astype(np.int64),
            contract_volunteered=pt.volunteered.astype(np.int64),
            contract_breached=pt.breached.astype(np.int64),
            client_value=value, client_paid=pt.paid, client_received=pt.received,
            bs_income=pt.bs_income, rdsl_bandwidth=pt.rdsl_b, rdsl_power=pt.rdsl_p,
            contracts_due=len(c),
            overhead=draw_overhead(online.n_exchanges, self.config.market, self.streams.delays),
            runtime_ms=pt.runtime_ms + online.runtime_ms,
            online_rounds=online.rounds, online_converged=online.converged,
            mu_utility_comm=float(net[kind == COMM].sum()),
            mu_utility_sensing=float(net[kind == SENSING].sum()) + extra_value,
            bs_utility_comm=float(transfer[kind == COMM].sum()),
            bs_utility_sensing=float(transfer[kind == SENSING].sum()),
            welfare_upper_bound=bound,
        )
        self.transactions.append(record)
        return record

    def _optimal(self, pending: PendingTransaction) -> OnlineOutcome:
        """Welfare bound over both client structures (coalition or individual sensing).

        Solutions of the alternative structure's sensing clients are appended with client ids
        offset by ``n_clients``; a coalition and each of its members' own sensing requests are
        mutually exclusive.
        """
        book, alt = self.book, self.alt_book
        assert alt is not None and pending.candidates is not None
        assert pending.candidate_values is not None
        cand, n = pending.candidates, book.n_clients
        alt_present = alt.client_present(pending.mu_present)
        alt_cand = np.flatnonzero(alt_present[alt.sol_client]
                                  & (alt.client_kind[alt.sol_client] == SENSING))
        alt_values = alt.realised_values(alt_cand, pending.mu_present, pending.fading)
        sol_client = np.r_[book.sol_client[cand], alt.sol_client[alt_cand] + n]
        sol_bs = np.r_[book.sol_bs[cand], alt.sol_bs[alt_cand]]
        sol_b = np.r_[book.sol_bandwidth_hz[cand], alt.sol_bandwidth_hz[alt_cand]]
        sol_p = np.r_[book.sol_power_w[cand], alt.sol_power_w[alt_cand]]
        values = np.r_[pending.candidate_values, alt_values]
        res = optimal_allocation(sol_client, sol_bs, sol_b, sol_p, values, pending.residual_b,
                                 pending.residual_p, self._groups)
        chosen = res.selected
        sols = np.where(chosen < len(cand), np.r_[cand, alt_cand][chosen], -1).astype(np.int64)
        return OnlineOutcome(sols, sol_client[chosen], sol_bs[chosen], sol_b[chosen],
                             sol_p[chosen], np.zeros(len(chosen)), values[chosen], 0, 0, True,
                             res.runtime_ms, res.upper_bound)

    @staticmethod
    def _exclusive_sensing_groups(book: ClientBook, alt: ClientBook) -> list[NDArray[np.int64]]:
        """Pairs (sensing client, overlapping sensing client of the other structure + n)."""
        owner = np.full(book.n_mus, -1)
        for other in np.flatnonzero(alt.client_kind == SENSING):
            owner[alt.members(int(other))] = other
        return [np.array([k, other + book.n_clients])
                for k in np.flatnonzero(book.client_kind == SENSING)
                for other in np.unique(owner[book.members(int(k))])]

    # ------------------------------------------------------------------ whole episode
    def run(self, workers: int = 1) -> EpisodeResult:
        """Sign (if not yet done) and run every remaining transaction, by the rule (through
        the one episode driver, ``isac_market_env.market.driver``), the transactions' online
        steps on ``workers`` threads (``EpisodeDriver.run``: the same records)."""
        from isac_market_env.market.driver import EpisodeDriver  # it drives this class

        return EpisodeDriver(self).run(workers)

    def result(self) -> EpisodeResult:
        book = self.book
        return EpisodeResult(
            mechanism=self.spec.name, seed=self.seed, scenario=self.scenario, config=self.config,
            client_kind=book.client_kind,
            client_members=[book.members(k).tolist() for k in range(book.n_clients)],
            solutions={"client": book.sol_client, "bs": book.sol_bs,
                       "bandwidth_hz": book.sol_bandwidth_hz, "power_w": book.sol_power_w,
                       "expected_value": book.sol_value, "reserve_price": book.sol_reserve_price},
            signing=self.signing, transactions=list(self.transactions))
