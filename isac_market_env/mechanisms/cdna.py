"""Centralized, hybrid and distributed trading of seed 001 (the cognitive dynamic network
architecture, CDNA) mapped into one ISAC transaction (docs/mechanisms.md, Seed 001).

The seed's secondary users (SUs) buying data and channels from primary users (PUs) are the
present clients buying a (BS, bandwidth, power) solution from the BSs; its operators' revenue
shares (psi, eta, sigma) are transfers between an operator and its own users that the ISAC
market does not have, so they are left out (they move no welfare). Values are the realised
values of the transaction; the reserve price is the BS's floor and its disagreement point.

* ``pricing_matching`` (Alg. 3): BSs post unit prices per MHz and per W; clients rank their
  solutions by utility at those prices; deferred acceptance (BSs accept by payment while their
  resources last); then every price moves by tatonnement, p <- p + w (D - S) (eq. 29), with
  the learning rate w = 1 / |d(D - S)/dp| inside the seed's stability bound
  0 < w < 2 / |d(D - S)/dp| (eq. 30); stop when the matching is the same twice in a row.
* ``centralized_trade`` (Alg. 1): the welfare-maximising association (MILP, HiGHS), then the
  operator negotiates one surplus share until the clients' and the BSs' utilities differ by at
  most chi (|U_S - U_P| <= chi).
* ``bargaining_trade`` (Alg. 2, hybrid): each client bargains a price with the BS of its most
  valuable solution (knowing nothing of what else the BS sells) until U_ij = V_ji within chi',
  then the operator allocates resources to the bargained pairs by a MILP.
* ``nearest_trade`` (the seed's minimum-distance matching, MDM/MCM): each client asks only its
  nearest BS; a BS serves the nearest clients first; clients pay the reserve price.
* ``random_trade``: each client asks for one random solution; a BS serves requests in random
  order while its resources last; clients pay the reserve price.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray

from isac_market_env.mechanisms.deferred import (
    TradeResult,
    deferred_acceptance,
    elapsed_ms,
    greedy_fill,
)
from isac_market_env.mechanisms.optimal import optimal_allocation

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
EXACT_GAP = 1e-6
PRICE_TOLERANCE = 1e-3  # Alg. 3's epsilon, relative to the price
PRICE_STEPS_MAX = 500


def _first_per_client(n_clients: int, sol_client: IntArray, score: FloatArray,
                      eligible: NDArray[np.bool_]) -> IntArray:
    """Each client's highest-``score`` eligible solution (ties: lowest index), -1 if none."""
    best = np.full(n_clients, -1, dtype=np.int64)
    idx = np.flatnonzero(eligible)
    if idx.size:
        order = idx[np.lexsort((idx, -score[idx], sol_client[idx]))]
        first = np.r_[True, sol_client[order][1:] != sol_client[order][:-1]]
        best[sol_client[order[first]]] = order[first]
    return best


def _matched(n_clients: int, sub: IntArray, local: IntArray) -> IntArray:
    out = np.full(n_clients, -1, dtype=np.int64)
    served = local >= 0
    out[served] = sub[local[served]]
    return out


