"""Stability of sensing coalitions (Prop. 5 / 12): every member of a coalition with a contract
expects at least u_min^(s) and at least what it would expect trading alone.

A member's expected utility in the coalition is its equal share of the coalition's expected
utility (eq. 28 at the signed contract and the BS's published E[v]; the paper splits costs and
profits equally, p_i = Pay / |c_k|). Alone has two readings, both reported:

* ``alone``: in the market: the same mechanism, scenario and seed with every MU its own sensing
  client (no coalitions); the MU's expected utility from the sensing contract it signs there (0
  without one). This is Prop. 5's "trading as an individual", and ``stable`` checks it;
* ``alone_at_reserve``: the most any individual sensing contract could give the MU (its best
  bundle at the BS's reserve price, E[v] = 0), an upper bound on trading alone at any price.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from isac_market_env.market.market import Market
from isac_market_env.model.clients import SENSING, build_client_book
from isac_market_env.model.utilities import client_expected_utility

TOLERANCE = 1e-9


@dataclass(frozen=True, eq=False)
class CoalitionStability:
    """Per member of a coalition holding a contract: its coalition, its share of the
    coalition's expected utility, and what it expects alone (both readings of the module
    docstring); ``threshold`` is u_min^(s)."""

    mu: NDArray[np.int64]
    coalition: NDArray[np.int64]
    share: NDArray[np.float64]
    alone: NDArray[np.float64]
    alone_at_reserve: NDArray[np.float64]
    threshold: float

    @property
    def above_threshold(self) -> NDArray[np.bool_]:
        return np.asarray(self.share >= self.threshold - TOLERANCE)

    @property
    def better_than_alone(self) -> NDArray[np.bool_]:
        return np.asarray(self.share >= self.alone - TOLERANCE)

    @property
    def better_than_alone_at_reserve(self) -> NDArray[np.bool_]:
        return np.asarray(self.share >= self.alone_at_reserve - TOLERANCE)

    @property
    def stable(self) -> bool:
        """Prop. 5: every member above the threshold and at least as well off as alone."""
        return bool(np.all(self.above_threshold & self.better_than_alone))


def _signed_utility(market: Market, rows: NDArray[np.int64]) -> NDArray[np.float64]:
    """Eq. 27/28 of ``market``'s contracts ``rows`` at their payments and signed E[v]."""
    assert market.signing is not None
    book, c, m = market.book, market.contracts, market.config.market
    return client_expected_utility(book.sol_value[c.solution[rows]], c.pay[rows],
                                   book.client_presence_prob[c.client[rows]],
                                   market.signing.contract_volunteer_rate[rows],
                                   m.penalty_client_ratio, m.penalty_bs_ratio)


def coalition_stability(market: Market) -> CoalitionStability:
    """Prop. 5 / 12 for the signed contracts of ``market`` (an ``isac_market_env.Market``
    after ``sign()``; a market without coalitions has no member to check)."""
    if not isinstance(market, Market):
        raise TypeError(f"coalition_stability needs a Market, got {type(market).__name__}")
    if market.signing is None:
        raise ValueError("coalition_stability needs the signed contracts: call market.sign()")
    book, c, m = market.book, market.contracts, market.config.market
    empty_int, empty = np.zeros(0, dtype=np.int64), np.zeros(0)
    sensing = np.flatnonzero(book.client_kind[c.client] == SENSING)
    if not book.coalitions or sensing.size == 0:
        return CoalitionStability(empty_int, empty_int, empty, empty, empty,
                                  m.utility_threshold_sensing)
    clients = c.client[sensing]
    coalition_utility = _signed_utility(market, sensing)
    alone_book = build_client_book(market.scenario, market.config.scenario,
                                   market.config.physics, m, coalitions=False)
    # each MU's own sensing client in the individual structure is client n_mus + mu
    own = np.flatnonzero(alone_book.client_kind[alone_book.sol_client] == SENSING)
    best_at_reserve = np.zeros(book.n_mus)
    np.maximum.at(best_at_reserve, alone_book.sol_client[own] - alone_book.n_mus,
                  client_expected_utility(
                      alone_book.sol_value[own], alone_book.sol_reserve_price[own],
                      alone_book.client_presence_prob[alone_book.sol_client[own]], 0.0,
                      m.penalty_client_ratio, m.penalty_bs_ratio))
    individual = Market(market.scenario, market.config,
                        dataclasses.replace(market.spec, name=f"{market.spec.name}-individual",
                                            coalitions=False),
                        seed=market.seed, participation=market.participation)
    signed = individual.sign().contracts
    alone_sensing = np.flatnonzero(individual.book.client_kind[signed.client] == SENSING)
    in_market = np.zeros(book.n_mus)
    in_market[signed.client[alone_sensing] - book.n_mus] = _signed_utility(individual,
                                                                           alone_sensing)
    mus, coalitions, shares = [], [], []
    for k, utility in zip(clients.tolist(), coalition_utility.tolist(), strict=True):
        members = book.members(k)
        mus.append(members)
        coalitions.append(np.full(len(members), k, dtype=np.int64))
        shares.append(np.full(len(members), utility / len(members)))
    mu = np.concatenate(mus).astype(np.int64)
    return CoalitionStability(mu, np.concatenate(coalitions), np.concatenate(shares),
                              in_market[mu], best_at_reserve[mu], m.utility_threshold_sensing)
