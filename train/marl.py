"""Train the multi-agent market with RLlib's PPO: one shared policy per agent type.

    python -m train.marl --iterations 20 --out runs/marl-mu [--config env.json] \
        [--learning mu,coalition,bs] [--address ADDRESS] [--resume]

Run it from a checkout (train/ is not installed with the package); needs the ``marl`` extra.
Every MU client shares the policy ``mu``, every sensing coalition ``coalition`` and every BS
``bs`` (with ``bs_agents`` in the env config); agent types not in ``--learning`` play FRBank's
rule. The policies are RLlib's action-masking PPO module: a masked action gets no probability.
``ray.init()`` starts a local Ray on this machine; ``--address`` joins a running cluster
(``auto``, or ``ray://host:10001``), where the same script runs its env runners.

Writes into ``--out``: ``run.json`` (env config, learning types, RLlib settings, versions, and
one row per iteration: env steps, episode return per policy, the env's share of the
iteration's wall time), ``checkpoints/iter_<n>/`` (RLlib's ``save_to_path``; every
``--checkpoint-every`` iterations and at the end, also on Ctrl-C or SIGTERM) and ``final``
(a copy of the last checkpoint's path). ``--resume`` restores the newest checkpoint and continues to
``--iterations`` in total; without it a directory that holds a run is refused.
Evaluate with ``isac-market evaluate --env isac_market_v0 --policy frbank,<out>/final``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from isac_market_env.runs import interrupt_on_sigterm, write_atomic

HIDDEN = [64, 64]


def _marl() -> Any:
    try:
        import ray
        from ray.rllib.algorithms.ppo import PPOConfig  # noqa: F401
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise SystemExit("multi-agent training needs the [marl] extra: pip install "
                         "'isac-market-env[marl]' (and torch==2.13.0 for the CPU build)") from error
    return ray


def policy_for(agent_id: str, episode: Any = None, **kwargs: Any) -> str:
    """The shared policy of ``agent_id``'s type (``mu_3`` -> ``mu``)."""
    from isac_market_env.envs.multiagent import agent_type

    return agent_type(agent_id)


def build_config(env_config: dict[str, Any], learning: list[str], seed: int,
                 num_env_runners: int, batch: int, minibatch: int, epochs: int,
                 learning_rate: float) -> Any:
    """RLlib's PPO for the market: one masked module per learning agent type."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.examples.rl_modules.classes.action_masking_rlm import (
        ActionMaskingTorchRLModule,
    )

    from isac_market_env.envs.rllib_market import register_rllib_env

    name = register_rllib_env()
    modules = {t: RLModuleSpec(module_class=ActionMaskingTorchRLModule,
                               model_config={"head_fcnet_hiddens": HIDDEN,
                                             "head_fcnet_activation": "tanh"})
               for t in learning}
    return (PPOConfig()
            .environment(env=name, env_config={**env_config, "learning": learning})
            .multi_agent(policies=set(learning), policy_mapping_fn=policy_for,
                         policies_to_train=list(learning))
            .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs=modules))
            # a BS's step is a whole contract period (seconds): no timeout on sampling
            .env_runners(num_env_runners=num_env_runners, rollout_fragment_length="auto",
                         num_cpus_per_env_runner=1, sample_timeout_s=None)
            .learners(num_learners=0)
            .training(train_batch_size_per_learner=batch, minibatch_size=minibatch,
                      num_epochs=epochs, lr=learning_rate)
            .debugging(seed=seed))


def latest_checkpoint(directory: Path) -> tuple[Path, int] | None:
    """The newest ``iter_<n>`` checkpoint in ``directory`` (a complete one: RLlib writes
    ``rllib_checkpoint.json`` last)."""
    best: tuple[Path, int] | None = None
    for path in directory.glob("iter_*"):
        match = re.fullmatch(r"iter_(\d+)", path.name)
        if match and (path / "rllib_checkpoint.json").is_file() and (
                best is None or int(match.group(1)) > best[1]):
            best = (path, int(match.group(1)))
    return best


def iteration_row(result: dict[str, Any], iteration: int, wall_s: float) -> dict[str, Any]:
    """What ``run.json`` keeps of one iteration's result."""
    runners = result.get("env_runners", {})
    if not runners.get("num_env_steps_sampled"):
        raise RuntimeError(f"iteration {iteration} sampled no env steps: the env runners "
                           "returned nothing (see Ray's log)")
    returns = runners.get("module_episode_returns_mean", {})
    sample_s = float(result.get("timers", {}).get("env_runner_sampling_timer", float("nan")))
    env_s = float(runners.get("env_step_timer", float("nan")))
    steps = runners.get("num_env_steps_sampled", float("nan"))
    return {"iteration": iteration, "wall_s": wall_s,
            "env_steps_lifetime": int(result.get("num_env_steps_sampled_lifetime", 0)),
            "module_returns_mean": {k: float(v) for k, v in returns.items()},
            "episode_return_mean": float(runners.get("episode_return_mean", float("nan"))),
            "episodes_lifetime": int(runners.get("num_episodes_lifetime", 0)),
            "sampling_s": sample_s,
            # env_step_timer: mean seconds per env step in the runners
            "env_share_of_iteration": (env_s * float(steps) / wall_s
                                       if wall_s > 0 else float("nan"))}


