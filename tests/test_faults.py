"""Faults: SIGKILLed experiments and training runs resume to the uninterrupted result, corrupt
cache entries and checkpoints are named and recomputed or skipped, workers die with their
parent, and the cache is keyed by what a run computes, not by where it is written."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from isac_market_env.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIG5 = ["experiment", "fig5", "--seeds", "1", "--transactions", "1", "--mus", "6",
        "--fig5-mus", "5"]
WALL_CLOCK = ("rt_ms", "rt_offline_ms", "rt_online_ms")


def _table(path: Path) -> list[dict[str, str]]:
    """A results CSV without its wall-clock columns."""
    with path.open() as handle:
        return [{k: v for k, v in row.items() if not k.startswith(WALL_CLOCK)}
                for row in csv.DictReader(handle)]


def _processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().split()[2]
            except OSError:
                continue
            if text in cmdline and state != "Z":
                found.append(int(entry.name))
    return found


def _kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool],
               timeout_s: float) -> bool:
    """SIGKILL ``process`` once ``ready()`` holds; False if it finished first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the run never reached the kill point")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")
def test_sigkilled_experiment_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    whole = tmp_path / "whole"
    assert main([*FIG5, "--out", str(whole), "--workers", "1"]) == 0
    reference = {name: _table(whole / name) for name in ("fig5a.csv", "fig5b.csv")}
    n_runs = len(list((whole / "runs").glob("*.json")))
    killed_at = []
    for point in (1, n_runs // 2, n_runs - 2):  # early, midway, nearly done
        out = tmp_path / f"killed_{point}"
        command = [sys.executable, "-m", "isac_market_env", *FIG5, "--out", str(out),
                   "--workers", "2"]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        runs = out / "runs"
        if _kill_when(process, lambda runs=runs, point=point: runs.is_dir() and len(
                list(runs.glob("*.json"))) >= point, 120):
            killed_at.append(len(list(runs.glob("*.json"))))
        # the pool's workers die with their parent instead of finishing runs as orphans
        deadline = time.monotonic() + 10
        while _processes_mentioning(str(out)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_mentioning(str(out)) == []
        assert all(json.loads(p.read_text()) for p in runs.glob("*.json"))  # no partial file
        assert main([*FIG5, "--out", str(out), "--workers", "2"]) == 0
        for name, rows in reference.items():
            assert _table(out / name) == rows
    assert killed_at, "every run finished before it could be killed"


def test_cache_is_keyed_by_content_and_survives_corruption(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    absolute = tmp_path / "ref"
    assert main([*FIG5, "--out", str(absolute), "--workers", "1"]) == 0
    reference = _table(absolute / "fig5b.csv")
    runs = sorted((absolute / "runs").glob("*.json"))
    capsys.readouterr()
    # the same folder named relatively, then moved: every run is reused
    monkeypatch.chdir(tmp_path)
    assert main([*FIG5, "--out", "ref", "--workers", "1"]) == 0
    assert f"{len(runs)}/{len(runs)} runs already done" in capsys.readouterr().out
    moved = tmp_path / "moved"
    absolute.rename(moved)
    assert main([*FIG5, "--out", str(moved), "--workers", "1"]) == 0
    assert f"{len(runs)}/{len(runs)} runs already done" in capsys.readouterr().out
    # truncated, empty and foreign entries are named and recomputed
    entries = sorted((moved / "runs").glob("*.json"))
    entries[0].write_text(entries[0].read_text()[:40])
    entries[1].write_text("")
    entries[2].write_text(json.dumps({"mechanism": "greedy", "seed": 99}))
    assert main([*FIG5, "--out", str(moved), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    for entry in entries[:3]:
        assert str(entry) in err and "recomputing" in err
    assert _table(moved / "fig5b.csv") == reference
    assert all(json.loads(p.read_text())["seed"] == 0 for p in entries[:3])


def test_compare_writes_atomically_with_unique_temporary_files(tmp_path: Path) -> None:
    from isac_market_env.runs import replace_atomic, write_atomic

    target = tmp_path / "out.json"
    write_atomic(target, "old")

    def failing(path: Path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_atomic(target, failing)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "out.json"]  # the old file kept, no temporary file left
    assert main(["compare", "--n-mus", "5", "--transactions", "1", "--seeds", "1",
                 "--mechanisms", "frbank", "--csv", str(tmp_path / "c.csv"),
                 "--json", str(tmp_path / "c.json")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "c.json", "out.json"]


def _train_command(out: Path, steps: int, config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "train.ppo", "--env", "ISACMarket-Overbooking-v0",
            "--timesteps", str(steps), "--n-envs", "2", "--n-steps", "64", "--eval-freq", "128",
            "--eval-episodes", "1", "--checkpoint-freq", "128", "--no-progress",
            "--no-subprocess", "--out", str(out), "--config", str(config), *extra]


@pytest.mark.parametrize("kill_after", [128, 256])
def test_sigkilled_training_resumes(kill_after: int, tmp_path: Path) -> None:
    """SIGKILL ``python -m train.ppo`` once a checkpoint is written (the first or the second);
    after the second, also truncate it (as a kill during a non-atomic write would). The
    resumed run names and skips the truncated file, continues from the newest one that loads
    and ends like an uninterrupted one (step counts, checkpoints, evaluation timesteps; SB3
    keeps no RNG state, so the weights differ)."""
    pytest.importorskip("stable_baselines3")
    config = tmp_path / "env.json"
    config.write_text(json.dumps({"n_mus": 6, "n_periods": 2, "transactions_per_period": 2}))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_train_command(whole, 512, config), cwd=ROOT, check=True,
                   capture_output=True)
    process = subprocess.Popen(_train_command(killed, 512, config), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    newest = killed / "checkpoints" / f"model_{kill_after}_steps.zip"
    assert _kill_when(process, newest.is_file, 300)
    if kill_after == 256:
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    resumed = subprocess.run([*_train_command(killed, 512, config)[:-2], "--resume"],
                             cwd=ROOT, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    if kill_after == 256:
        assert "skipping model_256_steps.zip" in resumed.stderr
        assert "from model_128_steps.zip (128 steps)" in resumed.stdout
    else:  # killed somewhere after the first checkpoint: the newest one is used
        assert "skipping" not in resumed.stderr and "resuming" in resumed.stdout
    runs = [json.loads((d / "run.json").read_text()) for d in (whole, killed)]
    assert runs[1]["segments"][-1]["to_timesteps"] == runs[0]["segments"][-1]["to_timesteps"]
    names = [sorted(p.name for p in (d / "checkpoints").iterdir()) for d in (whole, killed)]
    assert names[0] == names[1]
    timesteps = [np.load(d / "eval" / "evaluations.npz")["timesteps"].tolist()
                 for d in (whole, killed)]
    assert timesteps[0] == timesteps[1] == [128, 256, 384, 512]
    from stable_baselines3 import PPO

    assert PPO.load(killed / "final_model.zip").num_timesteps == 512


def test_sigterm_saves_a_checkpoint(tmp_path: Path) -> None:
    """SIGTERM (a scheduler's stop, ``kill``) is Ctrl-C: training saves a checkpoint at the
    step it reached and exits 130, and --resume continues from it."""
    pytest.importorskip("stable_baselines3")
    config = tmp_path / "env.json"
    config.write_text(json.dumps({"n_mus": 6, "n_periods": 2, "transactions_per_period": 2}))
    out = tmp_path / "run"
    process = subprocess.Popen(_train_command(out, 100_000, config), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = out / "checkpoints" / "model_128_steps.zip"
    deadline = time.monotonic() + 300
    while not first.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted: saved" in err
    import re

    reached = int(re.search(r"\((\d+) steps\)", err).group(1))  # type: ignore[union-attr]
    assert reached >= 128 and (out / "checkpoints" / f"model_{reached}_steps.zip").is_file()
    resumed = subprocess.run([*_train_command(out, reached + 64, config)[:-2], "--resume"],
                             cwd=ROOT, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0 and f"({reached} steps)" in resumed.stdout, resumed.stderr
