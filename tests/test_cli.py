"""Command-line smoke tests on tiny markets."""

from __future__ import annotations

import csv
import json
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from isac_market_env.cli import main, optimal_note
from isac_market_env.runs import run_tasks

TINY = ["--n-mus", "6", "--transactions", "1", "--workers", "1"]


def test_compare_prints_table_and_writes_json(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.json"
    code = main(["compare", *TINY, "--seeds", "2", "--mechanisms", "frbank,greedy,optimal",
                 "--json", str(out), "--csv", str(tmp_path / "rows.csv")])
    assert code == 0
    text = capsys.readouterr().out
    assert "frbank" in text and "SW (mean ± 95% CI)" in text
    rows = json.loads(out.read_text())
    assert [r["mechanism"] for r in rows] == ["frbank", "greedy", "optimal"]
    for row in rows:
        assert {"social_welfare", "mu_utility", "bs_utility", "rt_ms", "ni", "dibc_ms",
                "ecibc_j", "drlc", "welfare_ratio_to_bound", "per_seed"} <= set(row)
        assert len(row["per_seed"]) == 2
        assert row["welfare_ratio_to_bound"] <= 1.0 + 1e-9
    lines = (tmp_path / "rows.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["mechanism", "n_seeds", "social_welfare", "social_welfare_ci95"]
    assert {"drlc_ci95", "ecibc_j_ci95", "welfare_ratio_to_bound"} <= set(header)
    greedy = dict(zip(header, lines[2].split(","), strict=True))
    assert greedy["mechanism"] == "greedy" and greedy["drlc"] == ""  # signs no contracts
    # every column named with its unit under the table; no DRLC for a mechanism without
    # contracts
    assert "SW/bound" in text and "ECIBC J   energy" in text and "DIBC ms" in text
    greedy_line = next(line for line in text.splitlines() if line.startswith("greedy"))
    assert greedy_line.split()[-2] == "–"
    # the tiny market's MILPs close within their gap: no note about the optimal row
    assert "hit the time limit" not in text


def test_optimal_row_below_its_bound_is_explained() -> None:
    """When HiGHS stops at its time limit (EUA: 92% of the bound), the optimal row's SW is not
    optimal and a market can beat it; the table says so."""
    rows = [{"mechanism": "frbank", "welfare_ratio_to_bound": 0.968},
            {"mechanism": "optimal", "welfare_ratio_to_bound": 0.923}]
    note = optimal_note(rows)
    assert note is not None and "92.3% of the proven bound" in note
    assert optimal_note([{"mechanism": "optimal", "welfare_ratio_to_bound": 0.9995}]) is None
    assert optimal_note([{"mechanism": "frbank", "welfare_ratio_to_bound": 0.5}]) is None


@pytest.mark.parametrize(("argv", "message"), [
    (["compare", "--scenario", "mars"], "unknown scenario"),
    (["compare", "--mechanisms", "frbank,nope"], "unknown mechanism"),
    (["compare", "--scenario", "eua-melbourne", "--eua-dir", "/nonexistent"], "EUA"),
    (["compare", "--seeds", "0"], "--seeds"),
    (["compare", "--market", "bandwith=1"], "bandwith"),
    (["compare", "--market", "knapsack_node_limit"], "KEY=VALUE"),
    (["compare", "--market", "knapsack_node_limit=-1"], "knapsack_node_limit"),
    (["compare", "--market", "overbooking_bandwidth=high"], "JSON"),
])
def test_runtime_errors_are_one_line_exit_2(argv: list[str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_compare_takes_market_fields(tmp_path: Path) -> None:
    """``--market`` reaches every episode: a one-round cap leaves every signing unconverged."""
    out = tmp_path / "rows.json"
    argv = ["compare", *TINY, "--seeds", "2", "--mechanisms", "frbank,hybrido", "--json",
            str(out), "--market", "knapsack_node_limit=1000000"]
    assert main(argv) == 0
    episodes = [s for row in json.loads(out.read_text()) for s in row["per_seed"]]
    assert len(episodes) == 4 and all(s["signing_converged"] == 1.0 for s in episodes)
    assert main([*argv, "--market", "max_rounds=1"]) == 0
    episodes = [s for row in json.loads(out.read_text()) for s in row["per_seed"]]
    assert len(episodes) == 4 and all(s["signing_converged"] == 0.0 for s in episodes)


def test_compare_episode_workers_give_the_same_rows(tmp_path: Path) -> None:
    """``--episode-workers`` plays each episode's transactions on threads: the same rows but
    for the wall-clock fields; random's run serially without a warning on the terminal."""
    def rows(workers: str) -> list[dict[str, object]]:
        out = tmp_path / f"rows{workers}.json"
        assert main(["compare", "--n-mus", "12", "--transactions", "4", "--workers", "1",
                     "--seeds", "2", "--mechanisms", "frbank,cononline,random",
                     "--episode-workers", workers, "--json", str(out)]) == 0
        return [{k: v for k, v in row.items() if "rt_" not in k and k != "per_seed"}
                | {"per_seed": [{k: v for k, v in s.items() if not k.startswith("rt_")}
                                for s in row["per_seed"]]}
                for row in json.loads(out.read_text())]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rows("2") == rows("1")
    assert main(["compare", *TINY, "--episode-workers", "0"]) == 2


def finishes_earlier_the_later_it_comes(task: dict[str, Any]) -> dict[str, Any]:
    time.sleep(0.05 * (4 - task["seed"]))
    return {"seed": task["seed"]}


def test_runs_come_back_in_the_tasks_order() -> None:
    """Whatever order the pool's runs finish in, ``run_tasks`` returns them in the tasks'
    order, so the means an experiment sums from them are the same to the last bit."""
    tasks = [{"mechanism": "frbank", "seed": seed} for seed in range(4)]
    for workers in (1, 2):
        results = run_tasks(tasks, workers, "order", finishes_earlier_the_later_it_comes)
        assert [r["seed"] for r in results] == [0, 1, 2, 3]


def test_experiment_writes_outputs_and_resumes(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    argv = ["experiment", "fig5", "--out", str(tmp_path), "--seeds", "1", "--transactions", "1",
            "--mus", "10,5", "--fig5-mus", "5", "--workers", "1"]
    assert main(argv) == 0
    # progress as it runs (a plain line per tenth of the runs when stderr is not a terminal)
    err = capsys.readouterr().err
    assert "fig5: 48/48 runs done" in err and "ETA" in err
    for name in ("fig5.png", "fig5a.csv", "fig5b.csv", "fig5c.csv"):
        assert (tmp_path / name).stat().st_size > 0
    runs = sorted((tmp_path / "runs").glob("*.json"))
    # RDSL: 6 rates x 2; DRLC: 2 sizes x 6; DRLC by rate: 4 rates x (2 without risk control
    # without fading, the others are RDSL's runs, + 4 with fading)
    assert len(runs) == 2 * 6 + 2 * 6 + 4 * (2 + 4)
    by_rate = (tmp_path / "fig5c.csv").read_text().splitlines()[1:]
    assert len(by_rate) == 2 * 4 * 4
    # MU counts sorted as numbers (5 before 10), not as text
    lines = (tmp_path / "fig5b.csv").read_text().splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == ["5"] * 6 + ["10"] * 6
    assert main(argv) == 0  # everything cached: resumes without rerunning
    assert "already done, resuming" in capsys.readouterr().out


def test_bound_coalitions_and_stability_experiments(tmp_path: Path) -> None:
    """The experiments beyond the paper's figures write their tables: SW over the certified
    bound (at most 1 for every mechanism, the optimal row itself within HiGHS's gap), FRBank's
    margin under both coalition readings, Prop. 5, and blocking pairs against the bid step."""
    pytest.importorskip("matplotlib")
    common = ["--out", str(tmp_path), "--seeds", "2", "--transactions", "1", "--mus", "8",
              "--workers", "1"]
    for name in ("bound", "coalitions", "stability"):
        assert main(["experiment", name, *common]) == 0
    with (tmp_path / "bound.csv").open() as handle:
        bound = list(csv.DictReader(handle))
    assert {r["mechanism"] for r in bound} >= {"frbank", "greedy-retry", "optimal"}
    assert all(float(r["sw_over_bound"]) <= 1 + 1e-9 for r in bound)
    assert "| FRBank |" in (tmp_path / "bound.md").read_text()
    with (tmp_path / "coalitions_margin.csv").open() as handle:
        assert {r["reading"] for r in csv.DictReader(handle)} == {"all", "present"}
    with (tmp_path / "coalitions_stability.csv").open() as handle:
        assert float(next(csv.DictReader(handle))["above_threshold"]) == 1.0
    with (tmp_path / "stability.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert all(float(r["grid_blocked"]) == 0 for r in rows if r["live"] == "False")
    assert (tmp_path / "stability.png").stat().st_size > 0


def test_python_dash_m_entry_point() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "isac_market_env", "compare", "--scenario",
                           "nowhere"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "unknown scenario" in done.stderr


def test_cdna_experiment_writes_its_tables(tmp_path: Path) -> None:
    """Seed 001's experiment: Table IV scenarios beside the seed's numbers, the ratios to the
    centralized scheme (1 for itself), the trust runs and the figure."""
    pytest.importorskip("matplotlib")
    assert main(["experiment", "cdna", "--out", str(tmp_path), "--seeds", "2",
                 "--transactions", "1", "--trust-mus", "8", "--workers", "2"]) == 0
    table = (tmp_path / "cdna_table4.md").read_text()
    assert "| 1 (10, 3, 5) | Centralized |" in table and "| 6 (10, 4, 5) | Random |" in table
    with (tmp_path / "cdna_ratios.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert all(float(r["sw_over_centralized"]) == 1.0 for r in rows
               if r["mechanism"] == "centralized")
    with (tmp_path / "cdna_trust_paired.csv").open() as handle:
        assert {float(r["overstating_share"]) for r in csv.DictReader(handle)} == {0, 0.2, 0.4}
    assert (tmp_path / "cdna.png").stat().st_size > 0


@pytest.mark.slow
def test_dfront_experiment_writes_its_tables(tmp_path: Path) -> None:
    """Seed 003's experiment (EUA included: C-FRONT's MILP takes up to 20 s a transaction)."""
    pytest.importorskip("matplotlib")
    from conftest import EUA_DIR

    assert main(["experiment", "dfront", "--out", str(tmp_path), "--seeds", "2",
                 "--transactions", "1", "--workers", "2", "--eua-dir", str(EUA_DIR)]) == 0
    ratios = (tmp_path / "dfront_ratios.md").read_text()
    assert "| dfront-synthetic, 5 BSs | 20 |" in ratios and "eua-melbourne" in ratios
    assert (tmp_path / "dfront.png").stat().st_size > 0


@pytest.mark.slow
def test_iscc_experiment_writes_its_tables(tmp_path: Path) -> None:
    """Seed 004's experiment: Fig. 5, 8 and 11 tables, the paired claims and the figure
    (about a minute on 2 cores)."""
    pytest.importorskip("matplotlib")
    assert main(["experiment", "iscc", "--out", str(tmp_path), "--seeds", "2",
                 "--transactions", "1", "--workers", "2"]) == 0
    claims = (tmp_path / "iscc_claims.md").read_text()
    assert "| 1/4:1/4:1/4 | 5 |" in claims and "400 MHz server" in claims
    with (tmp_path / "iscc_fig11.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["mechanism"] for r in rows} == {"iscc", "iscc-greedy", "mc-t", "mc-fc", "mlpg"}
    with (tmp_path / "iscc_fig5.csv").open() as handle:
        assert {int(r["working"]) for r in csv.DictReader(handle)} == {5, 10, 20, 40}
    assert (tmp_path / "iscc.png").stat().st_size > 0


def test_cooperative_experiment_writes_its_tables(tmp_path: Path) -> None:
    """Seed 002's experiment: the mechanisms table with paired differences and group counts,
    the block-terms table and the figure (about 20 s)."""
    pytest.importorskip("matplotlib")
    assert main(["experiment", "cooperative", "--out", str(tmp_path), "--seeds", "2",
                 "--transactions", "1", "--workers", "2"]) == 0
    table = (tmp_path / "cooperative.md").read_text()
    assert "| 40 | FRBank |" in table and "| 0.5 | 0.75 |" in table
    with (tmp_path / "cooperative.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert all(float(r["groups_per_transaction"]) == 0 for r in rows
               if r["mechanism"] in ("cononline", "gale-shapley"))
    assert (tmp_path / "cooperative.png").stat().st_size > 0
