"""The ISCC perception market of seed 004 (docs/mechanisms.md, Seed 004) and its mechanisms.

Sellers are the working clients (they sense, train and upload: the workload N in samples),
the platform is the edge server (a BS), which buys the workload at Delta_s per sample (eq. 2.8)
and sells the learning gain Phi = sum lambda Q_n N_n (eq. 2.7) to an application at
Delta_theta per unit (eq. 2.6). Resources are priced at Delta (eq. 2.9) and consumed, so the
social welfare (eq. 2.13 with alpha = beta = 1) is the paid gain's value less the resource
costs; payments are transfers between the clients and the platform. Each round (an ISCC round,
the seed's IR) the active clients report their cost curves, the platform selects workloads
within its servers' three pools (time-frequency, power, time-computation) and notifies the
working clients.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from isac_market_env.config import IsccConfig, MarketConfig
from isac_market_env.market.random_models import draw_overhead
from isac_market_env.mechanisms.iscc import (
    Prices,
    Schedule,
    Selection,
    max_workload,
    schedule,
    select_exact,
    select_in_order,
    welfare_before_gain,
)
from isac_market_env.metrics.overhead import Overhead
from isac_market_env.scenarios.iscc import ISCC_PRESET, IsccWorld, RoundState, dbm_to_w

SelectionRule = Literal["exact", "greedy", "ml-c", "ml-cc"]
# a schedule's resource fields (Schedule's, between ``feasible`` and ``cost``)
SCHEDULE_FIELDS = tuple(f.name for f in dataclasses.fields(Schedule))[1:-1]
POOLS = ("time_frequency_mhz_s", "power_w", "computing_cycles")
# the overhead's delay and energy per exchange: the ISAC market's interaction-cost model
INTERACTION_COSTS = MarketConfig()


@dataclass(frozen=True)
class IsccSpec:
    """An ISCC mechanism: how workloads are scheduled (a key of ``mechanisms.iscc.SCHEDULES``),
    how the platform selects them, and what the selection maximises."""

    name: str
    schedule: str
    selection: SelectionRule
    objective: Literal["welfare", "gain"]
    description: str


ISCC_MECHANISMS: dict[str, IsccSpec] = {spec.name: spec for spec in (
    IsccSpec("iscc", "mours", "exact", "welfare",
             "Seed 004 ISCC: M-OURS least-cost schedules (Alg. 1), exact welfare-maximising "
             "workload selection (MILP)"),
    IsccSpec("iscc-greedy", "mours", "greedy", "welfare",
             "Seed 004 ISCC with a greedy selection: clients by profit per pool share"),
    IsccSpec("sens-opt", "sens-opt", "exact", "welfare",
             "Seed 004 SENS-OPT: only sensing scheduled at least cost, the rest at full rate"),
    IsccSpec("comm-opt", "comm-opt", "exact", "welfare",
             "Seed 004 COMM-OPT: only communication scheduled at least cost"),
    IsccSpec("comp-opt", "comp-opt", "exact", "welfare",
             "Seed 004 COMP-OPT: only computing scheduled at least cost"),
    IsccSpec("mc-t", "mc-t", "exact", "welfare",
             "Seed 004 MC-T: every process at full rate (least time)"),
    IsccSpec("mc-fc", "mc-fc", "exact", "welfare",
             "Seed 004 MC-FC: least frequency and computing (the most time)"),
    IsccSpec("mlpg", "mc-t", "exact", "gain",
             "Seed 004 MLPG: the most learning gain, resource cost ignored"),
    IsccSpec("ml-c", "mours", "ml-c", "welfare",
             "Seed 004 ML-C: clients selected by least communication latency"),
    IsccSpec("ml-cc", "mours", "ml-cc", "welfare",
             "Seed 004 ML-CC: clients selected by least communication + computing latency"),
)}


def get_iscc_mechanism(name: str) -> IsccSpec:
    if name not in ISCC_MECHANISMS:
        raise ValueError(f"unknown ISCC mechanism {name!r}; choose one of "
                         f"{', '.join(ISCC_MECHANISMS)}")
    return ISCC_MECHANISMS[name]


@dataclass(frozen=True, eq=False)
class IsccRound:
    """One ISCC round: per client its server (-1: not working), workload, schedule, cost and
    payment; the gain paid for; the pools used per server."""

    index: int
    active: NDArray[np.bool_]
    server: NDArray[np.int64]
    workload: NDArray[np.float64]
    schedule: NDArray[np.float64]  # (clients, 8): SCHEDULE_FIELDS
    cost: NDArray[np.float64]
    gain: NDArray[np.float64]
    payment: NDArray[np.float64]
    paid_gain: float
    price_per_gain: float
    pool_used: NDArray[np.float64]  # (servers, 3): POOLS
    pool_capacity: NDArray[np.float64]
    objective: float  # alpha R^m + beta sum R_n (eq. 2.13)
    upper_bound: float
    selection_optimal: bool
    n_options: int
    runtime_ms: float
    overhead: Overhead

    @property
    def mu_utility(self) -> float:
        """Sum of the clients' net profits R_n = Delta_s N_n - c_n (eq. 2.12)."""
        return float((self.payment - self.cost).sum())

    @property
    def bs_utility(self) -> float:
        """The platform's net profit R^m = Delta_theta Phi - sum Delta_s N_n (eq. 2.11)."""
        return float(self.price_per_gain * self.paid_gain - self.payment.sum())

    @property
    def delivered_value(self) -> float:
        return float(self.price_per_gain * self.paid_gain)

    @property
    def social_welfare(self) -> float:
        """Value of the paid gain less the resources consumed (= MU + BS utility)."""
        return float(self.delivered_value - self.cost.sum())

    def to_dict(self) -> dict[str, Any]:
        working = np.flatnonzero(self.server >= 0)
        return {"index": self.index, "n_active": int(self.active.sum()),
                "working": working.tolist(), "server": self.server[working].tolist(),
                "workload": self.workload[working].tolist(),
                "schedule": {name: self.schedule[working, i].tolist()
                             for i, name in enumerate(SCHEDULE_FIELDS)},
                "cost": self.cost[working].tolist(), "payment": self.payment[working].tolist(),
                "paid_gain": self.paid_gain, "social_welfare": self.social_welfare,
                "pool_used": self.pool_used.tolist(), "runtime_ms": self.runtime_ms}


