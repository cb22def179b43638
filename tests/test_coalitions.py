"""Sensing coalitions: stability (Prop. 5 / 12) and the two readings of their value (eq. 26)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import isac_market_env as ime
from isac_market_env.market.coalitions import coalition_stability
from isac_market_env.model.clients import SENSING


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coalitions_are_stable_at_60_mus(seed: int) -> None:
    """Prop. 5: every member of a contracted coalition expects at least u_min^(s) and at least
    what it expects from its own sensing contract in the same market without coalitions."""
    market = ime.make_market("frbank", n_mus=60, n_transactions=1, seed=seed)
    market.sign()
    check = coalition_stability(market)
    assert len(check.mu) > 30
    assert check.stable
    assert np.all(check.above_threshold)
    assert np.all(check.alone_at_reserve >= check.alone - 1e-9)  # the reserve price bounds it


def test_a_coalition_charged_its_whole_value_is_not_stable() -> None:
    """Not vacuous: charging every coalition its expected value leaves its members below what
    they expect alone."""
    market = ime.make_market("frbank", n_mus=60, n_transactions=1, seed=0)
    market.sign()
    c = market.contracts
    sensing = market.book.client_kind[c.client] == SENSING
    market.contracts = dataclasses.replace(
        c, pay=np.where(sensing, market.book.sol_value[c.solution], c.pay))
    check = coalition_stability(market)
    assert not check.stable and not check.better_than_alone.all()


def test_coalition_stability_needs_a_signed_market() -> None:
    with pytest.raises(ValueError, match=r"call market\.sign"):
        coalition_stability(ime.make_market("frbank", n_mus=10, n_transactions=1, seed=0))
    market = ime.make_market("hybrid", n_mus=10, n_transactions=1, seed=0)
    market.sign()
    assert len(coalition_stability(market).mu) == 0 and coalition_stability(market).stable


def test_present_members_reading_counts_only_present_members() -> None:
    """``coalition_value_members="present"``: a coalition is worth its present members times
    V^max instead of |c_k| times V^max; nothing changes without coalitions."""
    present = {"coalition_value_members": "present"}
    literal = ime.make_market("frbank", n_mus=30, n_transactions=1, seed=3)
    counted = ime.make_market("frbank", n_mus=30, n_transactions=1, seed=3,
                              physics_overrides=present)
    mu_present = literal.participation[0]
    sols = np.flatnonzero(literal.book.client_kind[literal.book.sol_client] == SENSING)
    clients = literal.book.sol_client[sols]
    n_present = np.array([mu_present[literal.book.members(k)].sum() for k in clients])
    ratio = (counted.book.realised_values(sols, mu_present)
             / literal.book.realised_values(sols, mu_present))
    assert np.allclose(ratio, n_present / literal.book.client_size[clients])
    assert (n_present < literal.book.client_size[clients]).any()
    full = ime.simulate("frbank", n_mus=30, n_transactions=3, seed=3).summary()
    fewer = ime.simulate("frbank", n_mus=30, n_transactions=3, seed=3,
                         physics_overrides=present).summary()
    assert fewer["social_welfare"] < full["social_welfare"]
    alone = [ime.simulate("hybrid", n_mus=30, n_transactions=3, seed=3, physics_overrides=o)
             .summary()["social_welfare"] for o in ({}, present)]
    assert alone[0] == alone[1]
    with pytest.raises(ValueError, match="coalition_value_members must be one of all, present"):
        ime.simulate("frbank", n_mus=5, physics_overrides={"coalition_value_members": "some"})
