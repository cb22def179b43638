"""Training smoke test: a few hundred steps on each env, save, load, evaluate, resume."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from isac_market_env.cli import main as cli_main
from train.ppo import main as train_main

CONFIGS = {
    "ISACMarket-Overbooking-v0": {"n_mus": 6, "n_periods": 2, "transactions_per_period": 2},
    "ISACMarket-Bidding-v0": {"n_mus": 6, "n_transactions": 2},
}


@pytest.mark.parametrize(("env_id", "algo"), [("ISACMarket-Bidding-v0", "ppo"),
                                             ("ISACMarket-Bidding-v0", "maskable-ppo"),
                                             ("ISACMarket-Overbooking-v0", "ppo"),
                                             ("ISACMarket-Overbooking-v0", "sac")])
def test_train_save_load_evaluate(env_id: str, algo: str, tmp_path: Path) -> None:
    if algo == "maskable-ppo":
        pytest.importorskip("sb3_contrib")
    config = tmp_path / "env.json"
    config.write_text(json.dumps(CONFIGS[env_id]))
    out = tmp_path / "run"
    args = ["--env", env_id, "--algo", algo, "--timesteps", "256", "--n-envs", "2",
            "--n-steps", "64",
            "--config", str(config), "--out", str(out), "--eval-freq", "128",
            "--eval-episodes", "1", "--checkpoint-freq", "128", "--no-progress"]
    assert train_main(args) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["env_kwargs"] == CONFIGS[env_id] and run["isac_market_env"]
    assert (out / "final_model.zip").is_file() and (out / "best_model.zip").is_file()
    assert sorted(p.name for p in (out / "checkpoints").glob("*.zip"))
    assert any((out / "tb").rglob("events.out.tfevents.*"))
    report = tmp_path / "eval.json"
    assert cli_main(["evaluate", "--policy", str(out / "final_model.zip"), "--env", env_id,
                     "--seeds", "2", "--config", str(config), "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert len(data["per_seed"]) == 2 and "social_welfare_ci95" in data
    # a market of another shape (7 BSs) has other spaces: the model is refused, not misused
    from isac_market_env.evaluate import load_policy

    with pytest.raises(ValueError, match="was trained with observation_space"):
        load_policy(str(out / "final_model.zip"), env_id,
                    {**CONFIGS[env_id], "scenario": "paper-synthetic-7bs"})


def test_evaluate_rule_policies(tmp_path: Path) -> None:
    config = tmp_path / "env.json"
    config.write_text(json.dumps(CONFIGS["ISACMarket-Overbooking-v0"]))
    out = tmp_path / "paired.json"
    assert cli_main(["evaluate", "--policy", "fixed,newsvendor,fixed", "--env",
                     "ISACMarket-Overbooking-v0", "--seeds", "2", "--config", str(config),
                     "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [p["policy"] for p in report["policies"]] == ["fixed", "newsvendor", "fixed"]
    fixed, newsvendor, again = report["policies"]
    # same seeds for every policy: differences are per-seed, and a policy against itself is 0
    assert again["paired_difference_to_first"]["social_welfare"] == 0.0
    expected = np.mean([a["social_welfare"] - b["social_welfare"]
                        for a, b in zip(newsvendor["per_seed"], fixed["per_seed"], strict=True)])
    assert newsvendor["paired_difference_to_first"]["social_welfare"] == pytest.approx(expected)
    # the rate each policy set, averaged over periods, BSs and both resources
    assert fixed["overbooking_rate"] == pytest.approx(0.2)
    assert 0.0 <= newsvendor["overbooking_rate"] <= 0.6  # 1 + O = 1 / p, within max_overbooking
    bidding = tmp_path / "bid.json"
    bidding.write_text(json.dumps(CONFIGS["ISACMarket-Bidding-v0"]))
    assert cli_main(["evaluate", "--policy", "frbank", "--env", "ISACMarket-Bidding-v0",
                     "--seeds", "2", "--config", str(bidding)]) == 0
    assert cli_main(["evaluate", "--policy", "frbank", "--env",
                     "ISACMarket-Overbooking-v0", "--seeds", "1"]) == 2


def test_fixed_rate_argument_and_env_max_overbooking() -> None:
    from isac_market_env.evaluate import load_policy

    # the policy maps its rate onto the env's action range for the env's max_overbooking
    for name, kwargs, rate in (("fixed:0.1", {"max_overbooking": 0.4}, 0.1), ("fixed", {}, 0.2)):
        env = gym.make("ISACMarket-Overbooking-v0", n_mus=5, n_periods=1,
                       transactions_per_period=1, **kwargs)
        obs, _ = env.reset(seed=0)
        action, _ = load_policy(name, "ISACMarket-Overbooking-v0", kwargs).predict(obs)
        info = env.step(action)[4]
        assert np.allclose(info["overbooking_bandwidth"] + info["overbooking_power"], rate)
    with pytest.raises(ValueError, match="needs a number"):
        load_policy("fixed:abc", "ISACMarket-Overbooking-v0")
    with pytest.raises(ValueError, match="only the fixed policy"):
        load_policy("newsvendor:0.1", "ISACMarket-Overbooking-v0")
    with pytest.raises(ValueError, match="rate must be in"):
        load_policy("fixed:0.9", "ISACMarket-Overbooking-v0")


def test_action_masks_follow_the_available_slots() -> None:
    env = gym.make("ISACMarket-Bidding-v0", n_mus=6, n_transactions=2)
    inner = env.unwrapped
    _, info = env.reset(seed=3)
    for _ in range(5):
        masks = env.get_wrapper_attr("action_masks")()
        n_slots = inner.n_slots  # type: ignore[attr-defined]
        assert masks.shape == (int(env.action_space.nvec.sum()),)  # type: ignore[attr-defined]
        assert np.array_equal(masks[:n_slots], info["action_mask"])
        assert masks[n_slots] and masks[n_slots + 1:].all()  # "no proposal" and every level
        _, _, terminated, _, info = env.step(np.array([info["rule_slot"], 0]))
        if terminated:
            break


def _tensorboard_steps(directory: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: list[int] = []
    for events in sorted(directory.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        steps += [event.step for event in accumulator.Scalars(tag)]
    return steps


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_resume_continues_like_an_uninterrupted_run(algo: str, tmp_path: Path) -> None:
    """N steps, then --resume to 2N, against one uninterrupted 2N run: the same step counts,
    checkpoints, evaluation history and TensorBoard steps, in the same files."""
    env_id = "ISACMarket-Overbooking-v0"
    config = tmp_path / "env.json"
    config.write_text(json.dumps(CONFIGS[env_id]))

    def train(out: Path, steps: int, *extra: str) -> int:
        return train_main(["--env", env_id, "--algo", algo, "--timesteps", str(steps),
                           "--n-envs", "2", "--n-steps", "64", "--eval-freq", "128",
                           "--eval-episodes", "1", "--checkpoint-freq", "128", "--no-progress",
                           "--no-subprocess", "--out", str(out), *extra])

    whole, split = tmp_path / "whole", tmp_path / "split"
    assert train(whole, 256, "--config", str(config)) == 0
    assert train(split, 128, "--config", str(config)) == 0
    assert train(split, 256, "--resume") == 0  # the saved run's env config
    runs = [json.loads((d / "run.json").read_text()) for d in (whole, split)]
    assert runs[1]["env_kwargs"] == CONFIGS[env_id]
    assert [(s["from_timesteps"], s["to_timesteps"]) for s in runs[0]["segments"]] == [(0, 256)]
    assert [(s["from_timesteps"], s["to_timesteps"]) for s in runs[1]["segments"]] == [
        (0, 128), (128, 256)]
    names = [sorted(p.name for p in (d / "checkpoints").iterdir()) for d in (whole, split)]
    assert names[0] == names[1] and "model_256_steps.zip" in names[0]
    timesteps = [np.load(d / "eval" / "evaluations.npz")["timesteps"].tolist()
                 for d in (whole, split)]
    assert timesteps[0] == timesteps[1] == [128, 256]
    runs_tb = [sorted(p.name for p in (d / "tb").iterdir()) for d in (whole, split)]
    assert runs_tb[0] == runs_tb[1] == [f"{algo}_1"]  # one TensorBoard run, appended to
    tag = "time/fps" if algo == "ppo" else "train/actor_loss"
    steps = [_tensorboard_steps(d / "tb" / f"{algo}_1", tag) for d in (whole, split)]
    assert steps[0] == steps[1] and steps[1] == sorted(steps[1]) and steps[1]
    assert not list(split.rglob("*.tmp*"))  # every file written through a rename
    if algo == "sac":  # the replay buffer carried over: 128 steps per env in the buffer
        from stable_baselines3.common.save_util import load_from_pkl

        buffer = load_from_pkl(split / "checkpoints" / "model_replay_buffer_256_steps.pkl")
        assert buffer.pos == 128
    # nothing to resume, a conflicting config, a second run into the same directory
    with pytest.raises(SystemExit, match="nothing to resume"):
        train(tmp_path / "empty", 256, "--resume")
    config.write_text(json.dumps({**CONFIGS[env_id], "n_mus": 7}))
    with pytest.raises(SystemExit, match="differs from the saved run"):
        train(split, 384, "--resume", "--config", str(config))
    with pytest.raises(SystemExit, match="already holds a run"):
        train(split, 384)