@dataclass(frozen=True, eq=False)
class IsccResult:
    """Everything one ISCC episode produced; ``summary()`` gives the shared metrics."""

    mechanism: str
    seed: int | None
    config: IsccConfig
    rounds: list[IsccRound] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        rounds = self.rounds
        n = max(len(rounds), 1)
        overhead = Overhead()
        for r in rounds:
            overhead = overhead + r.overhead
        sw = float(sum(r.social_welfare for r in rounds))
        rt = float(sum(r.runtime_ms for r in rounds))
        used = np.array([r.pool_used.sum(axis=0) / r.pool_capacity.sum(axis=0) for r in rounds])
        out = {
            "social_welfare": sw,
            "social_welfare_per_transaction": sw / n,
            "delivered_value": float(sum(r.delivered_value for r in rounds)),
            "mu_utility": float(sum(r.mu_utility for r in rounds)),
            "bs_utility": float(sum(r.bs_utility for r in rounds)),
            "objective": float(sum(r.objective for r in rounds)),
            "resource_cost": float(sum(r.cost.sum() for r in rounds)),
            "workload": float(sum(r.workload.sum() for r in rounds)),
            "gain": float(sum(r.gain.sum() for r in rounds)),
            "paid_gain": float(sum(r.paid_gain for r in rounds)),
            "rt_ms": rt, "rt_offline_ms": 0.0, "rt_online_ms": rt,
            "ni": float(overhead.ni), "ni_offline": 0.0, "ni_online": float(overhead.ni),
            "dibc_ms": overhead.dibc_ms, "dibc_online_ms": overhead.dibc_ms,
            "ecibc_j": overhead.ecibc_j, "ecibc_online_j": overhead.ecibc_j,
            "drlc": 0.0, "n_contracts": 0.0,
            "rdsl_bandwidth": float(used[:, 0].mean()) if rounds else 0.0,
            "rdsl_power": float(used[:, 1].mean()) if rounds else 0.0,
            "rdsl_computing": float(used[:, 2].mean()) if rounds else 0.0,
            "n_transactions": float(len(rounds)),
            "served_per_transaction": float(sum((r.server >= 0).sum() for r in rounds)) / n,
            "selection_optimal": float(all(r.selection_optimal for r in rounds)),
        }
        spec = ISCC_MECHANISMS[self.mechanism]
        if rounds and spec.objective == "welfare" and spec.selection == "exact":
            # HiGHS's proven bound on the selection's objective, also where it hit its limit
            out["objective_upper_bound"] = float(sum(r.upper_bound for r in rounds))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"mechanism": self.mechanism, "seed": self.seed, "scenario": ISCC_PRESET,
                "config": dataclasses.asdict(self.config),
                "rounds": [r.to_dict() for r in self.rounds], "summary": self.summary()}


