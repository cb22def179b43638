"""Seed 004: service-oriented ISCC resource management for multimodal federated perception
(docs/mechanisms.md, Seed 004).

A working client's workload N (samples) needs data generation in one communication round (CR)
and data consumption in the next (the seed's ZEROS structure, eq. 2.1):

* generation (App. A, eq. A.5): N = a x + b x y, visual sensing for x seconds at a samples/s and
  wireless sensing for z = x seconds over y MHz at b samples/(s MHz); cost Delta_t x + Delta_b y;
* consumption (App. A, eq. A.10): the global model's download (x1 s over y1 MHz, x1 y1 = k_dl
  MHz s), training (x2 s at z1 cycles/s, x2 z1 = c N cycles) and the local model's upload
  (x3 s over y2 MHz, x3 y2 = k_ul); cost Delta_t (x1 + x2 + x3) + Delta_b (y1 + y2)
  + Delta_f z1, all within one CR's time.

``schedule`` returns the least-cost schedule of a workload (M-OURS, Alg. 1: the closed form of
eq. A.8 clipped to the KKT cases of App. B for generation; for consumption the KKT point with
one multiplier on the CR's time, found by bisection) or one of the single-domain schedules the
seed compares with. ``select_exact`` is the platform's welfare-maximising choice of workloads
(a multiple-choice knapsack over a workload grid with the servers' three pools as capacity
rows, solved exactly by HiGHS); ``select_in_order`` lets clients take their best workload one
after another (greedy by profit density, or by the latency orders ML-C and ML-CC).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array, vstack

from isac_market_env.mechanisms._highs import highs_solve

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# how each domain is scheduled: ``cost`` the least-cost point (M-OURS), ``rate`` at full rate
# (all the bandwidth or computing the client may use: least time), ``time`` using the most time
# (least bandwidth and computing)
DomainRule = Literal["cost", "rate", "time"]
SCHEDULES: dict[str, tuple[DomainRule, DomainRule, DomainRule]] = {
    # (sensing, communication, computing)
    "mours": ("cost", "cost", "cost"),
    "sens-opt": ("cost", "rate", "rate"),
    "comm-opt": ("rate", "cost", "rate"),
    "comp-opt": ("rate", "rate", "cost"),
    "mc-t": ("rate", "rate", "rate"),
    "mc-fc": ("time", "time", "time"),
}
BISECTION_STEPS = 200
SELECTION_GAP = 1e-6


@dataclass(frozen=True)
class Prices:
    """Unit prices of the three resources (the seed's Delta = {Delta_t, Delta_b, Delta_f},
    eq. 2.9)."""

    per_s: float
    per_mhz: float
    per_cycle_per_s: float


@dataclass(frozen=True, eq=False)
class Schedule:
    """Schedules of workloads (arrays over them); zeros where infeasible or N = 0."""

    feasible: BoolArray
    sense_time_s: FloatArray  # x (= z, the wireless sensing time)
    sense_bandwidth_mhz: FloatArray  # y
    download_time_s: FloatArray  # x1
    download_bandwidth_mhz: FloatArray  # y1
    compute_time_s: FloatArray  # x2
    compute_cycles_per_s: FloatArray  # z1
    upload_time_s: FloatArray  # x3
    upload_bandwidth_mhz: FloatArray  # y2
    cost: FloatArray  # eq. 2.10 at the prices; inf where infeasible

    @property
    def time_frequency_mhz_s(self) -> FloatArray:
        """Elements of the server's time-frequency pool used (MHz s)."""
        return np.asarray(self.sense_time_s * self.sense_bandwidth_mhz
                          + self.download_time_s * self.download_bandwidth_mhz
                          + self.upload_time_s * self.upload_bandwidth_mhz)

    @property
    def computing_cycles(self) -> FloatArray:
        """Elements of the server's time-computation pool used (cycles)."""
        return np.asarray(self.compute_time_s * self.compute_cycles_per_s)


