"""The other seeds' mechanisms (docs/mechanisms.md): their invariants, the bounds between them,
D-FRONT's exact selection against brute force, and the presets that mirror the seeds."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from conftest import check_episode, small_market

import isac_market_env as ime
from isac_market_env.mechanisms import cdna
from isac_market_env.mechanisms.deferred import best_subset
from isac_market_env.mechanisms.reuse import (
    ReuseModel,
    assign_subchannels,
    bron_kerbosch,
)
from isac_market_env.physics.channel import pairwise_distance_m

SEED001 = ["pricing-matching", "centralized", "bargaining", "nearest", "random"]
SEED003 = ["dfront", "cfront", "gale-shapley"]
NEW = SEED001 + SEED003
NO_REUSE = [m for m in NEW if not ime.get_mechanism(m).reuse] + ["greedy", "greedy-retry",
                                                                   "cooperative"]


@pytest.mark.parametrize("mechanism", NEW)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_invariants(mechanism: str, seed: int) -> None:
    """IR, capacity (with reuse: every conflicting set fits, a sub-channel assignment exists),
    SW = delivered value, one solution per present client (``check_episode``)."""
    market = small_market(mechanism, seed=seed, n_mus=5 + seed, n_transactions=3)
    market.run()
    check_episode(market)
    for tx in market.transactions:
        reserve = market.book.sol_reserve_price[tx.alloc_solution]
        assert np.all(tx.alloc_pay >= reserve - 1e-9)  # a BS never sells below its floor


@pytest.mark.parametrize("mechanism", [*NEW, "cooperative"])
def test_seeded_determinism(mechanism: str) -> None:
    """The same seed gives the same episode (RT aside), the random matching included."""
    def run(seed: int) -> list[tuple[float, ...]]:
        result = ime.simulate(mechanism, n_mus=12, n_transactions=3, seed=seed)
        return [tuple(tx.alloc_solution.tolist() + tx.alloc_pay.tolist())
                for tx in result.transactions]

    assert run(4) == run(4)


def test_random_matching_uses_its_own_stream() -> None:
    """The random matching's draws come from the episode seed (different seeds differ) and
    leave the other streams alone (same participation as every other mechanism)."""
    a = ime.simulate("random", n_mus=20, n_transactions=3, seed=1)
    b = ime.simulate("random", n_mus=20, n_transactions=3, seed=2)
    f = ime.simulate("frbank", n_mus=20, n_transactions=3, seed=1)
    assert [t.alloc_solution.tolist() for t in a.transactions] != [
        t.alloc_solution.tolist() for t in b.transactions]
    for ta, tf in zip(a.transactions, f.transactions, strict=True):
        assert np.array_equal(ta.mu_present, tf.mu_present)


def _values(mechanism: str, seed: int, n_mus: int) -> list[float]:
    market = small_market(mechanism, seed=seed, n_mus=n_mus, n_transactions=2)
    market.run()
    return [tx.delivered_value for tx in market.transactions]


def test_centralized_and_cfront_bound_their_markets() -> None:
    """On many small markets, in every transaction: the centralized association delivers at
    least what any mechanism without reuse delivers, and C-FRONT at least what any mechanism
    delivers (reuse only relaxes the bandwidth rows), both to their MIP gap."""
    reuse_seen = False
    for seed in range(12):
        n_mus = 4 + seed % 5
        central = _values("centralized", seed, n_mus)
        front = _values("cfront", seed, n_mus)
        for mech in NO_REUSE:
            for c, f, v in zip(central, front, _values(mech, seed, n_mus), strict=True):
                assert v <= c * (1 + 1e-6) + 1e-9, (mech, seed)
                assert v <= f * (1 + 1e-6) + 1e-9, (mech, seed)
        for c, f, d in zip(central, front, _values("dfront", seed, n_mus), strict=True):
            assert d <= f * (1 + 1e-6) + 1e-9
            reuse_seen |= f > c * (1 + 1e-6)
    assert reuse_seen  # reuse changes something on these markets: the checks are not vacuous


def _brute_force_best(bid: np.ndarray, bandwidth: np.ndarray, power: np.ndarray,
                      conflict: np.ndarray, cap_b: float, cap_p: float) -> float:
    """Largest total bid over every subset whose mutually conflicting subsets all fit."""
    n, best = len(bid), 0.0
    for mask in range(1 << n):
        members = [i for i in range(n) if mask >> i & 1]
        if power[members].sum() > cap_p * (1 + 1e-9):
            continue
        ok = all(bandwidth[list(c)].sum() <= cap_b * (1 + 1e-9)
                 for size in range(1, len(members) + 1) for c in combinations(members, size)
                 if conflict[np.ix_(c, c)].all())
        if ok:
            best = max(best, float(bid[members].sum()))
    return best


@pytest.mark.parametrize("conflict_model", ["angle", "distance"])
def test_dfront_selection_equals_brute_force(conflict_model: str) -> None:
    """The BS's selection (brute force up to 10 proposals, HiGHS beyond) reaches the brute
    force optimum over every subset; with demands above half the band it is the
    maximum-weight independent set."""
    rng = np.random.default_rng(3)
    for trial in range(40):
        n = int(rng.integers(1, 13))
        xy = rng.uniform(0, 1000, (n, 2))
        model = ReuseModel(conflict_model, xy, np.array([[500.0, 500.0]]),  # type: ignore[arg-type]
                           np.array([int(rng.integers(2, 9))]), 400.0)
        clients = np.arange(n)
        conflict = model.conflicts(clients, 0)
        full_band = trial % 2 == 0
        cap_b = 10.0
        bandwidth = rng.uniform(5.1, 10, n) if full_band else rng.uniform(1, 8, n)
        power = rng.uniform(0.5, 3, n)
        bid = rng.uniform(1, 10, n)
        keep = best_subset(bid, bandwidth, power, model.cliques(clients, 0), cap_b, 8.0)
        if conflict_model == "distance" and not full_band:
            continue  # the clique bound is a relaxation on a disk graph with small demands
        expect = _brute_force_best(bid, bandwidth, power, conflict, cap_b, 8.0)
        assert bid[keep].sum() == pytest.approx(expect, rel=1e-7)
        if full_band:  # an independent set: no two kept clients conflict
            kept = np.flatnonzero(keep)
            assert not conflict[np.ix_(kept, kept)][~np.eye(len(kept), dtype=bool)].any()


def test_bron_kerbosch_finds_every_maximal_clique() -> None:
    rng = np.random.default_rng(8)
    for _ in range(30):
        n = int(rng.integers(1, 9))
        upper = np.triu(rng.random((n, n)) < 0.5, 1)
        adjacent = upper | upper.T | np.eye(n, dtype=bool)
        cliques = [set(c) for size in range(1, n + 1) for c in combinations(range(n), size)
                   if adjacent[np.ix_(c, c)].all()]
        maximal = {frozenset(c) for c in cliques if not any(c < d for d in cliques)}
        assert {frozenset(c.tolist()) for c in bron_kerbosch(adjacent)} == maximal


def test_angle_cliques_and_subchannel_assignment() -> None:
    """Angle model: the window cliques are exactly the maximal cliques, and whenever every
    window fits the band the interval colouring assigns sub-channels without conflicts (and
    it reports failure when a window does not fit)."""
    rng = np.random.default_rng(11)
    for _ in range(60):
        n = int(rng.integers(1, 9))
        model = ReuseModel("angle", rng.uniform(0, 1000, (n, 2)), np.array([[500.0, 500.0]]),
                           np.array([int(rng.integers(2, 9))]), 500.0)
        clients = np.arange(n)
        conflict = model.conflicts(clients, 0)
        windows = {frozenset(c.tolist()) for c in model.cliques(clients, 0)}
        assert windows == {frozenset(c.tolist()) for c in bron_kerbosch(conflict)}
        need = rng.integers(1, 6, n)
        u = model.spatial_frequency(clients, 0)
        half = 2.0 / model.bs_tx_antennas[0]
        fits = all(need[list(c)].sum() <= 10 for c in windows)
        assignment = assign_subchannels(u, need, half, 10)
        assert (assignment is not None) == fits
        if assignment is not None:
            for a, b in combinations(range(n), 2):
                if conflict[a, b]:
                    assert not set(assignment[a].tolist()) & set(assignment[b].tolist())


def test_reuse_check_catches_a_broken_allocation() -> None:
    """The episode check fails on an allocation that puts two conflicting clients on more
    bandwidth than the band (a deliberately broken record)."""
    import dataclasses

    from conftest import check_reuse_capacity

    market = small_market("dfront", seed=0, n_mus=6, n_transactions=1)
    tx = market.transact()
    model = market.reuse_model
    assert model is not None
    j = 0
    clients = np.arange(2)  # comm and sensing clients of MU 0: always conflicting
    broken = dataclasses.replace(
        tx, alloc_client=clients, alloc_bs=np.array([j, j]),
        alloc_bandwidth_hz=np.full(2, 0.6 * market.scenario.bs_bandwidth_hz[j]))
    assert model.conflicts(np.array([0, market.scenario.n_mus]), j)[0, 1]
    broken = dataclasses.replace(broken, alloc_client=np.array([0, market.scenario.n_mus]))
    with pytest.raises(AssertionError):
        check_reuse_capacity(market, broken)


def test_pricing_matching_prices_and_convergence() -> None:
    """Prices stay at or above the reserve, every served client pays at most its value, and
    on the seed's preset the price iteration ends by the seed's rule (the same matching twice)."""
    for seed in range(5):
        result = ime.simulate("pricing-matching", scenario="cdna-synthetic", n_transactions=4,
                              seed=seed)
        assert all(tx.online_converged for tx in result.transactions)
        for tx in result.transactions:
            assert np.all(tx.alloc_pay <= tx.alloc_value + 1e-9)


def test_surplus_share_splits_the_surplus() -> None:
    value, reserve = np.array([10.0, 6.0, 4.0]), np.array([1.0, 2.0, 1.0])
    pay, steps = cdna.surplus_share(value, reserve, 1e-6)
    assert (value - pay).sum() == pytest.approx(pay.sum(), rel=1e-5)
    assert np.all((pay >= reserve) & (pay <= value)) and steps > 1
    pay, _ = cdna.surplus_share(np.array([3.0]), np.array([2.0]), 1e-6)  # reserve > half
    assert pay[0] == pytest.approx(2.0)


def test_bargained_price_meets_in_the_middle() -> None:
    res = cdna.bargaining_trade(2, np.array([0, 1]), np.array([0, 0]), np.array([1.0, 1.0]),
                                np.array([1.0, 1.0]), np.array([10.0, 8.0]),
                                np.array([2.0, 4.0]), np.array([5.0]), np.array([5.0]), 1e-6)
    assert res.client_payment == pytest.approx([6.0, 6.0], rel=1e-5)


@pytest.mark.parametrize("mechanism", SEED001)
def test_trades_only_what_fits_its_bs(mechanism: str) -> None:
    """On the seed's 4-channel market (7.2 MHz BSs) a client's most valuable solutions ask for
    more than a BS has; every mechanism trades among those that fit and serves someone."""
    result = ime.simulate(mechanism, "cdna-synthetic", n_mus=9, n_transactions=2, seed=0,
                          scenario_overrides={"n_bss": 3, "bs_bandwidth_range_mhz": (7.2, 7.2)})
    assert all(len(tx.alloc_client) > 0 for tx in result.transactions)


def test_nearest_asks_only_the_nearest_bs() -> None:
    market = ime.make_market("nearest", n_mus=20, n_transactions=2, seed=3)
    market.run()
    book = market.book
    d = pairwise_distance_m(market.client_xy_m, np.asarray(market.scenario.bs_xy_m))
    for tx in market.transactions:
        for client, bs in zip(tx.alloc_client, tx.alloc_bs, strict=True):
            feasible = np.unique(book.sol_bs[book.sol_client == client])
            assert bs == feasible[np.argmin(d[client, feasible])]


def test_presets_mirror_the_seeds_and_take_overrides() -> None:
    cdna_cfg = ime.make_episode_config("cdna-synthetic")
    assert cdna_cfg.physics.path_loss_slope_db_per_decade == 40.0
    assert (cdna_cfg.scenario.n_bss, cdna_cfg.scenario.n_mus) == (5, 10)
    front = ime.make_episode_config("dfront-synthetic",
                                    market_overrides={"reuse_conflict": "angle"},
                                    physics_overrides={"noise_figure_db": 3.0})
    assert front.market.reuse_conflict == "angle"  # the user's override wins
    assert front.physics.noise_figure_db == 3.0
    assert front.physics.path_loss_at_1km_db == pytest.approx(114.08)  # the preset's stays
    with pytest.raises(ValueError, match="reuse_conflict"):
        ime.make_episode_config(market_overrides={"reuse_conflict": "graph"})
    with pytest.raises(ValueError, match="unknown key"):
        ime.make_episode_config("dfront-synthetic", market_overrides={"reuse": True})
    # no sensing demand in the seeds' markets: only communication clients have solutions
    market = ime.make_market("dfront", scenario="dfront-synthetic", seed=0)
    assert np.all(market.book.client_kind[market.book.sol_client] == 0)


def test_dfront_beats_gale_shapley_on_the_seed_preset() -> None:
    """Seed 003's claim on its own set-up: D-FRONT near C-FRONT and above Gale-Shapley."""
    sw = {m: np.mean([ime.simulate(m, scenario="dfront-synthetic", n_transactions=2, seed=s)
                      .summary()["social_welfare"] for s in range(3)]) for m in SEED003}
    assert sw["gale-shapley"] < sw["dfront"] <= sw["cfront"] * (1 + 1e-6)
    assert sw["dfront"] >= 0.9 * sw["cfront"]