def pricing_matching(n_clients: int, sol_client: IntArray, sol_bs: IntArray,
                     sol_bandwidth_hz: FloatArray, sol_power_w: FloatArray,
                     sol_value: FloatArray, supply_bandwidth_hz: FloatArray,
                     supply_power_w: FloatArray, floor_price_per_hz: float,
                     floor_price_per_w: float, max_iterations: int = 50) -> TradeResult:
    """Matching with tatonnement pricing (Alg. 3, eq. 29-30; module docstring).

    The demand of eq. 29 is every client's favourite solution at the prices (the seed's demand
    functions eq. 27-28 for a market of discrete solutions); the slope of eq. 30 is the secant
    through the last two steps (where the price did not move or demand did not change, the
    step is the price times the relative excess demand). A price never falls below the BS's
    reserve price and moves by at most its own size in one step; the d-th step is damped by
    1 / (1 + d), which keeps every step inside eq. 30's bound and ends the cycles that
    updating all BSs' prices at once (each blind to the others') otherwise runs into. NI counts
    every proposal and every demand report (one per client with a demand, per price step)."""
    started = time.perf_counter()
    n_bss = len(supply_bandwidth_hz)
    resources = np.stack([sol_bandwidth_hz, sol_power_w])  # (2, n_solutions)
    supply = np.stack([supply_bandwidth_hz, supply_power_w]).astype(np.float64)
    floor = np.stack([np.full(n_bss, floor_price_per_hz), np.full(n_bss, floor_price_per_w)])
    price = floor.copy()

    def payments(p: FloatArray) -> FloatArray:
        return np.asarray((p[:, sol_bs] * resources).sum(axis=0))

    def demand(p: FloatArray) -> FloatArray:
        """Resources of every client's favourite solution at prices ``p``, per BS."""
        util = sol_value - payments(p)
        top = _first_per_client(n_clients, sol_client, util, util > 0)
        top = top[top >= 0]
        return np.stack([np.bincount(sol_bs[top], resources[r, top], minlength=n_bss)
                         for r in range(2)])

    last: dict[str, FloatArray] = {}

    def step(p: FloatArray, d: int) -> tuple[FloatArray, int]:
        """One tatonnement step (eq. 29, 30) and how many clients reported a demand."""
        base = demand(p)
        slope = np.zeros_like(p)
        if last:  # secant slope from the previous step, where that price moved
            dp = p - last["price"]
            moved = np.abs(dp) > 0
            slope[moved] = (base - last["demand"])[moved] / dp[moved]
        last.update(price=p, demand=base)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(slope != 0, 1.0 / np.abs(slope),
                            p / np.maximum(np.maximum(base, supply), 1e-300))
        # harmonic damping: every step stays inside eq. 30's bound and the cycles that
        # simultaneous updates of coupled BSs' prices run into die out
        change = np.clip(rate * (base - supply) / (1 + d), -p, p)
        reports = len(np.unique(sol_client[sol_value > payments(p)]))
        return np.maximum(floor, p + change), reports

    exchanges = rounds = steps = 0
    # Stage 1 (Alg. 3, lines 1-12): the price procedure until no price moves by more than
    # PRICE_TOLERANCE of itself
    while steps < PRICE_STEPS_MAX:
        new, reports = step(price, steps)
        steps += 1
        exchanges += reports
        settled = np.all(np.abs(new - price) <= PRICE_TOLERANCE * price)
        price = new
        if settled:
            break
    # Stage 2 (lines 19-23): match at the prices, move them for the matching, until the
    # matching is the same twice in a row
    previous: IntArray | None = None
    converged = False
    match = np.full(n_clients, -1, dtype=np.int64)
    for _ in range(max_iterations):
        pay = payments(price)
        util = sol_value - pay
        sub = np.flatnonzero(util > 0)
        da = deferred_acceptance(n_clients, sol_client[sub], sol_bs[sub], util[sub],
                                 greedy_fill(pay[sub], sol_bandwidth_hz[sub], sol_power_w[sub],
                                             supply_bandwidth_hz, supply_power_w))
        match = _matched(n_clients, sub, da.client_solution)
        exchanges += da.n_proposals
        rounds += da.rounds
        if previous is not None and np.array_equal(match, previous):
            converged = True
            break
        previous = match
        price, reports = step(price, steps)
        steps += 1
        exchanges += reports
    pay = np.where(match >= 0, payments(price)[np.maximum(match, 0)], 0.0)
    return TradeResult(match, pay, exchanges, rounds, converged, elapsed_ms(started))


