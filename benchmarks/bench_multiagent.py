"""Agent decisions per second in the multi-agent market against Bidding-v0's steps per second.

Same market (paper-synthetic, --n-mus MUs, 10 transactions), same process, back to back and
alternating (the machine's speed drifts): Bidding-v0 with a random action per step, and the
multi-agent env (``isac_market_env.envs.multiagent``) with every agent that has a decision
playing either its ``rule_action`` or a random allowed action (half and half). A decision is
one agent with more than the no-op allowed at a step; only the time inside ``step`` and
``reset`` is counted for both envs, not the policies'.
Usage: python benchmarks/bench_multiagent.py [--n-mus 50] [--seconds 20] [--repeats 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import isac_market_env  # noqa: F401  (registers the ids)
from isac_market_env.envs.multiagent import parallel_env
from isac_market_env.mechanisms.matching import load_compiled_matching


def bidding(seconds: float, n_mus: int, seed0: int) -> dict[str, float]:
    env = gym.make("ISACMarket-Bidding-v0", n_mus=n_mus, n_transactions=10)
    rng = np.random.default_rng(seed0)
    steps, inside, seed = 0, 0.0, seed0
    while inside < seconds:
        t0 = time.perf_counter()
        env.reset(seed=seed)
        inside += time.perf_counter() - t0
        seed += 1
        done = False
        while not done:
            action = rng.integers(0, env.action_space.nvec)  # type: ignore[attr-defined]
            t0 = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            inside += time.perf_counter() - t0
            steps += 1
            done = terminated or truncated
    return {"steps_per_s": steps / inside}


def multiagent(seconds: float, n_mus: int, seed0: int) -> dict[str, float]:
    env = parallel_env(n_mus=n_mus, n_transactions=10)
    rng = np.random.default_rng(seed0)
    steps = decisions = 0
    inside, seed = 0.0, seed0
    while inside < seconds:
        t0 = time.perf_counter()
        obs, infos = env.reset(seed=seed)
        inside += time.perf_counter() - t0
        seed += 1
        while env.agents:
            actions: dict[str, Any] = {}
            for agent in env.agents:
                mask = obs[agent]["action_mask"]
                if mask.sum() > 1:
                    decisions += 1
                    actions[agent] = (infos[agent]["rule_action"] if rng.random() < 0.5
                                      else int(rng.choice(np.flatnonzero(mask))))
            t0 = time.perf_counter()
            obs, _, _, _, infos = env.step(actions)
            inside += time.perf_counter() - t0
            steps += 1
    return {"decisions_per_s": decisions / inside, "steps_per_s": steps / inside,
            "decisions_per_step": decisions / max(steps, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-mus", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    print(f"compiled loops (numba): {load_compiled_matching()}")
    multiagent(1.0, args.n_mus, 10**6)  # warm-up (numba's cache, imports)
    rows = []
    for r in range(args.repeats):
        pair = ((bidding, multiagent) if r % 2 == 0 else (multiagent, bidding))
        got = {f.__name__: f(args.seconds, args.n_mus, 1000 * r) for f in pair}
        ratio = got["multiagent"]["decisions_per_s"] / got["bidding"]["steps_per_s"]
        rows.append({"repeat": r, **{f"{k}_{m}": v for k, d in got.items()
                                     for m, v in d.items()}, "ratio": ratio})
        print(f"repeat {r}: Bidding-v0 {got['bidding']['steps_per_s']:7.1f} steps/s; "
              f"multi-agent {got['multiagent']['decisions_per_s']:8.0f} decisions/s "
              f"({got['multiagent']['steps_per_s']:.0f} steps/s, "
              f"{got['multiagent']['decisions_per_step']:.1f} decisions per step); "
              f"ratio {ratio:.1f}x [target >= 20x]")
    ratios = [row["ratio"] for row in rows]
    print(f"median ratio {statistics.median(ratios):.1f}x (range {min(ratios):.1f}-"
          f"{max(ratios):.1f}) at {args.n_mus} MUs")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