def _version(module: str) -> str | None:
    try:
        return str(importlib.import_module(module).__version__)
    except ImportError:  # pragma: no cover
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.marl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20, help="training iterations in all")
    parser.add_argument("--config", default=None, help="JSON file of parallel_env kwargs")
    parser.add_argument("--learning", default="mu",
                        help="agent types that learn, comma-separated (mu, coalition, bs); "
                        "the others play FRBank's rule")
    parser.add_argument("--out", default=None, help="run directory (default runs/marl-<types>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--address", default=None,
                        help="a running Ray cluster (auto, ray://host:port); default: local")
    parser.add_argument("--num-env-runners", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4000,
                        help="env steps per iteration (train_batch_size_per_learner)")
    parser.add_argument("--minibatch", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--checkpoint-every", type=int, default=5, help="iterations")
    parser.add_argument("--resume", action="store_true",
                        help="continue the newest checkpoint in --out")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ray = _marl()
    learning = [t.strip() for t in args.learning.split(",") if t.strip()]
    out = Path(args.out or f"runs/marl-{'-'.join(learning)}")
    run_file, checkpoints = out / "run.json", out / "checkpoints"
    if args.iterations < 1:
        raise SystemExit("--iterations must be >= 1")
    run: dict[str, Any]
    if args.resume:
        found = latest_checkpoint(checkpoints)
        if found is None or not run_file.is_file():
            raise SystemExit(f"--resume: no checkpoint to resume in {out}")
        run = json.loads(run_file.read_text())
        if args.config and json.loads(Path(args.config).read_text()) != run["env_config"]:
            raise SystemExit("--resume continues the saved env config; drop --config or "
                             "start a new --out")
        learning, env_config = run["learning"], run["env_config"]
    else:
        if run_file.exists():
            raise SystemExit(f"{out} already holds a run: --resume it or choose a new --out")
        env_config = json.loads(Path(args.config).read_text()) if args.config else {}
        run = {"env": "isac_market_v0", "env_config": env_config, "learning": learning,
               "seed": args.seed, "settings": {k: getattr(args, k) for k in (
                   "batch", "minibatch", "epochs", "learning_rate", "num_env_runners")},
               "versions": {m: _version(m) for m in ("isac_market_env", "ray", "torch",
                                                     "pettingzoo", "gymnasium")},
               "command": " ".join(sys.argv), "iterations": []}
        found = None
    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=max(2, args.num_env_runners + 1), include_dashboard=False,
                 log_to_driver=False)
    settings = run["settings"]
    algo = build_config(env_config, learning, run["seed"], settings["num_env_runners"],
                        settings["batch"], settings["minibatch"], settings["epochs"],
                        settings["learning_rate"]).build_algo()
    done = 0
    if found is not None:
        algo.restore_from_path(str(found[0].resolve()))
        done = found[1]
        print(f"resumed {found[0]} ({done} iterations done)")

    def checkpoint(iteration: int) -> Path:
        path = (checkpoints / f"iter_{iteration}").resolve()
        algo.save_to_path(str(path))
        write_atomic(out / "final", str(path) + "\n")
        write_atomic(run_file, json.dumps(run, indent=2, default=float))
        return path

    interrupt_on_sigterm()
    try:
        for iteration in range(done + 1, args.iterations + 1):
            started = time.perf_counter()
            result = algo.train()
            row = iteration_row(result, iteration, time.perf_counter() - started)
            run["iterations"].append(row)
            print(f"iteration {iteration}/{args.iterations}: env steps "
                  f"{row['env_steps_lifetime']}, returns {row['module_returns_mean']}, "
                  f"{row['wall_s']:.1f} s (env {row['env_share_of_iteration']:.0%})",
                  flush=True)
            done = iteration
            if iteration % args.checkpoint_every == 0 or iteration == args.iterations:
                checkpoint(iteration)
    except KeyboardInterrupt:
        print(f"interrupted: checkpoint at iteration {done}")
        if done:
            checkpoint(done)
        return 130
    finally:
        algo.stop()
        ray.shutdown()
    print(f"done: {out}/final -> {(out / 'final').read_text().strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
