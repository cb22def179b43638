"""Brute-force search for blocking pairs of a finished matching (Def. 7, 8, 11, 12).

A pair (client c, solution s at BS j) blocks at price p when both strictly gain:

* the client: s at p meets its IR and risk bounds and gives a higher (expected) utility than its
  current contract (0 if unmatched);
* the BS, Type 2: c fits into j's remaining capacity (no eviction needed);
  Type 1: evicting some subset of j's clients makes room and raises j's (expected) utility.

Which prices are tried is ``prices``:

* ``"final"``: the client's final bid on s, the price the market discovered;
* ``"grid"``: any price at or above the final bid, the prices the ascending auction could still
  have offered (the discrete auction's guarantee is no blocking pair on this range);
* ``"any"``: any price Def. 7/8 allow, from the BS's reserve price (the start bid, below which
  the BS never trades: its IR) up to the solution's value.

The prices a client accepts form an interval (its utility is linear in the price, its risk bound
piecewise linear, ``_client_prices``) and the BS's gain is linear in the price, so a pair blocks
at some tried price if and only if it blocks at one end of the client's interval. A pair's
``discount`` is how far below the client's final bid its best blocking price lies, as a fraction
of the solution's value: the price cut a client and a BS would agree on beyond the auction's
prices. The ascending auction is stable up to its bid step: no pair blocks on the grid, and every
pair below it has a discount under one step (docs/model.md, Stability).

Subsets are enumerated exhaustively, so use it on small markets only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from isac_market_env.mechanisms.matching import MatchingProblem, MatchingResult
from isac_market_env.model.utilities import (
    bs_expected_contract_value,
    client_expected_utility,
    client_risk,
)

TOLERANCE = 1e-9
PRICE_RANGES = ("final", "grid", "any")
PriceRange = Literal["final", "grid", "any"]


@dataclass(frozen=True)
class BlockingPair:
    """(client, solution at bs) blocks at ``price`` (the tried price the BS likes best), of
    ``kind`` 1 or 2; ``discount``: (final bid - price) / value, 0 at or above the final bid."""

    client: int
    solution: int
    bs: int
    price: float
    kind: int  # 1 or 2
    discount: float = 0.0


def _client_utility(p: MatchingProblem, vol: np.ndarray, s: int, pay: float) -> float:
    """Eq. 27/28 of solution ``s`` at ``pay``; ``vol``: each solution's E[v]."""
    return float(client_expected_utility(
        p.sol_value[s], pay, p.client_presence[p.sol_client[s]], vol[s],
        p.penalty_client_ratio, p.penalty_bs_ratio))


def _acceptable(p: MatchingProblem, vol: np.ndarray, s: int, pay: float) -> bool:
    c = p.sol_client[s]
    if pay > p.sol_value[s] + 1e-12 or _client_utility(p, vol, s, pay) <= 0:
        return False
    if np.isfinite(p.client_risk_limit[c]):
        risk = client_risk(p.sol_value[s], pay, p.client_presence[c], vol[s],
                           p.client_utility_threshold[c], p.penalty_client_ratio,
                           p.penalty_bs_ratio)
        return bool(risk <= p.client_risk_limit[c] + 1e-12)
    return True


def _linear_interval(slope: float, offset: float, low: float, high: float
                     ) -> tuple[float, float]:
    """The prices in [``low``, ``high``] with ``slope * price + offset <= 0``."""
    if slope > 0:
        return low, min(high, -offset / slope)
    if slope < 0:
        return max(low, -offset / slope), high
    return (low, high) if offset <= 0 else (high, low)


def _client_prices(p: MatchingProblem, vol: np.ndarray, s: int, low: float, top: float,
                   now: float) -> tuple[float, float] | None:
    """The prices in [``low``, ``top``] at which the client accepts ``s`` (IR, positive
    utility, risk bound) and gains over its current utility ``now``, as (lowest, highest), or
    None.

    Every condition is linear in the price on each side of the kink of ``u_max`` (eq. 71) at
    V / (1 + lambda_S), so the prices form one interval, solved exactly; its ends are moved
    inwards by 1e-9 of the value (the strict inequalities) and checked with the utilities.
    """
    c = int(p.sol_client[s])
    value, a, v = float(p.sol_value[s]), float(p.client_presence[c]), float(vol[s])
    lam_u, lam_s = p.penalty_client_ratio, p.penalty_bs_ratio
    # E[u] = e0 + e1 * price (eq. 27/28)
    e0, e1 = a * (1 - v) * value, -a * (1 - v) - (1 - a) * lam_u + a * v * lam_s
    limit, threshold = float(p.client_risk_limit[c]), float(p.client_utility_threshold[c])
    kink = value / (1 + lam_s)
    best: tuple[float, float] | None = None
    for piece_low, piece_high, u_slope, u_offset in ((0.0, kink, -1.0, value),
                                                      (kink, np.inf, lam_s, 0.0)):
        lo, hi = max(low, piece_low), min(top, value, piece_high)
        conditions = [(-e1, -e0), (-e1, now + TOLERANCE - e0)]  # E[u] > 0, E[u] > now
        if np.isfinite(limit):
            # u_max > u_min, and u_max - E[u] <= rho (u_max - u_min) (eq. 73/74)
            conditions.append((-u_slope, threshold - u_offset))
            rho = limit + 1e-12
            conditions.append((u_slope * (1 - rho) - e1, u_offset * (1 - rho) - e0
                               + rho * threshold))
        for slope, offset in conditions:
            lo, hi = _linear_interval(slope, offset, lo, hi)
        if lo <= hi:
            best = (lo, hi) if best is None else (min(best[0], lo), max(best[1], hi))
    if best is None:
        return None
    margin = 1e-9 * value
    lo, hi = best[0] + margin if best[0] > low else low, best[1] - margin if best[1] < top else top
    if lo > hi:
        return None

    def gains(price: float) -> bool:
        return _acceptable(p, vol, s, price) and _client_utility(p, vol, s, price) > now + TOLERANCE

    if not (gains(lo) and gains(hi)):
        return None  # an interval of less than the margin
    return lo, hi


