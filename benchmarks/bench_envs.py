"""Speed of the environments with a random policy (issue targets in brackets).

* ISACMarket-Bidding-v0, paper-synthetic, 50 MUs: env steps per second      [>= 2,000]
* ISACMarket-Overbooking-v0, W = 20: contract periods per second            [>= 20]
* both again at --n-mus with a smaller search budget, ``knapsack_node_limit`` = 3,000
* both at --n-mus as ``gymnasium.make_vec(..., vectorization_mode="async")`` with one worker
  process per core: the throughput a training run with ``SubprocVecEnv`` gets on this machine
* what training costs (``--ppo-steps``, 0 to skip): SB3 PPO (MlpPolicy, n_steps 512, one torch
  thread) for that many steps on each env and on a trivial env with the same spaces and
  episode length; the env's share of the run's wall time is 1 - trivial / env

Also prints where the time goes (cProfile, top functions) with --profile.
Usage: python benchmarks/bench_envs.py [--n-mus 50] [--seconds 30] [--ppo-steps 8192] [--profile]
                                      [--json OUT]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import time
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box

import isac_market_env  # noqa: F401  (registers the ids)
from isac_market_env.mechanisms.matching import load_compiled_matching

SMALL_NODE_LIMIT = 3_000


def run(env_id: str, seconds: float, **kwargs: Any) -> tuple[int, int, float]:
    env = gym.make(env_id, **kwargs)
    rng = np.random.default_rng(0)
    steps = episodes = 0
    started = time.perf_counter()
    seed = 0
    while time.perf_counter() - started < seconds:
        env.reset(seed=seed)
        seed += 1
        done = False
        while not done:
            space = env.action_space
            action = (rng.integers(0, space.nvec) if isinstance(space, gym.spaces.MultiDiscrete)
                      else rng.uniform(cast(Box, space).low, cast(Box, space).high)
                      .astype(np.float32))
            _, _, terminated, truncated, _ = env.step(action)
            steps += 1
            done = terminated or truncated
        episodes += 1
    return steps, episodes, time.perf_counter() - started


def run_async(env_id: str, seconds: float, n_workers: int, **kwargs: Any) -> tuple[int, float]:
    """Steps of ``n_workers`` envs in worker processes, random actions, in about ``seconds``
    (after a warm-up step in every worker, so compiling or loading numba's cache is excluded)."""
    envs = gym.make_vec(env_id, num_envs=n_workers, vectorization_mode="async", **kwargs)
    try:
        envs.action_space.seed(0)
        envs.reset(seed=0)
        envs.step(envs.action_space.sample())
        steps = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            envs.step(envs.action_space.sample())
            steps += n_workers
        return steps, time.perf_counter() - started
    finally:
        envs.close()


class TrivialEnv(gym.Env[Any, Any]):
    """The spaces and episode length of an env with nothing behind them: zero observations,
    zero reward. PPO on it costs what the learner alone costs."""

    def __init__(self, observation_space: gym.Space[Any], action_space: gym.Space[Any],
                 episode_length: int) -> None:
        self.observation_space, self.action_space = observation_space, action_space
        self.episode_length, self.t = episode_length, 0
        self._zero = np.zeros_like(observation_space.sample())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self._zero.copy(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self._zero.copy(), 0.0, self.t >= self.episode_length, False, {}


def ppo_seconds(env: gym.Env[Any, Any], steps: int) -> float:
    """Wall time of SB3 PPO (MlpPolicy, n_steps 512, one torch thread) for ``steps``."""
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    model = PPO("MlpPolicy", env, n_steps=512, batch_size=64, seed=0, verbose=0, device="cpu")
    started = time.perf_counter()
    model.learn(total_timesteps=steps)
    return time.perf_counter() - started


def training_share(env_id: str, steps: int, **kwargs: Any) -> dict[str, Any]:
    """PPO's wall time on ``env_id`` and on its trivial twin (same spaces, same mean episode
    length, measured with a random policy first)."""
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)  # compile / load numba's cache outside the timing
    lengths, rng = [], np.random.default_rng(0)
    for seed in range(3):
        env.reset(seed=seed)
        n, done = 0, False
        while not done:
            space = env.action_space
            action = (rng.integers(0, space.nvec) if isinstance(space, gym.spaces.MultiDiscrete)
                      else space.sample())
            _, _, terminated, truncated, _ = env.step(action)
            n, done = n + 1, terminated or truncated
        lengths.append(n)
    length = max(1, round(float(np.mean(lengths))))
    with_env = ppo_seconds(env, steps)
    alone = ppo_seconds(TrivialEnv(env.observation_space, env.action_space, length), steps)
    return {"env": env_id, **kwargs, "ppo_steps": steps, "episode_length": length,
            "ppo_s": with_env, "ppo_trivial_env_s": alone,
            "ppo_steps_per_s": steps / with_env, "ppo_trivial_steps_per_s": steps / alone,
            "env_share": 1 - alone / with_env}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-mus", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--ppo-steps", type=int, default=8192,
                        help="SB3 PPO steps per env for the training share (0: skip)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    compiled = load_compiled_matching()  # numba's loops (``fast`` extra) or numpy
    print(f"compiled loops (numba): {compiled}")
    out: list[dict[str, object]] = [{"compiled": compiled}]
    runs: list[tuple[int, int | None]] = [(n_mus, None) for n_mus in sorted({20, args.n_mus})]
    runs.append((args.n_mus, SMALL_NODE_LIMIT))
    for n_mus, limit in runs:
        overrides: dict[str, int] = {} if limit is None else {"knapsack_node_limit": limit}
        label = f"{n_mus} MUs" + (f", knapsack_node_limit={limit:,}" if limit else "")
        steps, episodes, elapsed = run("ISACMarket-Bidding-v0", args.seconds, n_mus=n_mus,
                                       n_transactions=10, market_overrides=overrides)
        print(f"Bidding-v0, {label}, 10 transactions: {steps / elapsed:7.1f} steps/s, "
              f"{episodes / elapsed * 60:6.1f} episodes/min, {steps / episodes:.1f} steps per "
              f"episode [target 2000/s]")
        out.append({"env": "ISACMarket-Bidding-v0", "n_mus": n_mus, "n_transactions": 10,
                    "market_overrides": overrides, "steps_per_s": steps / elapsed,
                    "episodes_per_min": episodes / elapsed * 60,
                    "steps_per_episode": steps / episodes})
        steps, episodes, elapsed = run("ISACMarket-Overbooking-v0", args.seconds, n_mus=n_mus,
                                       n_periods=5, transactions_per_period=20,
                                       market_overrides=overrides)
        print(f"Overbooking-v0, {label}, W = 20: {steps / elapsed:7.2f} periods/s "
              f"({steps} periods) [target 20/s]")
        out.append({"env": "ISACMarket-Overbooking-v0", "n_mus": n_mus,
                    "transactions_per_period": 20, "market_overrides": overrides,
                    "periods_per_s": steps / elapsed})
    n_workers = os.cpu_count() or 1
    for env_id, kwargs, unit in (
            ("ISACMarket-Bidding-v0", {"n_transactions": 10}, "steps"),
            ("ISACMarket-Overbooking-v0", {"n_periods": 5, "transactions_per_period": 20},
             "periods")):
        steps, elapsed = run_async(env_id, args.seconds, n_workers, n_mus=args.n_mus, **kwargs)
        print(f"{env_id[11:]}, {args.n_mus} MUs, {n_workers} async workers: "
              f"{steps / elapsed:7.1f} {unit}/s in total")
        out.append({"env": env_id, "n_mus": args.n_mus, **kwargs, "async_workers": n_workers,
                    f"{unit}_per_s": steps / elapsed})
    if args.ppo_steps > 0:
        for env_id, kwargs in (("ISACMarket-Bidding-v0", {"n_transactions": 10}),
                               ("ISACMarket-Overbooking-v0",
                                {"n_periods": 5, "transactions_per_period": 20})):
            row = training_share(env_id, args.ppo_steps, n_mus=args.n_mus, **kwargs)
            print(f"{env_id[11:]}, {args.n_mus} MUs, SB3 PPO: {row['ppo_steps_per_s']:7.1f} "
                  f"steps/s, on a trivial env with its spaces {row['ppo_trivial_steps_per_s']:7.1f}"
                  f": the env takes {row['env_share']:.0%} of the run")
            out.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run("ISACMarket-Bidding-v0", args.seconds / 2, n_mus=args.n_mus, n_transactions=10)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
