"""Seed 004's ISCC market: M-OURS against a numerical minimiser, the schedules' constraints,
the selection against brute force, and the market's invariants (IR, the three pools, the SW
identity, determinism)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

import isac_market_env as ime
from isac_market_env.cli import main as cli_main
from isac_market_env.config import IsccConfig
from isac_market_env.market.iscc_market import ISCC_MECHANISMS, IsccMarket
from isac_market_env.mechanisms.iscc import (
    SCHEDULES,
    Prices,
    max_workload,
    schedule,
    select_exact,
)
from isac_market_env.scenarios.iscc import shortage

PRICES = Prices(1.0, 1 / 36, 1e-5)
T, B, F, C = 10.0, 40.0, 1e6, 500.0


def random_client(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """a, b, k_dl, k_ul of a client whose model transfers leave time for training."""
    return (rng.uniform(0, 30), rng.uniform(0, 50), rng.uniform(1, 30), rng.uniform(5, 100))


def numerical_min_cost(n: float, a: float, b: float, k_dl: float, k_ul: float) -> float:
    """The least cost of workload ``n`` by SLSQP from 12 random starts (x, y, x1, x2, x3)."""
    rng = np.random.default_rng(0)

    def cost(v: np.ndarray) -> float:
        x, y, x1, x2, x3 = v
        return float(PRICES.per_s * (x + x1 + x2 + x3)
                     + PRICES.per_mhz * (y + k_dl / x1 + k_ul / x3)
                     + PRICES.per_cycle_per_s * C * n / x2)

    cons = [{"type": "eq", "fun": lambda v: (a * v[0] + b * v[0] * v[1] - n) / max(n, 1.0)},
            {"type": "ineq", "fun": lambda v: T - v[2] - v[3] - v[4]},
            {"type": "ineq", "fun": lambda v: B - k_dl / v[2]},
            {"type": "ineq", "fun": lambda v: B - k_ul / v[4]},
            {"type": "ineq", "fun": lambda v: F - C * n / v[3]}]
    best = np.inf
    for _ in range(12):
        start = [rng.uniform(0.01, T), rng.uniform(0, B), k_dl / B + rng.uniform(1e-3, 0.1),
                 C * n / F + rng.uniform(1e-3, 0.1), k_ul / B + rng.uniform(1e-3, 0.1)]
        res = minimize(cost, start, method="SLSQP", constraints=cons,
                       bounds=[(1e-9, T), (0, B), (1e-9, T), (1e-9, T), (1e-9, T)],
                       options={"ftol": 1e-12, "maxiter": 500})
        ok = res.success and all(
            (c["fun"](res.x) >= -1e-7) if c["type"] == "ineq" else abs(c["fun"](res.x)) < 1e-7
            for c in cons)
        if ok:
            best = min(best, float(res.fun))
    return best


def test_mours_equals_a_numerical_minimiser_including_small_workloads() -> None:
    rng = np.random.default_rng(7)
    checked = small = 0
    while checked < 40:
        a, b, k_dl, k_ul = random_client(rng)
        n_max = float(max_workload(np.array([a]), np.array([b]), np.array([k_dl]),
                                   np.array([k_ul]), C, T, B, F)[0])
        if n_max <= 1:
            continue
        # every third a workload below a^2 Delta_b / (b Delta_t), where eq. A.9 goes negative
        threshold = a * a * PRICES.per_mhz / (b * PRICES.per_s)
        n = rng.uniform(0.05, 1) * (min(n_max, threshold) if checked % 3 == 0 else n_max)
        s = schedule(np.array([n]), a, b, np.array([k_dl]), np.array([k_ul]), C, T, B, F,
                     PRICES)
        reference = numerical_min_cost(n, a, b, k_dl, k_ul)
        assert s.feasible[0]
        assert s.cost[0] == pytest.approx(reference, rel=1e-6)
        if n < threshold:
            small += 1
            # visual sensing only: y = 0, x = N / a, generation cost N Delta_t / a
            assert s.sense_bandwidth_mhz[0] == 0.0
            assert s.sense_time_s[0] == pytest.approx(n / a)
        checked += 1
    assert small >= 10


@pytest.mark.parametrize("kind", list(SCHEDULES))
def test_every_schedule_meets_its_constraints_and_costs_at_least_mours(kind: str) -> None:
    rng = np.random.default_rng(3)
    n_clients = 300
    a, b = rng.uniform(0, 30, n_clients), rng.uniform(0, 50, n_clients)
    k_dl, k_ul = rng.uniform(1, 30, n_clients), rng.uniform(5, 100, n_clients)
    n_max = max_workload(a, b, k_dl, k_ul, C, T, B, F)
    n = np.floor(n_max * rng.uniform(0, 1, n_clients))
    s = schedule(n, a, b, k_dl, k_ul, C, T, B, F, PRICES, kind)
    best = schedule(n, a, b, k_dl, k_ul, C, T, B, F, PRICES)
    ok = s.feasible & (n > 0)
    assert s.feasible[n_max > 0].all()
    x, y = s.sense_time_s[ok], s.sense_bandwidth_mhz[ok]
    np.testing.assert_allclose(a[ok] * x + b[ok] * x * y, n[ok], rtol=1e-9)  # eq. A.5
    assert (x <= T * (1 + 1e-12)).all() and (y <= B * (1 + 1e-12)).all()
    np.testing.assert_allclose(s.download_time_s[ok] * s.download_bandwidth_mhz[ok], k_dl[ok],
                               rtol=1e-9)
    np.testing.assert_allclose(s.upload_time_s[ok] * s.upload_bandwidth_mhz[ok], k_ul[ok],
                               rtol=1e-9)
    np.testing.assert_allclose(s.computing_cycles[ok], C * n[ok], rtol=1e-9)
    assert (s.download_time_s + s.compute_time_s + s.upload_time_s <= T * (1 + 1e-9)).all()
    assert (s.compute_cycles_per_s <= F).all()
    assert (s.download_bandwidth_mhz <= B).all() and (s.upload_bandwidth_mhz <= B).all()
    assert (s.cost[ok] >= best.cost[ok] * (1 - 1e-9)).all()
    # pools: only MC-FC (slow, narrow) may use fewer MHz s than M-OURS
    np.testing.assert_allclose(s.computing_cycles, best.computing_cycles, rtol=1e-9)
    if kind != "mc-fc":
        assert (s.time_frequency_mhz_s[ok] >= best.time_frequency_mhz_s[ok] * (1 - 1e-9)).all()


def test_every_mechanism_names_a_schedule() -> None:
    assert {spec.schedule for spec in ISCC_MECHANISMS.values()} <= set(SCHEDULES)


def test_max_workload_is_the_feasibility_edge() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0, 30, 200), rng.uniform(0, 50, 200)
    k_dl, k_ul = rng.uniform(1, 30, 200), rng.uniform(5, 100, 200)
    n_max = max_workload(a, b, k_dl, k_ul, C, T, B, F)
    live = n_max > 0
    at = schedule(n_max, a, b, k_dl, k_ul, C, T, B, F, PRICES)
    above = schedule(n_max * (1 + 1e-6) + 1e-3, a, b, k_dl, k_ul, C, T, B, F, PRICES)
    assert at.feasible[live].all()
    assert not above.feasible[live].any()


def brute_force(client, gain, cost, workload, usage, capacity, demand, max_clients,
                price_gain, price_sample) -> float:
    best = 0.0
    clients = np.unique(client)
    choices = [[-1, *np.flatnonzero(client == k)] for k in clients]
    for pick in itertools.product(*choices):
        chosen = np.array([p for p in pick if p >= 0], dtype=np.int64)
        if max_clients is not None and len(chosen) > max_clients:
            continue
        if (usage[chosen].sum(axis=0) > capacity[0] + 1e-9).any():
            continue
        paid = min(gain[chosen].sum(), demand)
        if price_gain * paid < price_sample * workload[chosen].sum() - 1e-9:
            continue
        best = max(best, price_gain * paid - cost[chosen].sum())
    return best


def test_exact_selection_equals_brute_force_on_small_markets() -> None:
    rng = np.random.default_rng(11)
    for trial in range(60):
        n_clients, levels = int(rng.integers(2, 5)), int(rng.integers(1, 4))
        client = np.repeat(np.arange(n_clients), levels)
        workload = rng.uniform(100, 1000, len(client))
        gain = workload * rng.uniform(0.5e-4, 3e-4, len(client))  # IR binds at times
        cost = workload * rng.uniform(0.001, 0.02, len(client))
        usage = rng.uniform(0.1, 1.0, (len(client), 3))
        capacity = rng.uniform(0.5, 2.5, (1, 3))
        demand = float(rng.uniform(0.05, 0.6))
        max_clients = None if trial % 2 else int(rng.integers(1, n_clients + 1))
        sel = select_exact(client, gain, cost, workload, usage, np.zeros(len(client), np.int64),
                           capacity, 100.0, 0.01, demand, 1.0, 1.0, max_clients, 10.0)
        expected = brute_force(client, gain, cost, workload, usage, capacity, demand,
                               max_clients, 100.0, 0.01)
        assert sel is not None and sel.optimal
        assert sel.objective == pytest.approx(expected, rel=1e-6, abs=1e-9)


SMALL = {"n_clients": 12, "n_targets": 40, "workload_levels": 6}


@pytest.mark.parametrize("mechanism", list(ISCC_MECHANISMS))
@pytest.mark.parametrize("factors", [(1.0, 1.0, 1.0), (0.25, 0.25, 0.25), (0.5, 0.25, 0.5)])
def test_every_round_keeps_ir_pools_demand_and_the_sw_identity(
        mechanism: str, factors: tuple[float, float, float]) -> None:
    t, f, c = factors
    config = IsccConfig(**SMALL, time_factor=t, frequency_factor=f, computing_factor=c,
                        gain_demand=3.0, server_bandwidth_mhz=2000.0)  # the pool can bind
    result = IsccMarket(config, mechanism, 3, seed=2).run()
    for r in result.rounds:
        working = r.server >= 0
        assert (r.active | ~working).all()  # only active clients work
        assert (r.payment[working] >= r.cost[working] - 1e-9).all()  # clients' IR
        assert r.bs_utility >= -1e-9  # the platform's IR
        assert (r.pool_used <= r.pool_capacity * (1 + 1e-9)).all()
        assert r.pool_used.shape == (config.n_servers, 3)
        assert r.paid_gain <= min(config.gain_demand, r.gain.sum()) + 1e-12
        assert r.social_welfare == pytest.approx(r.mu_utility + r.bs_utility, abs=1e-6)
        assert r.social_welfare == pytest.approx(r.delivered_value - r.cost.sum(), abs=1e-6)
        assert (r.workload[~working] == 0).all() and (r.workload[working] > 0).all()
    s = result.summary()
    assert s["social_welfare"] == pytest.approx(s["mu_utility"] + s["bs_utility"], abs=1e-6)


def test_the_frequency_pool_binds_when_the_server_is_congested() -> None:
    config = IsccConfig(**SMALL, gain_demand=None, server_bandwidth_mhz=200.0)
    rounds = IsccMarket(config, "iscc", 2, seed=0).run().rounds
    used = np.array([r.pool_used[0, 0] / r.pool_capacity[0, 0] for r in rounds])
    assert (used > 0.9).all() and (used <= 1 + 1e-9).all()


def test_iscc_welfare_is_at_least_every_exact_baselines() -> None:
    config = IsccConfig(**SMALL, gain_demand=4.0)
    for seed in range(3):
        ours = IsccMarket(config, "iscc", 2, seed).run()
        for name, spec in ISCC_MECHANISMS.items():
            if spec.selection != "exact" or spec.objective != "welfare":
                continue
            other = IsccMarket(config, name, 2, seed).run()
            for mine, theirs in zip(ours.rounds, other.rounds, strict=True):
                assert mine.selection_optimal and theirs.selection_optimal
                np.testing.assert_array_equal(mine.active, theirs.active)  # same draws
                assert mine.objective >= theirs.objective * (1 - 1e-6) - 1e-9


def test_iscc_episodes_are_deterministic() -> None:
    def strip(result: ime.EpisodeResult | object) -> list:
        return [{k: v for k, v in r.to_dict().items() if k != "runtime_ms"}
                for r in result.rounds]  # type: ignore[attr-defined]

    one = ime.simulate("iscc", "iscc-perception", n_mus=15, n_transactions=3, seed=4)
    two = ime.simulate("iscc", "iscc-perception", n_mus=15, n_transactions=3, seed=4)
    other = ime.simulate("iscc", "iscc-perception", n_mus=15, n_transactions=3, seed=5)
    assert strip(one) == strip(two)
    assert strip(one) != strip(other)


def test_bad_iscc_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="different markets"):
        ime.simulate("frbank", "iscc-perception")
    with pytest.raises(ValueError, match="different markets"):
        ime.simulate("iscc", "paper-synthetic")
    with pytest.raises(ValueError, match="unknown key"):
        ime.simulate("iscc", "iscc-perception", scenario_overrides={"n_mus": 3})
    with pytest.raises(ValueError, match="scenario_overrides"):
        ime.simulate("iscc", "iscc-perception", market_overrides={"max_rounds": 3})
    with pytest.raises(ValueError, match="given twice"):
        ime.simulate("iscc", "iscc-perception", n_mus=5, scenario_overrides={"n_clients": 6})
    with pytest.raises(ValueError, match="time_factor"):
        IsccConfig(time_factor=0.0)
    with pytest.raises(TypeError, match="n_clients"):
        IsccConfig(n_clients=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="participation_range"):
        IsccConfig(participation_range=(0.5, 1.5))
    for carrier_ghz in (1e-300, 1e7):  # the radar equation squares the wavelength
        with pytest.raises(ValueError, match="carrier_ghz"):
            ime.simulate("iscc-greedy", "iscc-perception", n_mus=8, n_transactions=1,
                         scenario_overrides={"carrier_ghz": carrier_ghz})
    with pytest.raises(ValueError, match="make_iscc_market"):
        ime.make_market("iscc")
    with pytest.raises(ValueError, match="unknown ISCC mechanism"):
        IsccMarket(IsccConfig(), "frbank")
    with pytest.raises(ValueError, match="resource stock"):
        shortage("1/3")


def test_shortages_scale_the_clients_caps_and_the_pools() -> None:
    full = IsccMarket(IsccConfig(**SMALL), "iscc", 1, 0)
    short = IsccMarket(IsccConfig(**SMALL, **shortage("frequency 1/2:1/4:1/2")), "iscc", 1, 0)
    assert short.time_cap_s == full.time_cap_s / 2
    assert short.bandwidth_cap_mhz == full.bandwidth_cap_mhz / 4
    assert short.computing_cap == full.computing_cap / 2
    np.testing.assert_allclose(short.capacity[0], full.capacity[0] * [1 / 8, 1, 1 / 4])


def test_compare_runs_the_iscc_mechanisms(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["compare", "--scenario", "iscc-perception", "--n-mus", "10",
                     "--transactions", "2", "--seeds", "2", "--workers", "1",
                     "--mechanisms", "iscc,mc-t", "--set", "time_factor=0.5"])
    out = capsys.readouterr().out
    assert code == 0
    assert "iscc-perception: 10 clients" in out and "mc-t" in out
    assert cli_main(["compare", "--scenario", "iscc-perception", "--mechanisms", "frbank"]) == 2
    assert cli_main(["compare", "--mechanisms", "iscc"]) == 2
