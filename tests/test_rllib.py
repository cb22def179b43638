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