@dataclass(frozen=True, eq=False)
class Options:
    """A round's options: (client, server, workload level) triples with their schedules."""

    client: NDArray[np.int64]
    server: NDArray[np.int64]
    workload: NDArray[np.float64]
    gain: NDArray[np.float64]
    schedule: Schedule
    usage: NDArray[np.float64]  # (options, 3): POOLS


class IsccMarket:
    """One episode of an ISCC mechanism: ``n_rounds`` rounds on one moving world."""

    def __init__(self, config: IsccConfig, mechanism: str = "iscc", n_rounds: int = 20,
                 seed: int | None = 0) -> None:
        self.config = config
        self.spec = get_iscc_mechanism(mechanism)
        self.seed = seed
        streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
        self._mobility, self._participation, self._delays = streams[1:]
        self.world = IsccWorld(config, streams[0])
        self.n_rounds = n_rounds
        self.rounds: list[IsccRound] = []
        c = config
        self.time_cap_s = c.round_time_s * c.time_factor
        self.bandwidth_cap_mhz = c.client_bandwidth_mhz * c.frequency_factor
        self.computing_cap = c.client_computing_cycles_per_s * c.computing_factor
        self.prices = Prices(c.price_per_s, c.price_per_mhz, c.price_per_cycle_per_s)
        server_power_w = dbm_to_w(c.server_tx_power_dbm)
        self.power_per_client_w = server_power_w / c.max_active_clients
        self.capacity = np.tile([c.server_bandwidth_mhz * c.frequency_factor * self.time_cap_s,
                                 server_power_w,
                                 c.server_computing_cycles_per_s * c.computing_factor
                                 * self.time_cap_s], (c.n_servers, 1))

    @property
    def done(self) -> bool:
        return len(self.rounds) >= self.n_rounds

    def options(self, state: RoundState, kind: str) -> Options:
        """Every active client's workload levels at every server (N_max k / K, k = 1..K,
        whole samples), scheduled by ``kind``; only feasible levels that pay the client at
        least their cost (its IR, eq. 2.14) are offered."""
        c = self.config
        clients = np.flatnonzero(state.active)
        n_servers = c.n_servers
        pair_client = np.repeat(clients, n_servers)
        pair_server = np.tile(np.arange(n_servers), len(clients))
        k_dl = state.download_mhz_s[pair_client, pair_server]
        k_ul = state.upload_mhz_s[pair_client, pair_server]
        n_max = np.floor(max_workload(state.visual_rate[pair_client],
                                      state.wireless_rate[pair_client], k_dl, k_ul,
                                      c.cycles_per_sample, self.time_cap_s,
                                      self.bandwidth_cap_mhz, self.computing_cap))
        levels = np.arange(1, c.workload_levels + 1) / c.workload_levels
        grid = np.floor(n_max[:, None] * levels[None, :])
        pair = np.repeat(np.arange(len(pair_client)), c.workload_levels)
        workload = grid.ravel()
        keep = workload > 0
        keep[1:] &= ~((pair[1:] == pair[:-1]) & (workload[1:] == workload[:-1]))  # repeats
        pair, workload = pair[keep], workload[keep]
        client, server = pair_client[pair], pair_server[pair]
        sched = schedule(workload, state.visual_rate[client], state.wireless_rate[client],
                         k_dl[pair], k_ul[pair], c.cycles_per_sample, self.time_cap_s,
                         self.bandwidth_cap_mhz, self.computing_cap, self.prices, kind)
        ok = sched.feasible & (c.price_per_sample * workload >= sched.cost)
        sched = _take(sched, ok)
        client, server, workload = client[ok], server[ok], workload[ok]
        usage = np.stack([sched.time_frequency_mhz_s,
                          np.full(len(client), self.power_per_client_w),
                          sched.computing_cycles], axis=1)
        gain = c.gain_per_iid_sample * state.quality[client] * workload
        return Options(client, server, workload, gain, sched, usage)

    def _order(self, opts: Options, state: RoundState) -> NDArray[np.int64]:
        """The clients in the order an ordered selection serves them."""
        c = self.config
        rule = "greedy" if self.spec.selection == "exact" else self.spec.selection
        own = (welfare_before_gain(opts.workload, opts.schedule.cost, c.price_per_sample,
                                   c.platform_weight, c.client_weight)
               + c.platform_weight * c.price_per_gain * opts.gain)
        clients = np.unique(opts.client)
        best = np.array([np.flatnonzero(opts.client == k)[np.argmax(own[opts.client == k])]
                         for k in clients], dtype=np.int64)
        if rule == "greedy":  # profit per share of the pools used
            share = (opts.usage[best] / self.capacity[opts.server[best]]).sum(axis=1)
            key = -own[best] / np.maximum(share, 1e-300)
        else:
            sv = opts.server[best]
            comm = (state.download_mhz_s[clients, sv] + state.upload_mhz_s[clients, sv]) \
                / self.bandwidth_cap_mhz
            key = comm
            if rule == "ml-cc":
                key = comm + c.cycles_per_sample * opts.workload[best] / self.computing_cap
        return np.asarray(clients[np.lexsort((clients, key))], dtype=np.int64)

    def play_round(self) -> IsccRound:
        """Draw the next round, run the mechanism and record it."""
        c = self.config
        state = self.world.next_round(self._mobility, self._participation)
        started = time.perf_counter()
        opts = self.options(state, self.spec.schedule)
        args = (opts.client, opts.gain, opts.schedule.cost, opts.workload, opts.usage,
                opts.server, self.capacity, c.price_per_gain, c.price_per_sample,
                c.gain_demand, c.platform_weight, c.client_weight, c.max_working_clients)
        exact: Selection | None = None
        if self.spec.selection == "exact":
            exact = select_exact(*args, time_limit_s=c.selection_time_limit_s,
                                 objective=self.spec.objective)
        # an ordered rule, or HiGHS found nothing in its time: the greedy selection (the round
        # is then not marked optimal)
        sel = exact if exact is not None else select_in_order(self._order(opts, state), *args)
        runtime_ms = (time.perf_counter() - started) * 1e3
        n = c.n_clients
        chosen = sel.selected
        who = opts.client[chosen]
        server = np.full(n, -1, dtype=np.int64)
        server[who] = opts.server[chosen]
        per_client = np.zeros((n, len(SCHEDULE_FIELDS)))
        for i, name in enumerate(SCHEDULE_FIELDS):
            per_client[who, i] = getattr(opts.schedule, name)[chosen]

        def spread(values: NDArray[np.float64]) -> NDArray[np.float64]:
            out = np.zeros(n)
            out[who] = values[chosen]
            return out

        workload = spread(opts.workload)
        pool_used = np.zeros_like(self.capacity)
        np.add.at(pool_used, opts.server[chosen], opts.usage[chosen])
        record = IsccRound(
            index=len(self.rounds), active=state.active, server=server, workload=workload,
            schedule=per_client, cost=spread(opts.schedule.cost), gain=spread(opts.gain),
            payment=c.price_per_sample * workload, paid_gain=sel.paid_gain,
            price_per_gain=c.price_per_gain, pool_used=pool_used,
            pool_capacity=self.capacity.copy(), objective=sel.objective,
            upper_bound=sel.upper_bound, selection_optimal=sel.optimal,
            n_options=len(opts.client), runtime_ms=runtime_ms,
            overhead=draw_overhead(sel.n_exchanges, INTERACTION_COSTS, self._delays))
        self.rounds.append(record)
        return record

    def run(self) -> IsccResult:
        while not self.done:
            self.play_round()
        return self.result()

    def result(self) -> IsccResult:
        return IsccResult(self.spec.name, self.seed, self.config, list(self.rounds))


def _take(sched: Schedule, keep: NDArray[np.bool_]) -> Schedule:
    return Schedule(*(getattr(sched, f.name)[keep] for f in dataclasses.fields(Schedule)))

