"""Speed of the environments with a random policy (issue targets in brackets).

* ISACMarket-Bidding-v0, paper-synthetic, 50 MUs: env steps per second      [>= 2,000]
* ISACMarket-Overbooking-v0, W = 20: contract periods per second            [>= 20]
* both again at --n-mus with a smaller search budget, ``knapsack_node_limit`` = 3,000
* both at --n-mus as ``gymnasium.make_vec(..., vectorization_mode="async")`` with one worker
  process per core: the throughput a training run with ``SubprocVecEnv`` gets on this machine
* what training costs (``--ppo-steps``, 0 to skip): SB3 PPO (MlpPolicy, n_steps 512, one torch
  thread) for that many steps on each env and on a trivial env with the same spaces and
  episode length; the env's share of the run's wall time is 1 - trivial / env
* the same for the multi-agent market (``--rllib-iterations``, 0 to skip; the marl extra):
  RLlib PPO iterations as ``python -m train.marl`` runs them (MUs learning) on the market and on
  a trivial twin with its agents, spaces, episode length and agents per step

Also prints where the time goes (cProfile, top functions) with --profile.
Usage: python benchmarks/bench_envs.py [--n-mus 50] [--seconds 30] [--ppo-steps 8192]
           [--rllib-iterations 3] [--only-training] [--profile] [--json OUT]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import json
import os
import pstats
import sys
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


def rllib_share(iterations: int, env_config: dict[str, Any], learning: list[str],
                batch: int) -> dict[str, Any]:
    """Wall time of RLlib PPO iterations (``train.marl``'s config: one masked module per
    learning type, one env runner, ``batch`` env steps, minibatch batch / 8, 4 epochs) on the
    multi-agent market and on its trivial twin (``trivial_multi_agent_env``), after one warm-up
    iteration each; the env's share of an iteration is 1 - trivial / env."""
    import ray
    from ray.tune.registry import register_env

    checkout = str(Path(__file__).resolve().parents[1])  # train/ of the checkout, here and
    sys.path.insert(0, checkout)  # in Ray's workers (they inherit the environment)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout,
                                                             os.environ.get("PYTHONPATH")]))
    from isac_market_env.envs.rllib_market import RLlibMarketEnv
    build_config = importlib.import_module("train.marl").build_config

    market = RLlibMarketEnv({**env_config, "learning": learning})
    steps, agent_steps, episodes = _rule_rollouts(market, 3)
    twin: dict[str, Any] = {
        "agents": list(market.possible_agents), "episode_length": round(steps / episodes),
        "agents_per_step": max(1, round(agent_steps / steps)),
        "spaces": (market.observation_spaces, market.action_spaces)}
    register_env("trivial_market_twin", lambda _config: trivial_multi_agent_env(**twin))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        seconds = {}
        for label, env in (("env", None), ("trivial", "trivial_market_twin")):
            config = build_config(env_config, learning, 0, 1, batch, batch // 8, 4, 3e-4)
            if env is not None:
                config = config.environment(env=env, env_config={})
            algo = config.build_algo()
            try:
                algo.train()  # warm-up: runner start, numba's cache, torch
                started = time.perf_counter()
                for _ in range(iterations):
                    algo.train()
                seconds[label] = (time.perf_counter() - started) / iterations
            finally:
                algo.stop()
    finally:
        ray.shutdown()
    return {"env": "isac_market_v0 (RLlib)", **env_config, "learning": learning,
            "rllib_batch_env_steps": batch, "iterations": iterations,
            "episode_length": twin["episode_length"], "agents_per_step": twin["agents_per_step"],
            "iteration_s": seconds["env"], "trivial_iteration_s": seconds["trivial"],
            "env_share": 1 - seconds["trivial"] / seconds["env"]}


def _rule_rollouts(env: Any, episodes: int) -> tuple[int, int, int]:
    """Env steps, agent steps (observed learners) and episodes of rule-played episodes."""
    steps = agent_steps = 0
    for seed in range(episodes):
        obs, infos = env.reset(seed=seed)
        done = False
        while not done:
            agent_steps += len(obs)
            obs, _, terminateds, _, infos = env.step(
                {a: info["rule_action"] for a, info in infos.items()})
            steps += 1
            done = terminateds["__all__"]
    return steps, agent_steps, episodes


def trivial_multi_agent_env(agents: list[str], episode_length: int, agents_per_step: int,
                            spaces: tuple[Any, Any]) -> Any:
    """A multi-agent env's agents and spaces with nothing behind them: at every step
    ``agents_per_step`` agents (in turn) see a zero observation whose mask allows every action;
    zero rewards; ``episode_length`` steps. (A class built here: Ray is imported on use.)"""
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    observation_spaces: dict[str, Any] = spaces[0]

    class TrivialMultiAgentEnv(MultiAgentEnv):
        def __init__(self) -> None:
            super().__init__()
            self.possible_agents, self.agents = list(agents), list(agents)
            self.observation_spaces, self.action_spaces = spaces
            self.t = 0
            self._zero = {a: {"observations": np.zeros_like(sp["observations"].sample()),
                              "action_mask": np.ones(sp["action_mask"].shape, np.float32)}
                          for a, sp in observation_spaces.items()}

        def _observed(self) -> dict[Any, Any]:
            n = len(agents)
            turn = [agents[(self.t * agents_per_step + k) % n]
                    for k in range(min(agents_per_step, n))]
            return {a: self._zero[a] for a in turn}

        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
                  ) -> tuple[dict[Any, Any], dict[Any, Any]]:
            self.t = 0
            return self._observed(), {}

        def step(self, action_dict: dict[Any, Any]) -> tuple[Any, ...]:
            self.t += 1
            done = self.t >= episode_length
            return ({} if done else self._observed(), dict.fromkeys(action_dict, 0.0),
                    {"__all__": done}, {"__all__": False}, {})

    return TrivialMultiAgentEnv()


