"""Long-running checks, excluded from CI by ``-m "not slow"``; run them with ``pytest -m slow``.

Larger markets for the episode properties, many more brute-force stability and knapsack
instances, and the overbooking training run of docs/training.md (about 12 minutes in all on 2
cores with the ``fast`` extra, 10.5 of them the training run).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import small_market
from test_knapsack import check_proofs_against_highs, exact_optimum, random_instance
from test_market import MARKET_MECHANISMS, check_episode

import isac_market_env as ime
from isac_market_env.mechanisms.knapsack import solve_knapsack
from isac_market_env.mechanisms.matching import run_matching
from isac_market_env.metrics.stability import find_blocking_pairs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("mechanism", MARKET_MECHANISMS)
def test_paper_synthetic_100_mus(mechanism: str) -> None:
    market = ime.make_market(mechanism, n_mus=100, n_transactions=5, seed=5)
    market.run()
    check_episode(market)


def test_eua_episode_20_transactions(eua_dir) -> None:  # type: ignore[no-untyped-def]
    market = ime.make_market("frbank", scenario="eua-melbourne", n_transactions=20, seed=3,
                             eua_directory=eua_dir)
    market.run()
    check_episode(market)


@pytest.mark.parametrize("mechanism", ["hybrid", "conoffline", "frbank", "hybrido",
                                       "frbank-nor", "hybrido-nor", "conoffline-nor"])
def test_no_blocking_pair_on_many_markets(mechanism: str) -> None:
    """300 more small markets per offline mechanism, fixed preferences: no pair blocks on the
    bid grid, and below it every pair's discount is under one bid step."""
    for seed in range(25, 325):
        market = small_market(mechanism, seed, n_mus=int(3 + seed % 7))
        problem = market.offline_problem()
        result = run_matching(problem)
        assert result.converged, seed
        step = problem.bid_steps()
        for pair in find_blocking_pairs(problem, result, prices="any"):
            assert pair.price < result.final_bids[pair.solution], (seed, pair)
            assert pair.discount * problem.sol_value[pair.solution] <= \
                step[pair.solution] + 1e-8 * problem.sol_value[pair.solution], (seed, pair)


@pytest.mark.parametrize("n_mus", [50, 100])
def test_no_type2_blocking_pair_at_full_size(n_mus: int) -> None:
    for seed in range(3):
        problem = ime.make_market("hybrid", n_mus=n_mus, n_transactions=1,
                                  seed=seed).offline_problem()
        result = run_matching(problem)
        assert result.converged
        assert find_blocking_pairs(problem, result, type1=False, prices="grid") == [], seed


def test_knapsack_matches_milp_on_2000_instances() -> None:
    rng = np.random.default_rng(99)
    for _ in range(2000):
        values, weights, caps = random_instance(rng, 40)
        result = solve_knapsack(values, weights, caps)
        assert np.all(weights[:, result.selected].sum(axis=1) <= caps + 1e-6)
        assert result.value == pytest.approx(exact_optimum(np.maximum(values, 0), weights, caps),
                                             rel=1e-6, abs=1e-6)


def test_proven_selections_are_highs_selections_on_many_signings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every selection the proof answers instead of HiGHS, over the 100-MU signings of seeds
    0-29, the 150-MU ones of seeds 0-9 and the 200-MU ones of seeds 0-4, is HiGHS's selection
    (about 2 minutes, most of it HiGHS)."""
    pytest.importorskip("numba")
    proven = check_proofs_against_highs(monkeypatch)
    for n_mus, seeds in [(100, range(30)), (150, range(10)), (200, range(5))]:
        for seed in seeds:
            ime.make_market("frbank", n_mus=n_mus, n_transactions=1, seed=seed).sign()
    assert sum(proven) > 20, proven


def test_overbooking_agent_beats_the_paper_rate(tmp_path: Path) -> None:
    """The docs/training.md run (PPO, 100,000 steps, ~11 min with numba): its final model beats
    the fixed paper rate on the 20 held-out seeds (paired 95% lower bound above zero)."""
    pytest.importorskip("stable_baselines3")
    from isac_market_env.cli import main as cli_main
    from train.ppo import main as train_main

    config = str(ROOT / "train" / "configs" / "overbooking_scarce.json")
    out = tmp_path / "run"
    assert train_main(["--env", "ISACMarket-Overbooking-v0", "--config", config,
                       "--timesteps", "100000", "--n-envs", "2", "--n-steps", "128",
                       "--eval-freq", "5000", "--eval-episodes", "5", "--checkpoint-freq",
                       "10000", "--out", str(out), "--no-progress"]) == 0
    report = tmp_path / "eval.json"
    model = out / "final_model.zip"
    assert cli_main(["evaluate", "--policy", f"fixed,{model}", "--env",
                     "ISACMarket-Overbooking-v0", "--seeds", "20", "--config", config,
                     "--json", str(report)]) == 0
    paired = json.loads(report.read_text())["policies"][1]["paired_difference_to_first"]
    assert paired["social_welfare"] - paired["social_welfare_ci95"] > 0, paired
