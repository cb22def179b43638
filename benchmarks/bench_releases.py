"""This checkout against a previous release, back to back on the same machine (its speed drifts
from hour to hour, so only same-run ratios mean anything).

Each workload runs in a fresh process per tree, the trees alternating (A B A B ...), after one
warm-up process per tree (numba compiles or loads its cache there). Workloads:

* ``bidding``: ISACMarket-Bidding-v0, paper-synthetic 50 MUs, 10 transactions, 12 episodes
  (seeds 0-11) with seeded random actions: env steps per second (and a digest of every
  observation, reward and info, which must match between the trees)
* ``multiagent``: the multi-agent market (50 MUs, 5 transactions), 3 episodes in which every
  deciding agent plays its rule action or a random allowed one: decisions per second (digest)
* ``signing``: the 100-MU, 5-BS signing of seeds 0-6: total seconds (digest of the contracts)
* ``eua``: the EUA episode (signing + 100 transactions) on 1 and on 2 workers in this checkout
  only (``simulate(..., workers=N)``): seconds each and their ratio (digest of the records)

Usage: git worktree add /tmp/base <previous release> &&
       python benchmarks/bench_releases.py --baseline /tmp/base [--repeats 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
EUA_DIR = HERE.parent / "shared" / "data" / "eua"

PRELUDE = """
import hashlib, json, sys, time
import numpy as np
import isac_market_env as ime
from isac_market_env.mechanisms.matching import load_compiled_matching
load_compiled_matching()
digest = hashlib.sha256()
"""

WORKLOADS = {
    "bidding": """
import gymnasium as gym
env = gym.make("ISACMarket-Bidding-v0", n_mus=50, n_transactions=10)
rng = np.random.default_rng(0)
steps, started = 0, time.perf_counter()
for seed in range(12):
    obs, info = env.reset(seed=seed)
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(rng.integers(0, env.action_space.nvec))
        steps += 1
        done = terminated or truncated
        digest.update(obs.tobytes()); digest.update(repr(reward).encode())
        digest.update(repr(sorted((k, str(v)) for k, v in info.items())).encode())
seconds = time.perf_counter() - started
out = {"seconds": seconds, "steps": steps, "rate": steps / seconds}
""",
    "multiagent": """
from isac_market_env.envs.multiagent import parallel_env
env = parallel_env(n_mus=50, n_transactions=5)
rng = np.random.default_rng(0)
decisions, inside = 0, 0.0
for seed in range(3):
    t0 = time.perf_counter()
    obs, infos = env.reset(seed=seed)
    inside += time.perf_counter() - t0
    while env.agents:
        actions = {}
        for agent in env.agents:
            allowed = np.flatnonzero(obs[agent]["action_mask"])
            decisions += len(allowed) > 1
            actions[agent] = (int(infos[agent]["rule_action"]) if rng.random() < 0.5
                              else int(rng.choice(allowed)))
        t0 = time.perf_counter()
        obs, rewards, _, _, infos = env.step(actions)
        inside += time.perf_counter() - t0
        digest.update(repr(sorted(rewards.items())).encode())
out = {"seconds": inside, "decisions": decisions, "rate": decisions / inside}
""",
    "signing": """
seconds = 0.0
for seed in range(7):
    market = ime.make_market("frbank", n_mus=100, n_transactions=1, seed=seed)
    t0 = time.perf_counter()
    signing = market.sign()
    seconds += time.perf_counter() - t0
    c = signing.contracts
    digest.update(c.solution.tobytes()); digest.update(c.pay.tobytes())
out = {"seconds": seconds, "rate": 7 / seconds}
""",
    "eua": """
workers = int(sys.argv[2])
t0 = time.perf_counter()
result = ime.simulate("frbank", "eua-melbourne", n_transactions=100, seed=0,
                      eua_directory=sys.argv[3], workers=workers)
seconds = time.perf_counter() - t0
summary = result.summary()
digest.update(repr(sorted((k, v) for k, v in summary.items() if not k.startswith("rt_"))).encode())
for t in result.transactions:
    digest.update(t.alloc_solution.tobytes()); digest.update(t.alloc_pay.tobytes())
out = {"seconds": seconds, "rate": 1 / seconds, "signing_ms": summary["rt_offline_ms"]}
""",
}


def run(tree: Path, workload: str, *args: str) -> dict[str, Any]:
    """One workload in a fresh process importing ``isac_market_env`` from ``tree``."""
    code = (PRELUDE + WORKLOADS[workload]
            + "\nout['digest'] = digest.hexdigest()[:16]\nprint(json.dumps(out))\n")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", code, "x", *args], env=env, check=True,
                          capture_output=True, text=True, cwd=tree)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def compare(workload: str, trees: dict[str, Path], repeats: int) -> dict[str, Any]:
    """``repeats`` alternating runs of ``workload`` on every tree; medians and the ratio."""
    for tree in trees.values():
        run(tree, workload)  # warm-up: numba's cache
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for _ in range(repeats):
        for name, tree in trees.items():
            rows[name].append(run(tree, workload))
    out: dict[str, Any] = {"runs": rows}
    for name in trees:
        out[f"{name}_rate_median"] = statistics.median(r["rate"] for r in rows[name])
        out[f"{name}_digests"] = sorted({r["digest"] for r in rows[name]})
    if "baseline" in trees:
        out["speedup"] = out["current_rate_median"] / out["baseline_rate_median"]
        out["identical"] = out["current_digests"] == out["baseline_digests"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default=None,
                        help="a checkout of the previous release (git worktree)")
    parser.add_argument("--workloads", default="bidding,multiagent,signing,eua")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--eua-dir", default=str(EUA_DIR))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    trees = {"current": HERE}
    if args.baseline:
        trees["baseline"] = Path(args.baseline).resolve()
    out: dict[str, Any] = {"machine": platform.processor() or platform.machine(),
                           "cpus": os.cpu_count(), "python": platform.python_version(),
                           "date": time.strftime("%Y-%m-%d %H:%M"), "trees": {
                               k: str(v) for k, v in trees.items()}}
    for workload in args.workloads.split(","):
        if workload == "eua":
            by_workers = {}
            run(HERE, "eua", "1", args.eua_dir)  # warm-up
            rows: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            for _ in range(args.repeats):
                for workers in (1, 2):
                    rows[workers].append(run(HERE, "eua", str(workers), args.eua_dir))
            for workers, mine in rows.items():
                by_workers[f"workers_{workers}_s_median"] = statistics.median(
                    r["seconds"] for r in mine)
            by_workers["speedup_2_over_1"] = (by_workers["workers_1_s_median"]
                                              / by_workers["workers_2_s_median"])
            by_workers["identical"] = len({r["digest"] for m in rows.values() for r in m}) == 1
            out["eua"] = {"runs": rows, **by_workers}
            print(f"eua episode: 1 worker {by_workers['workers_1_s_median']:.2f} s, 2 workers "
                  f"{by_workers['workers_2_s_median']:.2f} s: {by_workers['speedup_2_over_1']:.2f}x"
                  f", identical {by_workers['identical']}", flush=True)
            continue
        if "baseline" not in trees:
            parser.error(f"{workload} compares with --baseline")
        result = compare(workload, trees, args.repeats)
        out[workload] = result
        print(f"{workload}: current {result['current_rate_median']:.2f}/s, baseline "
              f"{result['baseline_rate_median']:.2f}/s: {result['speedup']:.2f}x, identical "
              f"{result['identical']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
