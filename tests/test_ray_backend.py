"""``--backend ray``: ``compare`` and ``experiment`` on a local Ray instance give what the
process pool gives (wall-clock fields aside), and the experiment cache resumes the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from isac_market_env.cli import main

pytest.importorskip("ray")
pytest.importorskip("matplotlib")


def without_clock(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def strip(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if not k.startswith("rt")}

    return [{**strip(r), "per_seed": sorted((strip(s) for s in r["per_seed"]),
                                            key=lambda s: s["seed"])} for r in rows]


def test_compare_on_ray_equals_the_process_pool(tmp_path: Path) -> None:
    common = ["compare", "--n-mus", "8", "--transactions", "2", "--seeds", "2",
              "--mechanisms", "frbank,greedy,cooperative", "--workers", "2"]
    assert main([*common, "--json", str(tmp_path / "pool.json")]) == 0
    assert main([*common, "--backend", "ray", "--json", str(tmp_path / "ray.json")]) == 0
    pool = json.loads((tmp_path / "pool.json").read_text())
    ray = json.loads((tmp_path / "ray.json").read_text())
    assert without_clock(ray) == without_clock(pool)


def test_experiment_on_ray_equals_the_process_pool_and_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["experiment", "fig2", "--seeds", "2", "--transactions", "1", "--mus", "6",
              "--workers", "2"]
    assert main([*common, "--out", str(tmp_path / "pool")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--backend", "ray"]) == 0
    pool_csv = (tmp_path / "pool" / "fig2.csv").read_text()
    assert (tmp_path / "ray" / "fig2.csv").read_text() == pool_csv
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "ray"), "--backend", "ray"]) == 0
    assert "28/28 runs already done, resuming" in capsys.readouterr().out
    assert (tmp_path / "ray" / "fig2.csv").read_text() == pool_csv


def test_address_without_ray_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--n-mus", "4", "--address", "127.0.0.1:6379"]) == 2
    assert "--backend ray" in capsys.readouterr().err