def surplus_share(value: FloatArray, reserve: FloatArray, tolerance: float
                  ) -> tuple[FloatArray, int]:
    """Alg. 1's price negotiation between the two sides for a fixed association: one share s
    of every served pair's surplus goes to the BSs, pay = reserve + s (value - reserve),
    raised while U_S > U_P + chi and lowered while U_S < U_P - chi (halving steps).

    Returns the payments and the number of negotiation steps. If even the reserve prices give
    the BSs more than half of the value, the price stays at the reserve (s = 0)."""
    total_v, total_r = float(value.sum()), float(reserve.sum())
    chi = tolerance * max(total_v, 1e-300)
    low, high, steps = 0.0, 1.0, 0
    share = 0.0
    while steps < 200:
        steps += 1
        u_clients = (1 - share) * (total_v - total_r)
        u_bss = total_r + share * (total_v - total_r)
        if abs(u_clients - u_bss) <= chi or (share == 0.0 and u_clients < u_bss):
            break
        if u_clients > u_bss:
            low = share
        else:
            high = share
        share = (low + high) / 2
    return reserve + share * (value - reserve), steps


def centralized_trade(n_clients: int, sol_client: IntArray, sol_bs: IntArray,
                      sol_bandwidth_hz: FloatArray, sol_power_w: FloatArray,
                      sol_value: FloatArray, sol_reserve: FloatArray,
                      supply_bandwidth_hz: FloatArray, supply_power_w: FloatArray,
                      tolerance: float = 1e-4) -> TradeResult:
    """Alg. 1: welfare-maximising association (exact to ``EXACT_GAP``), then the surplus
    share. NI: every client's demand report, every assignment, two per negotiation step."""
    started = time.perf_counter()
    chosen = np.full(n_clients, -1, dtype=np.int64)
    pay = np.zeros(n_clients)
    if len(sol_client) == 0:
        return TradeResult(chosen, pay, 0, 0, True, 0.0, 0.0)
    res = optimal_allocation(sol_client, sol_bs, sol_bandwidth_hz, sol_power_w, sol_value,
                             supply_bandwidth_hz, supply_power_w, mip_rel_gap=EXACT_GAP)
    picked = res.selected
    prices, steps = surplus_share(sol_value[picked], sol_reserve[picked], tolerance)
    chosen[sol_client[picked]] = picked
    pay[sol_client[picked]] = prices
    exchanges = len(np.unique(sol_client)) + len(picked) + 2 * steps
    return TradeResult(chosen, pay, exchanges, steps, True, elapsed_ms(started),
                       res.upper_bound)


def bargaining_trade(n_clients: int, sol_client: IntArray, sol_bs: IntArray,
                     sol_bandwidth_hz: FloatArray, sol_power_w: FloatArray,
                     sol_value: FloatArray, sol_reserve: FloatArray,
                     supply_bandwidth_hz: FloatArray, supply_power_w: FloatArray,
                     tolerance: float = 1e-4) -> TradeResult:
    """Alg. 2: per client, the solution of largest surplus (value - reserve) and a bilateral
    price from alternating offers, pi <- pi +- d until |U_ij - V_ji| <= chi' (U = value - pi,
    V = pi - reserve; halving steps, one exchange each); then the MILP serves the bargained
    pairs that fit, most value first (exact to ``EXACT_GAP``)."""
    started = time.perf_counter()
    chosen = np.full(n_clients, -1, dtype=np.int64)
    pay = np.zeros(n_clients)
    surplus = sol_value - sol_reserve
    pick = _first_per_client(n_clients, sol_client, surplus, surplus > 0)
    pairs = pick[pick >= 0]
    if pairs.size == 0:
        return TradeResult(chosen, pay, 0, 0, True, elapsed_ms(started))
    v, r = sol_value[pairs], sol_reserve[pairs]
    low, high = r.copy(), v.copy()
    price = r.copy()
    steps = np.zeros(len(pairs), dtype=np.int64)
    open_ = np.ones(len(pairs), dtype=bool)
    while open_.any() and steps.max() < 200:
        steps[open_] += 1
        gap = (v - price) - (price - r)
        open_ &= np.abs(gap) > tolerance * v
        raise_ = open_ & (gap > 0)
        lower = open_ & (gap < 0)
        low[raise_] = price[raise_]
        high[lower] = price[lower]
        price[open_] = (low[open_] + high[open_]) / 2
    res = optimal_allocation(sol_client[pairs], sol_bs[pairs], sol_bandwidth_hz[pairs],
                             sol_power_w[pairs], v, supply_bandwidth_hz, supply_power_w,
                             mip_rel_gap=EXACT_GAP)
    served = pairs[res.selected]
    chosen[sol_client[served]] = served
    pay[sol_client[served]] = price[res.selected]
    exchanges = int(steps.sum()) + len(pairs) + len(served)
    return TradeResult(chosen, pay, exchanges, int(steps.max()), True, elapsed_ms(started))


