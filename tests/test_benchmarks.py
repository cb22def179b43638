"""The benchmark scripts run and write the JSON that docs/performance.md reports from (their
numbers are checked by reading them, not by tests)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bench_envs_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "envs.json"
    printed = run_script("bench_envs.py", "--n-mus", "10", "--seconds", "0.2", "--ppo-steps",
                         "512", "--rllib-iterations", "0", "--json", str(out), cwd=tmp_path)
    rows = json.loads(out.read_text())
    assert "compiled" in rows[0]
    training = [r for r in rows if "ppo_steps" in r]
    assert [r["env"] for r in training] == ["ISACMarket-Bidding-v0", "ISACMarket-Overbooking-v0"]
    for row in training:
        assert row["env_share"] == pytest.approx(1 - row["ppo_trivial_env_s"] / row["ppo_s"])
        assert row["ppo_steps"] == 512 and row["episode_length"] >= 1
    rows = [r for r in rows if "ppo_steps" not in r]
    single = [r for r in rows[1:] if "async_workers" not in r]
    assert [(r["env"][11:], r["n_mus"], r["market_overrides"]) for r in single] == [
        ("Bidding-v0", 10, {}), ("Overbooking-v0", 10, {}),
        ("Bidding-v0", 20, {}), ("Overbooking-v0", 20, {}),
        ("Bidding-v0", 10, {"knapsack_node_limit": 3000}),
        ("Overbooking-v0", 10, {"knapsack_node_limit": 3000})]
    parallel = [r for r in rows[1:] if "async_workers" in r]
    assert [r["env"] for r in parallel] == ["ISACMarket-Bidding-v0", "ISACMarket-Overbooking-v0"]
    for row in rows[1:]:
        rate = row.get("steps_per_s", row.get("periods_per_s"))
        assert isinstance(rate, float) and rate > 0
    assert "async workers" in printed and "of the run" in printed


def test_bench_multiagent_writes_every_repeat(tmp_path: Path) -> None:
    out = tmp_path / "ma.json"
    printed = run_script("bench_multiagent.py", "--n-mus", "8", "--seconds", "0.2",
                         "--repeats", "2", "--json", str(out), cwd=tmp_path)
    rows = json.loads(out.read_text())
    assert [r["repeat"] for r in rows] == [0, 1]
    for row in rows:
        assert row["ratio"] == pytest.approx(row["multiagent_decisions_per_s"]
                                             / row["bidding_steps_per_s"])
        assert row["multiagent_decisions_per_step"] >= 1.0  # every step has a decision
    assert "median ratio" in printed


@pytest.mark.slow
def test_bench_core_quick_writes_every_measurement(tmp_path: Path) -> None:
    out = tmp_path / "core.json"
    run_script("bench_core.py", "--quick", "--json", str(out), cwd=tmp_path)
    result = json.loads(out.read_text())
    assert len(result["signing_100_mus_ms"]) == 3
    assert len(result["transaction_100_mus_ms"]) == 30
    assert all(len(r["signing_ms"]) == 3 for r in result["knapsack_node_limit"])
    assert len(result["eua_episode_100_tx_ms"]) == 2
    assert [g["n_mus"] for g in result["signing_growth"]][:4] == [50, 100, 200, 500]
    assert all(g["converged"] for g in result["signing_growth"])
    assert [r["bid_increment_fraction"] for r in result["bid_step"]] == [0.05, 0.1, 0.2, 0.4]


@pytest.mark.slow
def test_bench_mechanisms_quick_writes_every_row(tmp_path: Path) -> None:
    """Every online mechanism on both ISAC markets and seed 004's on both ISCC rows (about
    2 minutes: centralized and C-FRONT run to their time limits)."""
    from conftest import EUA_DIR

    from isac_market_env.market.iscc_market import ISCC_MECHANISMS

    out = tmp_path / "mechanisms.json"
    run_script("bench_mechanisms.py", "--quick", "--json", str(out), "--eua-dir", str(EUA_DIR),
               cwd=tmp_path)
    result = json.loads(out.read_text())
    assert "cooperative" in result["paper-synthetic, 100 MUs"]
    for label in ("iscc-perception", "iscc-perception, demand 10"):
        assert set(result[label]) == set(ISCC_MECHANISMS)
        assert all(r["transaction_median_ms"] > 0 for r in result[label].values())


@pytest.mark.slow
def test_bench_envs_measures_the_rllib_iteration(tmp_path: Path) -> None:
    """The multi-agent market's share of an RLlib iteration against its trivial twin."""
    pytest.importorskip("ray.rllib")
    out = tmp_path / "envs.json"
    printed = run_script("bench_envs.py", "--n-mus", "8", "--only-training", "--ppo-steps", "0",
                         "--rllib-iterations", "1", "--rllib-batch", "100", "--json", str(out),
                         cwd=tmp_path)
    rows = json.loads(out.read_text())
    assert [r["env"] for r in rows[1:]] == ["isac_market_v0 (RLlib)"]
    row = rows[1]
    assert row["env_share"] == pytest.approx(1 - row["trivial_iteration_s"] / row["iteration_s"])
    assert row["episode_length"] >= 1 and row["agents_per_step"] >= 1
    assert "of an iteration" in printed


