"""Brute-force search for blocking pairs of a finished matching (Def. 7, 8, 11, 12).

A pair (client c, solution s at BS j) blocks at the price the market discovered for it (the
client's final bid on s) when both strictly gain:

* the client: s at that price meets its IR and risk bounds and gives a higher (expected) utility
  than its current contract (0 if unmatched);
* the BS, Type 2: c fits into j's remaining capacity (no eviction needed);
  Type 1: evicting some subset of j's clients makes room and raises j's (expected) utility.

Subsets are enumerated exhaustively, so use it on small markets only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from isac_market_env.mechanisms.matching import MatchingProblem, MatchingResult
from isac_market_env.model.utilities import (
    bs_expected_contract_value,
    client_expected_utility,
    client_risk,
)

TOLERANCE = 1e-9


@dataclass(frozen=True)
class BlockingPair:
    client: int
    solution: int
    bs: int
    price: float
    kind: int  # 1 or 2


def _client_utility(p: MatchingProblem, vol: np.ndarray, s: int, pay: float) -> float:
    return float(client_expected_utility(
        p.sol_value[s], pay, p.client_presence[p.sol_client[s]], vol[p.sol_bs[s]],
        p.penalty_client_ratio, p.penalty_bs_ratio))


def _acceptable(p: MatchingProblem, vol: np.ndarray, s: int, pay: float) -> bool:
    c = p.sol_client[s]
    if pay > p.sol_value[s] + 1e-12 or _client_utility(p, vol, s, pay) <= 0:
        return False
    if np.isfinite(p.client_risk_limit[c]):
        risk = client_risk(p.sol_value[s], pay, p.client_presence[c], vol[p.sol_bs[s]],
                           p.client_utility_threshold[c], p.penalty_client_ratio,
                           p.penalty_bs_ratio)
        return bool(risk <= p.client_risk_limit[c] + 1e-12)
    return True


def find_blocking_pairs(problem: MatchingProblem, result: MatchingResult,
                        max_held_per_bs: int = 14, type1: bool = True) -> list[BlockingPair]:
    """All blocking pairs of ``result`` at its final bids (see the module docstring).

    ``type1=False`` looks for Type 2 pairs only; that needs no subset enumeration, so it runs on
    markets of any size (``max_held_per_bs`` then does not apply).
    """
    p = problem
    vol = result.bs_volunteer_rate
    held = result.client_solution
    pay = result.client_payment
    bids = result.final_bids
    caps = np.vstack([p.bs_cap_bandwidth_hz, p.bs_cap_power_w, p.bs_risk_cap_bandwidth_hz,
                      p.bs_risk_cap_power_w])

    def weights(s: np.ndarray) -> np.ndarray:
        a = p.client_presence[p.sol_client[s]]
        return np.vstack([p.sol_bandwidth_hz[s], p.sol_power_w[s], a * p.sol_bandwidth_hz[s],
                          a * p.sol_power_w[s]])

    def bs_value(s: np.ndarray, prices: np.ndarray, j: int) -> float:
        return float(bs_expected_contract_value(prices, p.client_presence[p.sol_client[s]],
                                                vol[j], p.penalty_client_ratio,
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
        used = weights(sols_j).sum(axis=1) if len(sols_j) else np.zeros(4)
        for s in np.flatnonzero(p.sol_bs == j):
            c = int(p.sol_client[s])
            if held[c] == s:
                continue
            price = float(bids[s])
            if not _acceptable(p, vol, int(s), price):
                continue
            now = _client_utility(p, vol, int(held[c]), float(pay[c])) if held[c] >= 0 else 0.0
            if _client_utility(p, vol, int(s), price) <= now + TOLERANCE:
                continue
            w = weights(np.array([s]))[:, 0]
            gain = bs_value(np.array([s]), np.array([price]), j)
            slack = caps[:, j] * (1 + 1e-12)
            own = [k for k in range(len(sols_j)) if p.sol_client[sols_j[k]] == c]
            base = used - (weights(sols_j[own]).sum(axis=1) if own else 0.0)
            own_value = bs_value(sols_j[own], prices_j[own], j) if own else 0.0
            if gain > own_value + TOLERANCE and np.all(base + w <= slack):
                found.append(BlockingPair(c, int(s), j, price, 2))
                continue
            if not type1:
                continue
            keep_others = [k for k in range(len(sols_j)) if p.sol_client[sols_j[k]] != c]
            for size in range(len(keep_others) + 1):
                hit = False
                for kept in itertools.combinations(keep_others, size):
                    idx = list(kept)
                    total = w + (weights(sols_j[idx]).sum(axis=1) if idx else 0.0)
                    if np.all(total <= slack):
                        value = gain + (bs_value(sols_j[idx], prices_j[idx], j) if idx else 0.0)
                        if value > current + TOLERANCE:
                            found.append(BlockingPair(c, int(s), j, price, 1))
                            hit = True
                            break
                if hit:
                    break
    return found