def nearest_trade(n_clients: int, sol_client: IntArray, sol_bs: IntArray,
                  sol_bandwidth_hz: FloatArray, sol_power_w: FloatArray, sol_value: FloatArray,
                  sol_reserve: FloatArray, supply_bandwidth_hz: FloatArray,
                  supply_power_w: FloatArray, client_bs_distance_m: FloatArray) -> TradeResult:
    """Minimum-distance matching: a client proposes its solutions at the nearest BS where it
    has any, most valuable first; a BS keeps the nearest clients that fit; pay = reserve."""
    started = time.perf_counter()
    distance = client_bs_distance_m[sol_client, sol_bs]
    nearest = _first_per_client(n_clients, sol_client, -distance, np.ones(len(sol_client), bool))
    home = np.full(n_clients, -1, dtype=np.int64)
    has = nearest >= 0
    home[has] = sol_bs[nearest[has]]
    sub = np.flatnonzero(sol_bs == home[sol_client])
    da = deferred_acceptance(n_clients, sol_client[sub], sol_bs[sub], sol_value[sub],
                             greedy_fill(-distance[sub], sol_bandwidth_hz[sub], sol_power_w[sub],
                                         supply_bandwidth_hz, supply_power_w))
    match = _matched(n_clients, sub, da.client_solution)
    pay = np.where(match >= 0, sol_reserve[np.maximum(match, 0)], 0.0)
    return TradeResult(match, pay, da.n_proposals, da.rounds, da.converged, elapsed_ms(started))


def random_trade(n_clients: int, sol_client: IntArray, sol_bs: IntArray,
                 sol_bandwidth_hz: FloatArray, sol_power_w: FloatArray, sol_reserve: FloatArray,
                 supply_bandwidth_hz: FloatArray, supply_power_w: FloatArray,
                 rng: np.random.Generator) -> TradeResult:
    """Random matching: one uniformly random solution per client, served in random order
    while the BS's resources last (one round); pay = reserve."""
    started = time.perf_counter()
    pick = _first_per_client(n_clients, sol_client, rng.random(len(sol_client)),
                             np.ones(len(sol_client), dtype=bool))
    asks = pick[pick >= 0]
    order_key = np.zeros(len(sol_client))
    order_key[asks] = rng.random(len(asks))
    select = greedy_fill(order_key, sol_bandwidth_hz, sol_power_w, supply_bandwidth_hz,
                         supply_power_w)
    chosen = np.full(n_clients, -1, dtype=np.int64)
    for j in np.unique(sol_bs[asks]).tolist():
        at_j = asks[sol_bs[asks] == j]
        kept = at_j[select(j, at_j)]
        chosen[sol_client[kept]] = kept
    pay = np.where(chosen >= 0, sol_reserve[np.maximum(chosen, 0)], 0.0)
    return TradeResult(chosen, pay, len(asks), 1, True, elapsed_ms(started))
