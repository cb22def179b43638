"""Train an SB3 agent (PPO, or SAC for the continuous overbooking action) on an ISACMarket env.

    python -m train.ppo --env ISACMarket-Overbooking-v0 --timesteps 20000 --n-envs 2 \
        --seed 0 --out runs/overbooking-ppo [--algo ppo|sac] [--config env.json] [--resume]

Run it from a checkout of the repository (train/ is not installed with the package).
``--algo maskable-ppo`` (sb3-contrib's MaskablePPO, Bidding-v0 only) samples only the slots the
focal client may propose, from the env's ``action_masks()``. ``--env`` also takes the
``isac_market_env:ID`` form.

Writes into ``--out``: ``run.json`` (env, algorithm, env kwargs, package versions, one entry
per training segment), TensorBoard logs (``tb/``), periodic evaluation (``eval/
evaluations.npz``, ``best_model.zip``), checkpoints (``checkpoints/model_<steps>_steps.zip``,
with the replay buffer for SAC; one more when training ends or is interrupted with Ctrl-C or
SIGTERM) and
``final_model.zip``. Every file is written through a temporary file and a rename.

``--resume`` continues the newest saved state up to ``--timesteps`` in total: the model (and
SAC's replay buffer) of the newest checkpoint, its step counter, the saved run's env config (a
conflicting ``--config`` is refused), the same TensorBoard run, and the evaluation history
(appended). The training envs are re-seeded with ``seed + steps done``, so a resumed run sees
new episodes but is not bit-identical to an uninterrupted one (SB3 does not save its RNG
states). Without ``--resume`` a directory that already holds a run is refused.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import isac_market_env
from isac_market_env.runs import (
    env_id_argument,
    interrupt_on_sigterm,
    replace_atomic,
    write_atomic,
)

OFF_POLICY = ("sac",)


def _sb3() -> Any:
    try:
        import stable_baselines3
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise SystemExit("training needs the [train] extra: pip install 'isac-market-env[train]'"
                         " (and torch==2.13.0 for the CPU build)") from error
    return stable_baselines3


def make_vec_env(env_id: str, env_kwargs: dict[str, Any], n_envs: int, seed: int,
                 subprocess: bool) -> Any:
    _sb3()
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

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


# ---------------------------------------------------------------------------- saved state
def save_model_atomic(model: Any, path: Path) -> None:
    """``model.save(path)`` through a unique temporary file, fsynced, and a rename."""
    replace_atomic(path, model.save)


def save_checkpoint(model: Any, directory: Path) -> Path:
    """The model at its step count (and SAC's replay buffer), each file atomically (the
    buffer first: a model file means its checkpoint is complete)."""
    directory.mkdir(parents=True, exist_ok=True)
    steps = int(model.num_timesteps)
    if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        replace_atomic(directory / f"model_replay_buffer_{steps}_steps.pkl",
                       model.save_replay_buffer)
    path = directory / f"model_{steps}_steps.zip"
    save_model_atomic(model, path)
    return path


def checkpoints(directory: Path) -> list[tuple[Path, int]]:
    """The checkpoints in ``directory``, newest (most steps) first."""
    found = []
    for path in directory.glob("model_*_steps.zip"):
        match = re.fullmatch(r"model_(\d+)_steps\.zip", path.name)
        if match:
            found.append((path, int(match.group(1))))
    return sorted(found, key=lambda item: -item[1])


def newest_loadable_checkpoint(directory: Path, algo_cls: Any, off_policy: bool
                               ) -> tuple[Path, int] | None:
    """The newest checkpoint that loads (with its replay buffer for an off-policy algorithm);
    each newer one that does not (a file truncated by a kill, say) is named and skipped."""
    import pickle

    for path, steps in checkpoints(directory):
        buffer = path.with_name(f"model_replay_buffer_{steps}_steps.pkl")
        try:
            algo_cls.load(path, device="cpu")
            if off_policy:
                with buffer.open("rb") as handle:
                    pickle.load(handle)
        except Exception as error:  # whatever a damaged file raises (SB3 asserts, zipfile...)
            print(f"--resume: skipping {path.name}, it does not load "
                  f"({type(error).__name__}: {error})", file=sys.stderr)
            continue
        return path, steps
    return None


def checkpoint_callback(directory: Path, every_calls: int) -> Any:
    """Every ``every_calls`` vec-env steps, an atomic checkpoint (replay buffer included)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class AtomicCheckpoint(BaseCallback):
        def _on_step(self) -> bool:
            if self.n_calls % every_calls == 0:
                save_checkpoint(self.model, directory)
            return True

    return AtomicCheckpoint()


