"""RLlib (the ``marl`` extra) trains on both envs in its own env-runner processes.

The runners are fresh processes that never imported ``isac_market_env``: the
``isac_market_env:ID`` form makes ``gym.make`` import it (and so register the ids) first.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.rllib")

from ray.rllib.algorithms.ppo import PPOConfig  # noqa: E402

CONFIGS = {
    "ISACMarket-Bidding-v0": {"n_mus": 6, "n_transactions": 2},
    "ISACMarket-Overbooking-v0": {"n_mus": 6, "n_periods": 2, "transactions_per_period": 2},
}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("env_id", sorted(CONFIGS))
def test_single_agent_rllib_ppo(env_id: str, local_ray: None) -> None:
    config = (PPOConfig()
              .environment(env=f"isac_market_env:{env_id}", env_config=CONFIGS[env_id])
              .env_runners(num_env_runners=1, rollout_fragment_length=32)
              .training(train_batch_size_per_learner=64, minibatch_size=32, num_epochs=1)
              .debugging(seed=0))
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
    finally:
        algo.stop()
    assert result["num_env_steps_sampled_lifetime"] >= 128
    assert result["env_runners"]["num_episodes_lifetime"] > 0


def test_rllib_market_env_shows_learners_only_their_decisions() -> None:
    """RLlib's view: only the learning types are agents, each observed only when it decides
    (a mask allowing more than the no-op); everyone else plays the rule inside; the rewards
    handed out add up to the learners' whole returns in the underlying game."""
    import numpy as np

    from isac_market_env.envs.rllib_market import RLlibMarketEnv

    env = RLlibMarketEnv({"n_mus": 12, "n_transactions": 3, "learning": ["mu"],
                          "reward": "utility", "reward_scale": 1.0})
    assert all(a.startswith("mu_") for a in env.possible_agents)
    obs, _ = env.reset(seed=0)
    total, steps = 0.0, 0
    rng = np.random.default_rng(0)
    done = False
    while not done:
        assert obs and all(o["action_mask"].sum() > 1 for o in obs.values())
        assert all(env.observation_spaces[a].contains(o) for a, o in obs.items())
        actions = {a: int(rng.choice(np.flatnonzero(o["action_mask"]))) for a, o in obs.items()}
        obs, rewards, terminateds, _, _ = env.step(actions)
        total += sum(rewards.values())
        done = terminateds["__all__"]
        steps += 1
    market = env.market_env.market
    mu_utility = sum(float((tx.client_value - tx.client_paid + tx.client_received)[:12].sum())
                     for tx in market.transactions)
    assert total == pytest.approx(mu_utility, rel=1e-9) and steps >= 1
    with pytest.raises(ValueError, match="learning"):
        RLlibMarketEnv({"n_mus": 8, "learning": ["bs"]})


def test_multi_agent_training_checkpoint_resume_evaluate(tmp_path: object) -> None:
    """The CI smoke run of train.marl: 1 iteration and a checkpoint, resumed to 2, then
    ``isac-market evaluate`` of the checkpoint against the rule on the same seeds."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = Path(str(tmp_path)) / "marl"
    config = Path(str(tmp_path)) / "env.json"
    config.write_text(json.dumps({"n_mus": 6, "n_transactions": 2}))
    common = [sys.executable, "-m", "train.marl", "--out", str(out), "--batch", "100",
              "--minibatch", "50", "--epochs", "1", "--checkpoint-every", "1"]
    subprocess.run([*common, "--iterations", "1", "--config", str(config)], cwd=root,
                   check=True, capture_output=True)
    again = subprocess.run([*common, "--iterations", "1", "--config", str(config)], cwd=root,
                           capture_output=True, text=True)
    assert again.returncode != 0 and "already holds a run" in again.stderr
    resumed = subprocess.run([*common, "--iterations", "2", "--resume"], cwd=root,
                             check=True, capture_output=True, text=True)
    assert "resumed" in resumed.stdout
    run = json.loads((out / "run.json").read_text())
    assert [row["iteration"] for row in run["iterations"]] == [1, 2]
    assert run["iterations"][1]["env_steps_lifetime"] > run["iterations"][0][
        "env_steps_lifetime"]
    assert (out / "checkpoints" / "iter_2" / "rllib_checkpoint.json").is_file()
    report = Path(str(tmp_path)) / "eval.json"
    subprocess.run([sys.executable, "-m", "isac_market_env", "evaluate", "--env",
                    "isac_market_v0", "--policy", f"frbank,{out / 'final'}", "--config",
                    str(config), "--seeds", "2", "--json", str(report)], cwd=root, check=True,
                   capture_output=True)
    payload = json.loads(report.read_text())
    rule, learned = payload["policies"]
    assert 0 < rule["sw_to_bound"] <= 1 + 1e-9
    assert "social_welfare" in learned["paired_difference_to_first"]


def test_rllib_market_env_with_bss_learning_steps_once_per_period() -> None:
    """BSs learning alone: RLlib sees one step per period (the clients' rounds are played
    in compiled runs inside) and the rewards are the periods' net welfare."""
    from isac_market_env.envs.rllib_market import RLlibMarketEnv

    env = RLlibMarketEnv({"n_mus": 8, "n_transactions": 2, "bs_agents": True, "n_periods": 3,
                          "reward": "net_welfare", "reward_scale": 1.0, "learning": ["bs"]})
    obs, _ = env.reset(seed=0)
    steps, total = 0, 0.0
    done = False
    while not done:
        assert sorted(obs) == [f"bs_{j}" for j in range(env.market_env.n_bss)]
        obs, rewards, terminateds, _, _ = env.step({a: 0 for a in obs})
        total += rewards["bs_0"]
        done = terminateds["__all__"]
        steps += 1
    assert steps == 3
    from isac_market_env.envs.multiagent import parallel_env

    game = parallel_env(n_mus=8, n_transactions=2, bs_agents=True, n_periods=3,
                        reward="net_welfare", reward_scale=1.0)
    _, infos = game.reset(seed=0)
    by_rounds = 0.0
    while game.agents:  # keeping the rates (0) is the rule's 0.2 here
        _, rewards, *_, infos = game.step({a: 0 if a.startswith("bs_") else
                                           infos[a]["rule_action"] for a in game.agents})
        by_rounds += rewards["bs_0"]
    assert total == pytest.approx(by_rounds, rel=1e-12)