def generation_schedule(workload: FloatArray, a: FloatArray, b: FloatArray, time_cap_s: float,
                        bandwidth_cap_mhz: float, prices: Prices, rule: DomainRule
                        ) -> tuple[BoolArray, FloatArray, FloatArray]:
    """(feasible, x, y) of data generation N = a x + b x y (eq. A.5, z = x) within x <= T and
    y <= B (eq. B.3).

    ``cost``: M-OURS, eq. A.8's x0 = sqrt(N Delta_b / (b Delta_t)) clipped to the feasible
    interval [N / (a + b B), min(T, N / a)] (the KKT cases (a)-(d) of App. B). Where
    N < a^2 Delta_b / (b Delta_t), eq. A.8 would give y < 0: x0 > N / a, so x = N / a, y = 0
    (visual sensing only, cost N Delta_t / a). ``rate``: the most samples per second
    (y = B). ``time``: the least bandwidth (x as long as allowed)."""
    n = np.asarray(workload, dtype=np.float64)
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), n.shape)
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), n.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rate_max = a + b * bandwidth_cap_mhz
        lo = np.where(rate_max > 0, n / rate_max, np.inf)
        hi = np.minimum(time_cap_s, np.where(a > 0, n / a, np.inf))
        feasible = (lo <= time_cap_s * (1 + 1e-12)) & (n >= 0)
        if rule == "cost":
            x0 = np.sqrt(n * prices.per_mhz / (b * prices.per_s))  # b = 0: inf, clipped to hi
        elif rule == "rate":
            x0 = lo
        else:
            x0 = hi
        x = np.clip(x0, lo, hi)
        y = np.where(b > 0, np.maximum(n - a * x, 0.0) / (b * x), 0.0)
    zero = n <= 0
    x = np.where(feasible & ~zero, x, 0.0)
    y = np.where(feasible & ~zero, np.minimum(y, bandwidth_cap_mhz), 0.0)
    return feasible, x, y