def evaluation_callback(base: Any, eval_env: Any, out: Path, resumed_at: int = 0,
                        **kwargs: Any) -> Any:
    """``base`` (SB3's or sb3-contrib's EvalCallback) writing ``eval/evaluations.npz`` and
    ``best_model.zip`` atomically, and continuing the history a resumed run left there (the
    evaluations up to ``resumed_at`` steps are kept, later ones, of a segment killed after
    its last checkpoint, dropped; the best model is replaced only by a better one)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class SaveBest(BaseCallback):
        def _on_step(self) -> bool:
            save_model_atomic(self.model, out / "best_model.zip")
            return True

    class AtomicEvaluation(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__(eval_env, log_path=str(out / "eval"), best_model_save_path=None,
                             callback_on_new_best=SaveBest(), **kwargs)
            self.final_log = Path(self.log_path + ".npz")
            self.log_path = self.log_path + ".tmp"  # np.savez adds .npz
            if self.final_log.is_file():
                with np.load(self.final_log) as old:
                    keep = old["timesteps"] <= resumed_at
                    self.evaluations_timesteps = old["timesteps"][keep].tolist()
                    self.evaluations_results = old["results"][keep].tolist()
                    self.evaluations_length = old["ep_lengths"][keep].tolist()
                if self.evaluations_results:
                    self.best_mean_reward = float(np.max(np.mean(
                        self.evaluations_results, axis=1)))

        def _on_step(self) -> bool:
            keep_going = bool(super()._on_step())
            written = Path(self.log_path + ".npz")
            if written.is_file():
                os.replace(written, self.final_log)
            return keep_going

    return AtomicEvaluation()


# ---------------------------------------------------------------------------- the command
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.ppo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, type=env_id_argument,
                        help=" or ".join(isac_market_env.ENV_IDS))
    parser.add_argument("--algo", choices=("ppo", "sac", "maskable-ppo"), default="ppo")
    parser.add_argument("--timesteps", type=int, default=20_000, help="total env steps")
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
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its newest saved state")
    return parser


def _run_record(out: Path) -> dict[str, Any] | None:
    path = out / "run.json"
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (ValueError, UnicodeDecodeError) as error:
        raise SystemExit(f"{path} is not a readable run record ({error}); it is written "
                         "atomically, so this file was changed by hand: restore or remove "
                         "it") from None


def _resume_state(args: argparse.Namespace, out: Path, env_kwargs: dict[str, Any] | None,
                  algo_cls: Any) -> tuple[dict[str, Any], dict[str, Any], tuple[Path, int]]:
    """The saved run, its env kwargs and its newest loadable checkpoint; SystemExit on a
    conflict or when there is nothing to resume."""
    record = _run_record(out)
    newest = None if record is None else newest_loadable_checkpoint(
        out / "checkpoints", algo_cls, args.algo in OFF_POLICY)
    if record is None or newest is None:
        raise SystemExit(f"--resume: nothing to resume in {out} (no run.json or no checkpoint "
                         "that loads in checkpoints/); start the run without --resume")
    for key in ("env", "algo"):
        if record[key] != getattr(args, key):
            raise SystemExit(f"--resume: {out} holds a {key} {record[key]!r} run, not "
                             f"{getattr(args, key)!r}")
    if env_kwargs is not None and env_kwargs != record["env_kwargs"]:
        raise SystemExit(f"--resume: --config {args.config} differs from the saved run's env "
                         f"config {record['env_kwargs']}; drop --config to use the saved one")
    return record, dict(record["env_kwargs"]), newest


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sb3 = _sb3()
    from stable_baselines3.common.callbacks import CallbackList

    if args.algo == "sac" and args.env != "ISACMarket-Overbooking-v0":
        raise SystemExit("SAC needs a continuous action space: use it with "
                         "ISACMarket-Overbooking-v0")
    if args.algo == "maskable-ppo" and args.env != "ISACMarket-Bidding-v0":
        raise SystemExit("maskable-ppo needs action masks: use it with ISACMarket-Bidding-v0")
    algo_cls, eval_callback_cls = algorithm(args.algo)
    given = json.loads(Path(args.config).read_text()) if args.config else None
    out = Path(args.out or f"runs/{args.env}-{args.algo}")
    if args.resume:
        record, env_kwargs, (checkpoint, done) = _resume_state(args, out, given, algo_cls)
    else:
        if _run_record(out) is not None:
            raise SystemExit(f"{out} already holds a run: --resume continues it, or choose "
                             "another --out")
        env_kwargs, done = given or {}, 0
    gym.make(args.env, **env_kwargs).close()  # validate the kwargs before starting workers
    out.mkdir(parents=True, exist_ok=True)
    import torch

    if not args.resume:
        record = {"env": args.env, "algo": args.algo, "env_kwargs": env_kwargs,
                  "isac_market_env": isac_market_env.__version__,
                  "stable_baselines3": sb3.__version__, "torch": torch.__version__,
                  "gymnasium": gym.__version__, "sb3_contrib": _version("sb3_contrib"),
                  "segments": []}
    segment = {"argv": sys.argv[1:] if argv is None else list(argv), "args": vars(args),
               "from_timesteps": done, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "finished": False}
    record.setdefault("segments", []).append(segment)
    write_atomic(out / "run.json", json.dumps(record, indent=2))

    # a resumed segment sees new episodes: its envs are seeded past the steps already done
    venv = make_vec_env(args.env, env_kwargs, args.n_envs, args.seed + done,
                        not args.no_subprocess)
    eval_env = make_vec_env(args.env, env_kwargs, 1, args.seed + 10_000 + done, False)
    if args.resume:
        model = algo_cls.load(checkpoint, env=venv, tensorboard_log=str(out / "tb"))
        buffer = checkpoint.with_name(f"model_replay_buffer_{done}_steps.pkl")
        if args.algo in OFF_POLICY and buffer.is_file():
            model.load_replay_buffer(buffer)
        print(f"resuming {out} from {checkpoint.name} ({done} steps)")
    else:
        kwargs: dict[str, Any] = {"seed": args.seed, "learning_rate": args.learning_rate,
                                  "tensorboard_log": str(out / "tb"), "verbose": 0}
        if args.algo != "sac":
            kwargs.update(n_steps=args.n_steps, batch_size=min(64, args.n_steps * args.n_envs))
        model = algo_cls("MlpPolicy", venv, **kwargs)
    per_env = max(1, args.n_envs)
    # the evaluation env is a DummyVecEnv on purpose (one episode at a time, same process)
    warnings.filterwarnings("ignore", message="Training and eval env are not of the same type")
    # the evaluation runs before the checkpoint of the same step: a run killed between the two
    # resumes from the checkpoint before, drops that evaluation and makes it again (the other
    # order lost it: the checkpoint existed, the evaluation never did)
    callbacks = CallbackList([
        evaluation_callback(eval_callback_cls, eval_env, out, resumed_at=done,
                            n_eval_episodes=args.eval_episodes,
                            eval_freq=max(args.eval_freq // per_env, 1), deterministic=True,
                            verbose=0),
        checkpoint_callback(out / "checkpoints", max(args.checkpoint_freq // per_env, 1)),
    ])
    for callback in callbacks.callbacks:  # periodic saves keep the uninterrupted run's timing
        callback.n_calls = done // per_env
    remaining = max(args.timesteps - done, 0)
    interrupt_on_sigterm()
    try:
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=callbacks,
                        progress_bar=not args.no_progress, reset_num_timesteps=not args.resume,
                        tb_log_name=args.algo)
    except KeyboardInterrupt:
        saved = save_checkpoint(model, out / "checkpoints")
        print(f"interrupted: saved {saved} ({model.num_timesteps} steps); --resume continues",
              file=sys.stderr)
        return 130
    finally:
        venv.close()
        eval_env.close()
    save_checkpoint(model, out / "checkpoints")
    save_model_atomic(model, out / "final_model.zip")
    segment.update(finished=True, to_timesteps=int(model.num_timesteps))
    write_atomic(out / "run.json", json.dumps(record, indent=2))
    print(f"saved {out / 'final_model.zip'} after {model.num_timesteps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