def find_blocking_pairs(problem: MatchingProblem, result: MatchingResult,
                        max_held_per_bs: int = 14, type1: bool = True,
                        prices: PriceRange = "final") -> list[BlockingPair]:
    """All blocking pairs of ``result`` at the ``prices`` of the module docstring.

    ``type1=False`` looks for Type 2 pairs only; that needs no subset enumeration, so it runs on
    markets of any size (``max_held_per_bs`` then does not apply).
    """
    if prices not in PRICE_RANGES:
        raise ValueError(f"prices must be one of {PRICE_RANGES}, got {prices!r}")
    p = problem
    # E[v] per solution: a client's own for the contract it holds, its BS's for the others
    vol = result.solution_volunteer_rate(np.arange(len(p.sol_client)), p.sol_client, p.sol_bs)
    held = result.client_solution
    pay = result.client_payment
    bids = result.final_bids
    caps = np.vstack([p.bs_cap_bandwidth_hz, p.bs_cap_power_w, p.bs_risk_cap_bandwidth_hz,
                      p.bs_risk_cap_power_w])

    def weights(s: np.ndarray) -> np.ndarray:
        a = p.client_presence[p.sol_client[s]]
        return np.vstack([p.sol_bandwidth_hz[s], p.sol_power_w[s], a * p.sol_bandwidth_hz[s],
                          a * p.sol_power_w[s]])

    def bs_value(s: np.ndarray, price: np.ndarray, j: int) -> float:
        return float(bs_expected_contract_value(price, p.client_presence[p.sol_client[s]],
                                                vol[s], p.penalty_client_ratio,
                                                p.penalty_bs_ratio).sum())

    found: list[BlockingPair] = []
    for j in range(p.n_bss):
        mine = np.flatnonzero(held >= 0)  # (a problem may have no solutions at all)
        mine = mine[p.sol_bs[held[mine]] == j]
        sols_j = held[mine]
        if type1 and len(sols_j) > max_held_per_bs:
            raise ValueError(f"BS {j} holds {len(sols_j)} clients; brute force is for small "
                             "markets")
        prices_j = pay[mine]
        current = bs_value(sols_j, prices_j, j)
        slack = caps[:, j] * (1 + 1e-12)
        for s in np.flatnonzero(p.sol_bs == j):
            c = int(p.sol_client[s])
            if held[c] == s:
                continue
            now = _client_utility(p, vol, int(held[c]), float(pay[c])) if held[c] >= 0 else 0.0
            low = float(p.sol_start_bid[s] if prices == "any" else bids[s])
            top = float(bids[s]) if prices == "final" else float(p.sol_value[s])
            accepted = _client_prices(p, vol, int(s), low, top, now)
            if accepted is None:
                continue
            low, high = accepted
            # the BS's gain is linear in the price: per unit of price, ``share``
            share = bs_value(np.array([s]), np.array([1.0]), j)
            best_price = high if share > 0 else low
            w = weights(np.array([s]))[:, 0]
            others = [k for k in range(len(sols_j)) if p.sol_client[sols_j[k]] != c]
            kept_value = -np.inf  # the most the BS keeps of its other clients beside s
            kind = 0
            if np.all(weights(sols_j[others]).sum(axis=1) + w <= slack):  # no eviction needed
                kept_value = bs_value(sols_j[others], prices_j[others], j)
                if best_price * share + kept_value > current + TOLERANCE:
                    kind = 2
            if type1:
                for size in range(len(others) + 1):
                    for kept in itertools.combinations(others, size):
                        idx = list(kept)
                        if np.all(weights(sols_j[idx]).sum(axis=1) + w <= slack):
                            kept_value = max(kept_value,
                                             bs_value(sols_j[idx], prices_j[idx], j))
                if kind == 0 and best_price * share + kept_value > current + TOLERANCE:
                    kind = 1
            if kind == 0:
                continue
            found.append(BlockingPair(c, int(s), j, best_price, kind,
                                      max(float(bids[s]) - best_price, 0.0)
                                      / float(p.sol_value[s])))
    return found


def largest_blocking_discount(problem: MatchingProblem, result: MatchingResult) -> float:
    """The largest ``discount`` of the blocking pairs at any price (0 for a stable matching):
    how far below its final bid, as a fraction of the value, a pair still blocks."""
    return max((pair.discount for pair in find_blocking_pairs(problem, result, prices="any")),
               default=0.0)