def test_bench_scaling_fits_exponents_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "scaling.json", tmp_path / "scaling.png"
    printed = run_script("bench_scaling.py", "--mus", "10,20", "--bss", "3,5", "--transactions",
                         "1", "--json", str(out), "--plot", str(png), cwd=tmp_path)
    result = json.loads(out.read_text())
    assert {(r["n_mus"], r["n_bss"]) for r in result["grid"]} == {
        (10, 3), (20, 3), (10, 5), (20, 5)}
    assert all(r["signing_converged"] and r["transaction_ms_median"] > 0
               for r in result["grid"])
    fits = result["exponents"]["signing_ms"]
    assert set(fits["in_mus"]) == {"3_bss", "5_bss"} and set(fits["in_bss"]) == {"10_mus",
                                                                                   "20_mus"}
    assert png.stat().st_size > 10_000 and "exponent in MUs" in printed
    # a second run resumes: every cell is already in the file
    again = run_script("bench_scaling.py", "--mus", "10,20", "--bss", "3,5", "--json", str(out),
                       cwd=tmp_path)
    assert "seed 0: signing" not in again


def test_bench_scaling_exponent_is_the_log_log_slope() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    from bench_scaling import fitted_exponent

    assert fitted_exponent([10, 100, 1000], [3.0, 300.0, 30000.0]) == pytest.approx(2.0)
    assert fitted_exponent([10], [1.0]) is None


def test_bench_releases_compares_two_trees(tmp_path: Path) -> None:
    """Against itself: the same digests, a ratio near 1 (measured, not asserted tightly)."""
    out = tmp_path / "releases.json"
    root = BENCHMARKS.parent
    printed = run_script("bench_releases.py", "--baseline", str(root), "--workloads",
                         "signing", "--repeats", "1", "--json", str(out), cwd=tmp_path)
    result = json.loads(out.read_text())["signing"]
    assert result["identical"] and len(result["current_digests"]) == 1
    assert 0.2 < result["speedup"] < 5
    assert "signing: current" in printed


def test_profile_rounds_splits_every_cycle(tmp_path: Path) -> None:
    """The instrumented rounds play the package's matchings (the script checks their results)
    and split every counted cycle among the pieces."""
    pytest.importorskip("numba")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the script reads x86-64's cycle counter")
    out = tmp_path / "rounds.json"
    for phase in ("signing", "online"):
        printed = run_script("profile_rounds.py", "--n-mus", "20", "--seeds", "2", "--phase",
                             phase, "--json", str(out), cwd=tmp_path)
        row = json.loads(out.read_text())
        share = row["share"]
        assert sum(share[p] for p in ("proposals", "answers", "estimates", "raises")) == (
            pytest.approx(1.0))
        assert 0 < share["selection_search"] < share["selection"] < share["answers"]
        assert 0 <= share["exact_expectation"] <= share["estimates"]
        # online matchings publish no E[v]
        assert (share["exact_expectation"] > 0) == (phase == "signing")
        assert row["rounds"] > 0 and row["matchings"] >= 1 and "cycles per round" in printed
