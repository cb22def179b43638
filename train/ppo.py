"""Train an SB3 agent (PPO, or SAC for the continuous overbooking action) on an ISACMarket env.

    python -m train.ppo --env ISACMarket-Overbooking-v0 --timesteps 20000 --n-envs 2 \
        --seed 0 --out runs/overbooking-ppo [--algo ppo|sac] [--config env.json] [--resume]

``--algo maskable-ppo`` (sb3-contrib's MaskablePPO, Bidding-v0 only) samples only the slots the
focal client may propose, from the env's ``action_masks()``.

Writes into ``--out``: ``run.json`` (arguments, env kwargs, package versions), TensorBoard logs
(``tb/``), periodic evaluation (``eval/``, ``best_model.zip``), checkpoints
(``checkpoints/``) and ``final_model.zip``. ``--resume`` continues from the newest checkpoint
with the saved step count. The env config (JSON) holds ``gym.make`` keyword arguments.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym

import isac_market_env


def _sb3() -> Any:
    try:
        import stable_baselines3
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise SystemExit("training needs the [train] extra: pip install 'isac-market-env[train]'"
                         " (and torch==2.13.0 for the CPU build)") from error
    return stable_baselines3


def make_vec_env(env_id: str, env_kwargs: dict[str, Any], n_envs: int, seed: int,
                 subprocess: bool) -> Any:
    sb3 = _sb3()
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    del sb3
    vec_cls = SubprocVecEnv if subprocess and n_envs > 1 else DummyVecEnv
    # "module:id" makes gym.make import the package (and register the ids) in every worker
    return sb3_make_vec_env(f"isac_market_env:{env_id}", n_envs=n_envs, seed=seed,
                            env_kwargs=env_kwargs, vec_env_cls=vec_cls)


def _version(module: str) -> str | None:
    try:
        return str(importlib.import_module(module).__version__)
    except ImportError:
        return None


def algorithm(name: str) -> tuple[Any, Any]:
    """The SB3 algorithm class and its evaluation callback for ``--algo``."""
    if name == "maskable-ppo":
        try:
            from sb3_contrib import MaskablePPO
            from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise SystemExit("maskable-ppo needs sb3-contrib (in the [train] extra)") from error
        return MaskablePPO, MaskableEvalCallback
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.callbacks import EvalCallback

    return (PPO if name == "ppo" else SAC), EvalCallback


def latest_checkpoint(directory: Path) -> tuple[Path, int] | None:
    best: tuple[Path, int] | None = None
    for path in directory.glob("model_*_steps.zip"):
        match = re.search(r"model_(\d+)_steps", path.name)
        if match and (best is None or int(match.group(1)) > best[1]):
            best = (path, int(match.group(1)))
    return best


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.ppo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, choices=isac_market_env.ENV_IDS)
    parser.add_argument("--algo", choices=("ppo", "sac", "maskable-ppo"), default="ppo")
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--n-envs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default=None, help="JSON file of gym.make kwargs")
    parser.add_argument("--out", default=None, help="run directory (default runs/<env>-<algo>)")
    parser.add_argument("--eval-freq", type=int, default=2_000, help="env steps between evals")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--checkpoint-freq", type=int, default=2_000)
    parser.add_argument("--n-steps", type=int, default=256, help="PPO rollout length per env")
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--no-subprocess", action="store_true", help="use DummyVecEnv")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--resume", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sb3 = _sb3()
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback

    if args.algo == "sac" and args.env != "ISACMarket-Overbooking-v0":
        raise SystemExit("SAC needs a continuous action space: use it with "
                         "ISACMarket-Overbooking-v0")
    if args.algo == "maskable-ppo" and args.env != "ISACMarket-Bidding-v0":
        raise SystemExit("maskable-ppo needs action masks: use it with ISACMarket-Bidding-v0")
    algo_cls, eval_callback_cls = algorithm(args.algo)
    env_kwargs: dict[str, Any] = json.loads(Path(args.config).read_text()) if args.config else {}
    gym.make(args.env, **env_kwargs).close()  # validate the kwargs before starting workers
    out = Path(args.out or f"runs/{args.env}-{args.algo}")
    out.mkdir(parents=True, exist_ok=True)
    import torch

    (out / "run.json").write_text(json.dumps({
        "argv": sys.argv[1:] if argv is None else argv, "args": vars(args),
        "env_kwargs": env_kwargs, "isac_market_env": isac_market_env.__version__,
        "stable_baselines3": sb3.__version__, "torch": torch.__version__,
        "gymnasium": gym.__version__, "sb3_contrib": _version("sb3_contrib")}, indent=2))
    venv = make_vec_env(args.env, env_kwargs, args.n_envs, args.seed, not args.no_subprocess)
    eval_env = make_vec_env(args.env, env_kwargs, 1, args.seed + 10_000, False)
    resume = latest_checkpoint(out / "checkpoints") if args.resume else None
    if resume is not None:
        model = algo_cls.load(resume[0], env=venv, tensorboard_log=str(out / "tb"))
        print(f"resuming from {resume[0]} ({resume[1]} steps)")
        remaining = max(args.timesteps - resume[1], 0)
    else:
        kwargs: dict[str, Any] = {"seed": args.seed, "learning_rate": args.learning_rate,
                                  "tensorboard_log": str(out / "tb"), "verbose": 0}
        if args.algo != "sac":
            kwargs.update(n_steps=args.n_steps, batch_size=min(64, args.n_steps * args.n_envs))
        model = algo_cls("MlpPolicy", venv, **kwargs)
        remaining = args.timesteps
    per_env = max(1, args.n_envs)
    # the evaluation env is a DummyVecEnv on purpose (one episode at a time, same process)
    warnings.filterwarnings("ignore", message="Training and eval env are not of the same type")
    callbacks = CallbackList([
        CheckpointCallback(max(args.checkpoint_freq // per_env, 1), str(out / "checkpoints"),
                           name_prefix="model"),
        eval_callback_cls(eval_env, n_eval_episodes=args.eval_episodes,
                     eval_freq=max(args.eval_freq // per_env, 1),
                     best_model_save_path=str(out), log_path=str(out / "eval"),
                     deterministic=True, verbose=0),
    ])
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=callbacks,
                    progress_bar=not args.no_progress, reset_num_timesteps=resume is None,
                    tb_log_name=args.algo)
    model.save(out / "final_model")
    venv.close()
    eval_env.close()
    print(f"saved {out / 'final_model.zip'} after {model.num_timesteps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