def speeds(args: argparse.Namespace, out: list[dict[str, object]]) -> None:
    """Steps per second of both envs, alone and as async vector envs (rows into ``out``)."""
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-mus", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--ppo-steps", type=int, default=8192,
                        help="SB3 PPO steps per env for the training share (0: skip)")
    parser.add_argument("--rllib-iterations", type=int, default=3,
                        help="timed RLlib PPO iterations on the multi-agent market, MUs "
                             "learning (0: skip; needs the marl extra)")
    parser.add_argument("--rllib-batch", type=int, default=2000,
                        help="env steps per RLlib iteration")
    parser.add_argument("--only-training", action="store_true",
                        help="measure only what training costs (--ppo-steps, --rllib-...)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    compiled = load_compiled_matching()  # numba's loops (``fast`` extra) or numpy
    print(f"compiled loops (numba): {compiled}")
    out: list[dict[str, object]] = [{"compiled": compiled}]
    if not args.only_training:
        speeds(args, out)
    if args.ppo_steps > 0:
        for env_id, kwargs in (("ISACMarket-Bidding-v0", {"n_transactions": 10}),
                               ("ISACMarket-Overbooking-v0",
                                {"n_periods": 5, "transactions_per_period": 20})):
            row = training_share(env_id, args.ppo_steps, n_mus=args.n_mus, **kwargs)
            print(f"{env_id[11:]}, {args.n_mus} MUs, SB3 PPO: {row['ppo_steps_per_s']:7.1f} "
                  f"steps/s, on a trivial env with its spaces {row['ppo_trivial_steps_per_s']:7.1f}"
                  f": the env takes {row['env_share']:.0%} of the run")
            out.append(row)
    if args.rllib_iterations > 0:
        row = rllib_share(args.rllib_iterations, {"n_mus": args.n_mus, "n_transactions": 10},
                          ["mu"], args.rllib_batch)
        print(f"isac_market_v0, {args.n_mus} MUs learning, RLlib PPO: "
              f"{row['iteration_s']:.1f} s per iteration of {args.rllib_batch} env steps, on a "
              f"trivial twin {row['trivial_iteration_s']:.1f} s: the env takes "
              f"{row['env_share']:.0%} of an iteration")
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