def test_trust_formulas() -> None:
    """Eq. 32 at the seed's h = 20, phi = 4/5; eq. 31 mixes direct and credibility-weighted
    indirect trust; no history means full trust."""
    from isac_market_env.market.trust import TrustConfig, TrustLedger

    ledger = TrustLedger(2, 3, TrustConfig())
    ledger.client_reliability[0] = [1.0, 0.6, np.nan]
    ledger.transactions[0] = [10, 10, 0]
    ledger.client_reliability[1] = [np.nan, 0.9, np.nan]
    ledger.transactions[1] = [0, 30, 0]
    direct = ledger.direct()
    assert direct[0, 0] == pytest.approx(1 / (1 + np.exp(-20 * 0.2)))
    rho = ledger.trust()
    assert rho[1, 0] == pytest.approx(direct[0, 0])  # BS 1 knows client 0 by hearsay only
    assert rho[0, 1] == pytest.approx(0.7 * direct[0, 1] + 0.3 * direct[1, 1])
    assert rho[0, 2] == 1.0 and rho[1, 2] == 1.0


def test_trust_raises_delivered_over_agreed() -> None:
    """With overstating clients, trust shuts them out and contracts deliver more of what they
    agreed (periods after the first; the first has no history and is FRBank for both)."""
    from isac_market_env.market.trust import TrustConfig, run_trust_periods

    config = ime.make_episode_config(n_mus=20)
    trust = TrustConfig(n_periods=4, transactions_per_period=8, overstating_share=0.4)
    gains = []
    for seed in range(3):
        plain = run_trust_periods("paper-synthetic", config, seed, trust, use_trust=False)
        with_trust = run_trust_periods("paper-synthetic", config, seed, trust, use_trust=True)
        assert plain[0].to_dict() == with_trust[0].to_dict()
        assert sum(r.excluded_pairs for r in with_trust[1:]) > 0
        gains.append(np.mean([r.delivered_over_agreed for r in with_trust[1:]])
                     - np.mean([r.delivered_over_agreed for r in plain[1:]]))
    assert np.mean(gains) > 0