def _time_multiplier_split(k: FloatArray, cap: FloatArray, unit_price: FloatArray,
                           optimised: BoolArray, time_price: float, budget_s: FloatArray
                           ) -> tuple[BoolArray, FloatArray]:
    """Times x_i of pieces x_i w_i = k_i, w_i <= cap_i, sharing ``budget_s`` (arrays of shape
    (n, pieces)). An optimised piece minimises time_price x + unit_price w: its KKT point is
    x_i = max(k_i / cap_i, sqrt(unit_price_i k_i / (time_price + lambda))), with one
    multiplier lambda >= 0 on the shared time (zero when the budget is slack), found by
    bisection on log(time_price + lambda); a piece that is not optimised runs at full rate
    (x_i = k_i / cap_i). Infeasible where even full rate overruns the budget."""
    with np.errstate(divide="ignore", invalid="ignore"):
        fastest = np.where(k > 0, k / cap, 0.0)
    need = fastest.sum(axis=1)
    feasible = need <= budget_s * (1 + 1e-12)
    weight = np.where(optimised & (k > 0), np.sqrt(unit_price * k), 0.0)

    def times(price: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            stretched = np.where(weight > 0, weight / np.sqrt(price[:, None]), 0.0)
        return np.asarray(np.maximum(fastest, stretched))

    price = np.full(len(k), float(time_price))
    if time_price > 0:
        slack = times(price).sum(axis=1) <= budget_s
    else:
        slack = ~weight.any(axis=1)
    solve = feasible & ~slack
    if solve.any():
        # at price p_hi every optimised piece is at full rate; below p_lo the time overruns
        with np.errstate(divide="ignore", invalid="ignore"):
            kink = np.where(weight > 0, (weight / np.where(fastest > 0, fastest, 1.0)) ** 2, 0.0)
            spare = np.maximum(budget_s - (fastest * (weight == 0)).sum(axis=1), 1e-300)
        hi = np.log(np.maximum(kink.max(axis=1), 1e-300)[solve]) + 1.0
        lo = np.log(np.maximum((weight.sum(axis=1)[solve] / spare[solve]) ** 2, 1e-300)) - 1.0
        lo = np.minimum(lo, hi - 2.0)
        if time_price > 0:
            lo = np.maximum(lo, np.log(time_price))
        sub_budget = budget_s[solve]
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            over = _total_time(mid, fastest[solve], weight[solve]) > sub_budget
            lo = np.where(over, mid, lo)
            hi = np.where(over, hi, mid)
        price[solve] = np.exp(hi)  # the side that keeps the time within the budget
    x = times(price)
    return feasible, np.where(feasible[:, None], x, 0.0)


def _total_time(log_price: FloatArray, fastest: FloatArray, weight: FloatArray) -> FloatArray:
    """Total time of the pieces at time prices exp(log_price) (one per row)."""
    return np.asarray(np.maximum(fastest, weight * np.exp(-0.5 * log_price)[:, None]).sum(axis=1))


def consumption_schedule(workload: FloatArray, download_mhz_s: FloatArray,
                         upload_mhz_s: FloatArray, cycles_per_sample: float, time_cap_s: float,
                         bandwidth_cap_mhz: float, computing_cap_cycles_per_s: float,
                         prices: Prices, comm_rule: DomainRule, comp_rule: DomainRule
                         ) -> tuple[BoolArray, FloatArray]:
    """(feasible, (n, 6) array of x1, y1, x2, z1, x3, y2) of data consumption (eq. A.10,
    B.9-B.11): download, training and upload in series within one CR of ``time_cap_s``.

    ``cost`` pieces take their KKT point with the CR's time priced at Delta_t (M-OURS);
    ``rate`` pieces run at full rate; ``time`` pieces take the least bandwidth or computing
    (time unpriced: the spare time is shared by the same multiplier)."""
    n = np.asarray(workload, dtype=np.float64)
    size = n.shape[0]
    k = np.stack([np.broadcast_to(download_mhz_s, n.shape), cycles_per_sample * n,
                  np.broadcast_to(upload_mhz_s, n.shape)], axis=1).astype(np.float64)
    cap = np.broadcast_to(np.array([bandwidth_cap_mhz, computing_cap_cycles_per_s,
                                    bandwidth_cap_mhz]), k.shape)
    unit = np.broadcast_to(np.array([prices.per_mhz, prices.per_cycle_per_s, prices.per_mhz]),
                           k.shape)
    rules = (comm_rule, comp_rule, comm_rule)
    if "time" in rules and "cost" in rules:
        raise ValueError("a consumption schedule prices the CR's time or leaves it unpriced, "
                         "not both")
    optimised = np.broadcast_to(np.array([r != "rate" for r in rules]), k.shape)
    time_price = 0.0 if "time" in rules else prices.per_s
    feasible, x = _time_multiplier_split(k, cap, unit, optimised, time_price,
                                         np.full(size, float(time_cap_s)))
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(x > 0, k / np.where(x > 0, x, 1.0), 0.0)
    w = np.minimum(w, cap)  # rounding: never above the cap
    working = feasible & (n > 0)
    out = np.stack([x[:, 0], w[:, 0], x[:, 1], w[:, 1], x[:, 2], w[:, 2]], axis=1)
    return feasible, np.where(working[:, None], out, 0.0)


def schedule(workload: FloatArray, a: FloatArray, b: FloatArray, download_mhz_s: FloatArray,
             upload_mhz_s: FloatArray, cycles_per_sample: float, time_cap_s: float,
             bandwidth_cap_mhz: float, computing_cap_cycles_per_s: float, prices: Prices,
             kind: str = "mours") -> Schedule:
    """The schedule ``kind`` (``SCHEDULES``) of each workload; M-OURS (Alg. 1) by default:
    the least-cost schedule, generation and consumption being independent (eq. 3.2)."""
    sens_rule, comm_rule, comp_rule = SCHEDULES[kind]
    n = np.asarray(workload, dtype=np.float64)
    ok_gen, x, y = generation_schedule(n, a, b, time_cap_s, bandwidth_cap_mhz, prices,
                                       sens_rule)
    ok_con, c = consumption_schedule(n, download_mhz_s, upload_mhz_s, cycles_per_sample,
                                     time_cap_s, bandwidth_cap_mhz, computing_cap_cycles_per_s,
                                     prices, comm_rule, comp_rule)
    feasible = ok_gen & ok_con
    working = feasible & (n > 0)
    x, y = np.where(working, x, 0.0), np.where(working, y, 0.0)
    x1, y1, x2, z1, x3, y2 = (np.where(working, v, 0.0) for v in c.T)
    cost = (prices.per_s * (x + x1 + x2 + x3) + prices.per_mhz * (y + y1 + y2)
            + prices.per_cycle_per_s * z1)
    return Schedule(feasible, x, y, x1, y1, x2, z1, x3, y2, np.where(feasible, cost, np.inf))


def max_workload(a: FloatArray, b: FloatArray, download_mhz_s: FloatArray,
                 upload_mhz_s: FloatArray, cycles_per_sample: float, time_cap_s: float,
                 bandwidth_cap_mhz: float, computing_cap_cycles_per_s: float) -> FloatArray:
    """The maximum transaction volume (MTV, eq. B.14): the smaller of generation's
    a T + b T B (eq. C.3) and what training can take in the time the model transfers leave
    at full rate; 0 where the transfers alone overrun the CR."""
    with np.errstate(over="ignore", invalid="ignore"):
        generation = time_cap_s * (np.asarray(a) + np.asarray(b) * bandwidth_cap_mhz)
        spare = time_cap_s - (np.asarray(download_mhz_s) + np.asarray(upload_mhz_s)) \
            / bandwidth_cap_mhz
        consumption = np.maximum(spare, 0.0) * computing_cap_cycles_per_s / cycles_per_sample
        out = np.minimum(generation, consumption)
    return np.asarray(np.where(np.isfinite(out), out, 0.0), dtype=np.float64)


def welfare_before_gain(option_workload: FloatArray, option_cost: FloatArray,
                        price_per_sample: float, platform_weight: float,
                        client_weight: float) -> FloatArray:
    """Each option's share of R (eq. 2.13) before the gain is paid for: beta (Delta_s N - c)
    for the client, - alpha Delta_s N for the platform."""
    return np.asarray(client_weight * (price_per_sample * option_workload - option_cost)
                      - platform_weight * price_per_sample * option_workload)


@dataclass(frozen=True, eq=False)
class Selection:
    """The options (workload levels) chosen, at most one per client, and what they earn.

    ``paid_gain``: learning gain the application pays for (at most its demand);
    ``upper_bound``: HiGHS's proven bound on the objective (the objective itself for the
    ordered selections); ``n_exchanges``: cost reports and selection notices."""

    selected: IntArray
    paid_gain: float
    objective: float
    upper_bound: float
    optimal: bool
    n_exchanges: int
    runtime_ms: float


def _paid(gain: float, demand: float | None) -> float:
    return gain if demand is None else min(gain, demand)


def select_exact(option_client: IntArray, option_gain: FloatArray, option_cost: FloatArray,
                 option_workload: FloatArray, option_usage: FloatArray, usage_server: IntArray,
                 capacity: FloatArray, price_per_gain: float, price_per_sample: float,
                 gain_demand: float | None, platform_weight: float, client_weight: float,
                 max_clients: int | None, time_limit_s: float,
                 objective: Literal["welfare", "gain"] = "welfare") -> Selection | None:
    """Welfare-maximising workloads (eq. 2.13, P1): binary w per option (a client's workload
    level at a server), at most one per client; continuous g <= sum gain w and g <= demand
    (eq. 2.15's cap: gain beyond the demand is not paid for);

        max alpha (Delta_theta g - Delta_s sum N w) + beta sum (Delta_s N - c) w

    subject to the servers' pools (``option_usage`` (n, 3) against ``capacity`` (servers, 3):
    time-frequency, power, time-computation), the platform's IR (eq. 2.14: Delta_theta g >=
    Delta_s sum N w; the clients' IR is met by the options offered) and at most
    ``max_clients`` working clients. ``objective="gain"`` maximises the paid gain instead
    (MLPG), with the welfare as a tie-break. Exact on the grid (HiGHS, gap 1e-6); None when
    HiGHS finds no selection within ``time_limit_s``."""
    started = time.perf_counter()
    n = len(option_client)
    if n == 0:
        return Selection(np.zeros(0, np.int64), 0.0, 0.0, 0.0, True, 0, 0.0)
    clients, row = np.unique(option_client, return_inverse=True)
    cols = np.arange(n)
    # option columns, then g
    welfare = welfare_before_gain(option_workload, option_cost, price_per_sample,
                                  platform_weight, client_weight)
    if objective == "welfare":
        c = np.r_[-welfare, -platform_weight * price_per_gain]
    else:
        scale = 1e-6 / max(1.0, float(np.abs(welfare).max()))
        c = np.r_[-scale * welfare, -price_per_gain]
    blocks = [csr_array((np.ones(n), (row, cols)), shape=(len(clients), n + 1))]
    upper = [np.ones(len(clients))]
    lower = [np.full(len(clients), -np.inf)]
    n_servers = capacity.shape[0]
    for r in range(capacity.shape[1]):
        blocks.append(csr_array((option_usage[:, r], (usage_server, cols)),
                                shape=(n_servers, n + 1)))
        upper.append(capacity[:, r])
        lower.append(np.full(n_servers, -np.inf))
    # g - sum gain w <= 0; Delta_s sum N w - Delta_theta g <= 0
    blocks.append(csr_array(np.r_[-option_gain, 1.0][None, :]))
    blocks.append(csr_array(np.r_[price_per_sample * option_workload, -price_per_gain][None, :]))
    upper += [np.zeros(1), np.zeros(1)]
    lower += [np.full(1, -np.inf), np.full(1, -np.inf)]
    if max_clients is not None:
        blocks.append(csr_array(np.r_[np.ones(n), 0.0][None, :]))
        upper.append(np.array([float(max_clients)]))
        lower.append(np.full(1, -np.inf))
    a = vstack(blocks).tocsr()
    g_max = np.inf if gain_demand is None else gain_demand
    # scaled for HiGHS (coefficients near 1e15 and beyond are errors to it): g in units of the
    # total gain offered, each row by its largest coefficient, the objective by its largest
    g_unit = max(float(option_gain.sum()), 1e-300)
    a = a @ csr_array((np.r_[np.ones(n), g_unit], (np.arange(n + 1), np.arange(n + 1))))
    c = c * np.r_[np.ones(n), g_unit]
    row_max = np.maximum(abs(a).max(axis=1).toarray().ravel(), 1e-300)
    a = csr_array(a.multiply(1.0 / row_max[:, None]))
    c_unit = max(float(np.abs(c).max()), 1e-300)
    with highs_solve():
        res = milp(c / c_unit,
                   constraints=LinearConstraint(a, np.concatenate(lower) / row_max,
                                                np.concatenate(upper) / row_max),
                   integrality=np.r_[np.ones(n), 0.0],
                   bounds=Bounds(np.zeros(n + 1), np.r_[np.ones(n), g_max / g_unit]),
                   options={"mip_rel_gap": SELECTION_GAP, "time_limit": time_limit_s})
    if res.x is None:  # no selection found within the time limit
        return None
    chosen = np.flatnonzero(res.x[:n] > 0.5)
    paid = _paid(float(option_gain[chosen].sum()), gain_demand)
    value = float(welfare[chosen].sum() + platform_weight * price_per_gain * paid)
    dual = getattr(res, "mip_dual_bound", None)
    bound = value
    if objective == "welfare" and dual is not None and np.isfinite(dual):
        bound = max(value, -float(dual) * c_unit)
    return Selection(chosen, paid, value, bound, res.status == 0,
                     len(clients) + len(chosen), (time.perf_counter() - started) * 1e3)


def select_in_order(order: IntArray, option_client: IntArray, option_gain: FloatArray,
                    option_cost: FloatArray, option_workload: FloatArray,
                    option_usage: FloatArray, usage_server: IntArray, capacity: FloatArray,
                    price_per_gain: float, price_per_sample: float, gain_demand: float | None,
                    platform_weight: float, client_weight: float,
                    max_clients: int | None) -> Selection:
    """Clients in ``order`` each take the option that adds the most welfare given what the
    earlier ones took (the demand left, the pools left, the platform's IR), if it adds any;
    at most ``max_clients`` of them work. ``order`` lists clients (the selection rule: greedy
    by profit density, ML-C, ML-CC)."""
    started = time.perf_counter()
    left = capacity.astype(np.float64).copy()
    gain = 0.0
    paid_samples = 0.0
    chosen: list[int] = []
    own = welfare_before_gain(option_workload, option_cost, price_per_sample, platform_weight,
                              client_weight)
    for client in order:
        if max_clients is not None and len(chosen) >= max_clients:
            break
        options = np.flatnonzero(option_client == client)
        if options.size == 0:
            continue
        fits = np.all(option_usage[options] <= left[usage_server[options]] * (1 + 1e-12)
                      + 1e-12, axis=1)
        new_paid = np.array([_paid(gain + g, gain_demand) for g in option_gain[options]])
        platform_ok = (price_per_gain * new_paid
                       >= price_per_sample * (paid_samples + option_workload[options]) - 1e-9)
        added = own[options] + platform_weight * price_per_gain * (new_paid
                                                                    - _paid(gain, gain_demand))
        ok = fits & platform_ok & (added > 0)
        if not ok.any():
            continue
        best = options[ok][int(np.argmax(added[ok]))]
        chosen.append(int(best))
        left[usage_server[best]] -= option_usage[best]
        gain += float(option_gain[best])
        paid_samples += float(option_workload[best])
    picked = np.array(sorted(chosen), dtype=np.int64)
    paid = _paid(float(option_gain[picked].sum()), gain_demand)
    value = float(own[picked].sum() + platform_weight * price_per_gain * paid)
    n_clients = len(np.unique(option_client))
    return Selection(picked, paid, value, value, False, n_clients + len(picked),
                     (time.perf_counter() - started) * 1e3)
