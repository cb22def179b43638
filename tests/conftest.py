"""Shared fixtures: small markets that run in milliseconds, and the EUA data directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import isac_market_env as ime
from isac_market_env.experiments import SMALL_MARKET as SMALL
from isac_market_env.market.records import TransactionRecord
from isac_market_env.mechanisms import knapsack, matching, typed_knapsack, volunteers

EUA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "eua"


def small_market(mechanism: str = "frbank", seed: int = 0, n_mus: int = 6,
                 n_transactions: int = 4, **market: object) -> ime.Market:
    return ime.make_market(mechanism, n_mus=n_mus, n_transactions=n_transactions, seed=seed,
                           scenario_overrides=SMALL, market_overrides=market)


def check_reuse_capacity(market: ime.Market, tx: TransactionRecord) -> None:
    """With spatial reuse: at every BS, every set of mutually conflicting clients (found by
    brute force over the conflict matrix, not by the mechanism's clique finder) fits the band,
    and under the angle model a conflict-free sub-channel assignment exists."""
    from itertools import combinations

    from isac_market_env.mechanisms.reuse import assign_subchannels

    model, sc = market.reuse_model, market.scenario
    assert model is not None
    for j in range(sc.n_bss):
        rows = np.flatnonzero(tx.alloc_bs == j)
        clients = tx.alloc_client[rows]
        conflict = model.conflicts(clients, j)
        for size in range(2, len(rows) + 1 if len(rows) <= 14 else 0):
            for subset in combinations(range(len(rows)), size):
                if conflict[np.ix_(subset, subset)].all():
                    assert tx.alloc_bandwidth_hz[rows[list(subset)]].sum() <= (
                        sc.bs_bandwidth_hz[j] * (1 + 1e-9))
        if model.conflict == "angle" and len(rows):
            b0 = market.config.physics.subchannel_bandwidth_hz
            need = np.rint(tx.alloc_bandwidth_hz[rows] / b0).astype(np.int64)
            assert assign_subchannels(model.spatial_frequency(clients, j), need,
                                      2.0 / sc.bs_tx_antennas[j],
                                      int(sc.bs_bandwidth_hz[j] // b0)) is not None


def check_episode(market: ime.Market) -> None:
    """Assert every per-contract and per-transaction property of a finished episode."""
    sc, book, m, spec = market.scenario, market.book, market.config.market, market.spec
    c = market.contracts
    problem = market.offline_problem() if spec.offline else None
    # offline IR (Prop. 1): pay within [reserve, expected value]; booked within (1+O) supply
    assert np.all(c.pay <= book.sol_value[c.solution] + 1e-9)
    assert np.all(c.pay >= book.sol_reserve_price[c.solution] - 1e-9)
    assert len(np.unique(c.client)) == len(c)
    if problem is not None:
        booked_b = np.bincount(c.bs, c.bandwidth_hz, minlength=sc.n_bss)
        booked_p = np.bincount(c.bs, c.power_w, minlength=sc.n_bss)
        assert np.all(booked_b <= problem.bs_cap_bandwidth_hz * (1 + 1e-9))
        assert np.all(booked_p <= problem.bs_cap_power_w * (1 + 1e-9))
        presence = book.client_presence_prob[c.client]
        # BS risk (eq. 69, 70)
        assert np.all(np.bincount(c.bs, presence * c.bandwidth_hz, minlength=sc.n_bss)
                      <= problem.bs_risk_cap_bandwidth_hz * (1 + 1e-9))
        assert np.all(np.bincount(c.bs, presence * c.power_w, minlength=sc.n_bss)
                      <= problem.bs_risk_cap_power_w * (1 + 1e-9))
        if not spec.overbooking and spec.risk:  # E[v] = 0: client risk (eq. 73, 74) is exact
            from isac_market_env.model.utilities import client_risk
            risk = client_risk(book.sol_value[c.solution], c.pay, presence, 0.0,
                               problem.client_utility_threshold[c.client],
                               m.penalty_client_ratio, m.penalty_bs_ratio)
            assert np.all(risk <= problem.client_risk_limit[c.client] + 1e-9)
        if not spec.overbooking:
            assert np.all(booked_b <= sc.bs_bandwidth_hz * (1 + 1e-9))
    for tx in market.transactions:
        # realised allocations within real supply in every transaction (after volunteers)
        used_b = np.bincount(tx.alloc_bs, tx.alloc_bandwidth_hz, minlength=sc.n_bss)
        used_p = np.bincount(tx.alloc_bs, tx.alloc_power_w, minlength=sc.n_bss)
        if spec.reuse:  # conflicting clients never share bandwidth (docs/mechanisms.md)
            check_reuse_capacity(market, tx)
        else:
            assert np.all(used_b <= sc.bs_bandwidth_hz * (1 + 1e-9))
        assert np.all(used_p <= sc.bs_power_w * (1 + 1e-9))
        # online IR (Prop. 14): temporary contracts pay at most their realised value
        online = tx.alloc_online
        assert np.all(tx.alloc_pay[online] <= tx.alloc_value[online] + 1e-9)
        # each client served at most once per transaction; only present clients are served
        in_book = tx.alloc_client < book.n_clients
        assert len(np.unique(tx.alloc_client)) == len(tx.alloc_client)
        present = book.client_present(tx.mu_present)
        assert np.all(present[tx.alloc_client[in_book]])
        # SW = value delivered to served clients (payments, PelU, PelS are transfers)
        assert tx.social_welfare == pytest.approx(tx.delivered_value, rel=1e-9, abs=1e-9)
        assert tx.client_value.sum() + tx.alloc_value[~in_book].sum() == pytest.approx(
            tx.delivered_value, rel=1e-9, abs=1e-9)
        assert tx.bs_income.sum() == pytest.approx(
            tx.client_paid.sum() - tx.client_received.sum(), rel=1e-9, abs=1e-9)
        assert tx.contracts_failed <= tx.contracts_due
        # a breaching client was present and is neither served nor volunteered; a served
        # contract cost its client at most PelU more than it delivered (else it would breach)
        breached = tx.contract_breached
        assert np.all(present[c.client[breached]])
        assert not set(breached) & set(tx.contract_volunteered)
        assert not set(c.client[breached]) & set(tx.alloc_client[~tx.alloc_online])
        if m.strategic_breach:
            executed = ~tx.alloc_online
            assert np.all(tx.alloc_value[executed] - tx.alloc_pay[executed]
                          >= -m.penalty_client_ratio * tx.alloc_pay[executed] - 1e-9)
        else:
            assert len(breached) == 0


def without_runtimes(tree: object) -> object:
    """A result's ``to_dict()`` without its wall-clock fields (everything else is deterministic)."""
    if isinstance(tree, dict):
        return {k: without_runtimes(v) for k, v in tree.items()
                if "runtime" not in k and "rt_" not in k}
    if isinstance(tree, list):
        return [without_runtimes(v) for v in tree]
    return tree


def numpy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this test use the numpy versions of the compiled loops (the ``fast`` extra)."""
    monkeypatch.setenv("ISAC_MARKET_ENV_JIT", "0")  # the package's one switch, read at use
    assert not matching.load_compiled_matching() and not knapsack.load_compiled_solver()
    assert volunteers.compiled_volunteer_kernels() is None
    assert typed_knapsack.compiled_typed_search() is None
    assert typed_knapsack.compiled_general_search() is None
    assert typed_knapsack.compiled_count_vectors() is None


@pytest.fixture(scope="session")
def eua_dir() -> Path:
    if not (EUA_DIR / "site-optus-melbCBD.csv").is_file():
        pytest.skip("EUA data set not found beside the checkout (../shared/data/eua)")
    return EUA_DIR
