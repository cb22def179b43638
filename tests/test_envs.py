"""Gymnasium/SB3 conventions and the reference-policy reproduction for both environments."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import numpy_only
from gymnasium.utils.env_checker import check_env
from test_market import check_episode

import isac_market_env as ime
from isac_market_env.baselines import (
    FixedOverbookingPolicy,
    FRBankBiddingPolicy,
    NewsvendorOverbookingPolicy,
)
from isac_market_env.envs.render import FRAME_SIZE_PX, mu_states
from isac_market_env.mechanisms.matching import load_compiled_matching

SMALL = {
    "ISACMarket-Bidding-v0": {"n_mus": 10, "n_transactions": 3},
    "ISACMarket-Overbooking-v0": {"n_mus": 10, "n_periods": 3, "transactions_per_period": 3},
}


def make(env_id: str, **extra: object) -> gym.Env:
    return gym.make(env_id, **{**SMALL[env_id], **extra})


def rollout(env: gym.Env, seed: int, policy=None) -> tuple[list[float], list[np.ndarray]]:  # type: ignore[no-untyped-def]
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rewards, observations = [], [obs]
    done = False
    while not done:
        if policy is None:
            action = _random_action(env, rng)
        else:
            action, _ = policy.predict(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        observations.append(obs)
        done = terminated or truncated
    return rewards, observations


def _random_action(env: gym.Env, rng: np.random.Generator) -> np.ndarray:
    space = env.action_space
    if isinstance(space, gym.spaces.MultiDiscrete):
        return rng.integers(0, space.nvec)
    return rng.uniform(space.low, space.high).astype(space.dtype)


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
@pytest.mark.parametrize("render_mode", [None, "ansi", "rgb_array"])
def test_gymnasium_check_env(env_id: str, render_mode: str | None) -> None:
    """No warning at all: the checker's warnings are about the env it checks."""
    env = make(env_id, render_mode=render_mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    assert not caught, [str(w.message) for w in caught]


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
def test_sb3_check_env(env_id: str) -> None:
    """No warning at all, its recommendations included (symmetric, normalised Box actions)."""
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_checker.check_env(make(env_id).unwrapped, warn=True)
    assert not caught, [str(w.message) for w in caught]


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
def test_seeded_determinism(env_id: str) -> None:
    a_rewards, a_obs = rollout(make(env_id), seed=5)
    b_rewards, b_obs = rollout(make(env_id), seed=5)
    assert a_rewards == b_rewards
    assert all(np.array_equal(x, y) for x, y in zip(a_obs, b_obs, strict=True))


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
def test_rollouts_do_not_depend_on_numba(env_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random-policy rollouts (custom bids included) match with and without the compiled loops."""
    pytest.importorskip("numba")
    assert load_compiled_matching()
    compiled = rollout(make(env_id, n_mus=40), seed=2)
    numpy_only(monkeypatch)
    numpy_rewards, numpy_obs = rollout(make(env_id, n_mus=40), seed=2)
    assert compiled[0] == numpy_rewards
    assert all(np.array_equal(x, y) for x, y in zip(compiled[1], numpy_obs, strict=True))


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
def test_pickling_mid_episode(env_id: str) -> None:
    env = make(env_id)
    env.reset(seed=2)  # a live episode: the market is built, the signing phase is under way
    clone = pickle.loads(pickle.dumps(env))
    action = _random_action(env, np.random.default_rng(1))
    first = env.step(action)
    second = clone.step(action)
    assert np.array_equal(first[0], second[0]) and first[1] == second[1]


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
def test_async_vector_env(env_id: str) -> None:
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="async", **SMALL[env_id])
    try:
        obs, _ = vec.reset(seed=[0, 1])
        assert obs.shape[0] == 2
        actions = np.stack([vec.single_action_space.sample() for _ in range(2)])
        obs, rewards, _, _, _ = vec.step(actions)
        assert rewards.shape == (2,)
    finally:
        vec.close()


@pytest.mark.parametrize("slot_order", ["fixed", "ranked"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_bidding_reference_policy_reproduces_simulate(seed: int, slot_order: str) -> None:
    env = make("ISACMarket-Bidding-v0", slot_order=slot_order, reward_scale=1.0)
    rewards, _ = rollout(env, seed, FRBankBiddingPolicy())
    reference = ime.simulate("frbank", n_mus=10, n_transactions=3, seed=seed)
    env_sw = [tx.social_welfare for tx in env.unwrapped.market.transactions]
    assert env_sw == [tx.social_welfare for tx in reference.transactions]  # bit for bit
    assert np.array_equal(env.unwrapped.market.contracts.pay, reference.signing.contracts.pay)
    assert sum(rewards) == pytest.approx(reference.summary()["social_welfare"], rel=1e-12)


def test_overbooking_fixed_policy_reproduces_simulate() -> None:
    env = make("ISACMarket-Overbooking-v0", n_periods=1, drift_std=0.0, reward_scale=1.0)
    rewards, _ = rollout(env, 4, FixedOverbookingPolicy(0.2))
    reference = ime.simulate("frbank", n_mus=10, n_transactions=3, seed=4)
    assert rewards == [reference.summary()["social_welfare"]]


def test_overbooking_return_is_episode_sw_and_policies_run() -> None:
    for policy in (FixedOverbookingPolicy(0.2), NewsvendorOverbookingPolicy()):
        env = make("ISACMarket-Overbooking-v0", reward_scale=1.0)
        obs, _ = env.reset(seed=1)
        total, sw, done = 0.0, 0.0, False
        while not done:
            action, _ = policy.predict(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            sw += info["social_welfare"]
            done = terminated or truncated
        assert total == pytest.approx(sw)
        assert info["period"] == 3


def test_overbooking_sw_feature_is_a_share_at_any_size() -> None:
    """The last-period SW feature is SW / (W x every client's best value): inside (0, 1] at
    50 MUs with W = 20, where SW / 1000 (the ``sw_scale`` option) passes the bound 5."""
    env = gym.make("ISACMarket-Overbooking-v0", n_mus=50, n_periods=1)
    env.reset(seed=0)
    obs, _, _, _, info = env.step(np.full(env.action_space.shape, 0.0, dtype=np.float32))
    book = env.unwrapped.market.book
    best = np.zeros(book.n_clients)
    np.maximum.at(best, book.sol_client, book.sol_value)
    share = info["social_welfare"] / (20 * best.sum())
    assert 0.0 < share <= 1.0
    assert obs[-1] == pytest.approx(share, rel=1e-6)
    assert info["social_welfare"] / 1000 > 5.0
    fixed = gym.make("ISACMarket-Overbooking-v0", n_mus=50, n_periods=1, sw_scale=1000.0)
    fixed.reset(seed=0)
    assert fixed.step(np.full(env.action_space.shape, 0.0, dtype=np.float32))[0][-1] == 5.0


@pytest.mark.parametrize("seed", range(4))
def test_random_agents_keep_the_market_rules(seed: int) -> None:
    """Whatever the agent does, the markets the envs run keep IR, capacities, risk limits and
    the SW identity: random solutions and bids for the focal client, and overbooking rates
    drawn from the whole range or pushed to its ends (0 and the maximum)."""
    rng = np.random.default_rng(seed)
    env = gym.make("ISACMarket-Bidding-v0", n_mus=(5, 12)[seed % 2], n_transactions=3)
    _, info = env.reset(seed=seed)
    done = False
    while not done:  # half the time the rule's solution at any bid, up to the highest level
        action = (_random_action(env, rng) if rng.random() < 0.5 else
                  np.array([info["rule_slot"], rng.integers(env.action_space.nvec[1])]))
        _, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    check_episode(env.unwrapped.market)
    env = make("ISACMarket-Overbooking-v0")
    env.reset(seed=seed)
    done, period = False, 0
    while not done:
        action = (_random_action(env, rng) if period % 2 == 0 else
                  rng.choice([-1.0, 1.0], size=env.action_space.shape).astype(np.float32))
        _, _, terminated, truncated, _ = env.step(action)
        check_episode(env.unwrapped.market)  # this period's signing and transactions
        done, period = terminated or truncated, period + 1
    assert period == 3


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
@pytest.mark.parametrize("bad", ["nan", "inf", "shape", "bounds"])
def test_bad_actions_raise(env_id: str, bad: str) -> None:
    env = make(env_id)
    env.reset(seed=0)
    space = env.action_space
    good = np.asarray(space.sample(), dtype=np.float64)
    action = {"nan": np.where(np.arange(good.size) == 0, np.nan, good),
              "inf": np.where(np.arange(good.size) == 0, np.inf, good),
              "shape": np.append(good, 0.0),
              "bounds": good + 1000.0}[bad]
    with pytest.raises(ValueError, match="action"):
        env.step(action)


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
def test_step_after_termination_raises(env_id: str) -> None:
    env = make(env_id)
    rollout(env, 0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
def test_bad_kwargs_name_the_key(env_id: str) -> None:
    with pytest.raises(ValueError, match="n_muss"):
        gym.make(env_id, n_muss=3)
    with pytest.raises(ValueError, match="reward"):
        gym.make(env_id, reward="profit")
    with pytest.raises(ValueError, match="bandwith"):
        gym.make(env_id, market_overrides={"bandwith": 1.0})


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
def test_render_modes(env_id: str) -> None:
    """Both modes give a frame after reset and after every step."""
    for mode in ("ansi", "rgb_array"):
        env = make(env_id, render_mode=mode)
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        frames, done = [env.render()], False
        while not done:
            _, _, terminated, truncated, _ = env.step(_random_action(env, rng))
            frames.append(env.render())
            done = terminated or truncated
        for frame in frames:
            if mode == "ansi":
                assert isinstance(frame, str) and "BS 0" in frame
            else:
                assert isinstance(frame, np.ndarray)
                assert frame.shape == (FRAME_SIZE_PX[1], FRAME_SIZE_PX[0], 3)
                assert frame.dtype == np.uint8
        assert not np.array_equal(frames[0], frames[-1])  # contracts and absences drawn


@pytest.mark.parametrize("seed", range(3))
def test_frame_mu_states_follow_the_last_transaction(seed: int) -> None:
    """What the frame colours each MU by: absent exactly when not present; served by its
    contract or online exactly as the transaction's allocations say."""
    market = ime.make_market("frbank", n_mus=15, n_transactions=2, seed=seed)
    assert set(mu_states(market)) == {"no contract"}
    market.sign()
    held = set(market.contracts.client[market.contracts.client < 15].tolist())
    assert [s == "contracted" for s in mu_states(market)] == [i in held for i in range(15)]
    for _ in range(2):
        tx = market.transact()
        states = mu_states(market)
        comm = tx.alloc_client < 15
        for i, state in enumerate(states):
            assert (state == "absent") == (not tx.mu_present[i])
            assert (state == "online") == bool(np.any(comm & tx.alloc_online
                                                      & (tx.alloc_client == i)))
            assert (state == "contracted") == bool(np.any(comm & ~tx.alloc_online
                                                          & (tx.alloc_client == i)))


def test_utility_reward_is_focal_utility() -> None:
    env = make("ISACMarket-Bidding-v0", reward="utility", reward_scale=1.0)
    rewards, _ = rollout(env, 3, FRBankBiddingPolicy())
    market = env.unwrapped.market
    focal = env.unwrapped.focal
    own = sum(tx.client_value[focal] - tx.client_paid[focal] + tx.client_received[focal]
              for tx in market.transactions)
    assert sum(rewards) == pytest.approx(own)


def test_ranked_slot_order_puts_the_rule_first_and_checks() -> None:
    env = make("ISACMarket-Bidding-v0", slot_order="ranked")
    check_env(env.unwrapped)
    fixed = make("ISACMarket-Bidding-v0")
    obs, info = env.reset(seed=5)
    obs_fixed, info_fixed = fixed.reset(seed=5)
    n_slots = env.unwrapped.n_slots
    decisions = 0
    done = False
    while not done:
        # same market state, same slot features, only re-ordered: slot 0 is the rule's choice
        if info["rule_slot"] < n_slots:
            decisions += 1
            assert info["rule_slot"] == 0 and info["action_mask"][0]
        rows = obs[:-6].reshape(n_slots, -1)
        rows_fixed = obs_fixed[:-6].reshape(n_slots, -1)
        assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, rows_fixed.tolist()))
        assert info["action_mask"].sum() == info_fixed["action_mask"].sum()
        # a non-rule choice: the second-ranked slot, or its position in the fixed order
        second = 1 if info["action_mask"][1] else n_slots
        view = env.unwrapped._view
        fixed_slot = int(view[second]) if second < n_slots else n_slots
        obs, _, done, _, info = env.step(np.array([second, 2]))
        obs_fixed, _, done_fixed, _, info_fixed = fixed.step(np.array([fixed_slot, 2]))
        assert done == done_fixed
    assert decisions > 0
    assert ([tx.social_welfare for tx in env.unwrapped.market.transactions]
            == [tx.social_welfare for tx in fixed.unwrapped.market.transactions])
    with pytest.raises(ValueError, match="slot_order"):
        make("ISACMarket-Bidding-v0", slot_order="sorted")


@pytest.mark.parametrize("reward", ["social_welfare", "utility"])
@pytest.mark.parametrize("env_id", ime.ENV_IDS)
def test_default_rewards_are_order_one(env_id: str, reward: str) -> None:
    """Without ``reward_scale`` the rewards are the raw ones over a constant of the episode's
    market (the most a transaction can deliver; the focal client's v* for its utility), so
    they are O(1) at any market size and the best policy is the same."""
    policy = FRBankBiddingPolicy() if env_id == "ISACMarket-Bidding-v0" else \
        FixedOverbookingPolicy(0.2)
    for n_mus in (10, 50):
        scaled, _ = rollout(make(env_id, n_mus=n_mus, reward=reward), 1, policy)
        env = make(env_id, n_mus=n_mus, reward=reward, reward_scale=1.0)
        raw, _ = rollout(env, 1, policy)
        inner = env.unwrapped
        book = inner.market.book
        if env_id == "ISACMarket-Bidding-v0":
            scale = inner.value_scale if reward == "utility" else book.best_values().sum()
        else:  # the first period's market (sensing values follow the drifting participation)
            scale = 1.0 / inner._reward_factor
            first = ime.make_market("frbank", n_mus=n_mus, n_transactions=3, seed=1)
            assert scale == 3 * first.book.best_values().sum()
            assert book.best_values().sum() != first.book.best_values().sum()
        assert np.allclose(scaled, np.asarray(raw) / scale, rtol=1e-12, atol=0)
        # a step's reward covers up to all 3 transactions (Bidding-v0) or one period
        most = 3.0 if env_id == "ISACMarket-Bidding-v0" else 1.0
        assert max(abs(r) for r in scaled) <= most and max(abs(r) for r in raw) > 5
        assert sum(scaled) > 0


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
def test_the_preset_size_is_the_default(env_id: str) -> None:
    """A preset's own number of MUs unless ``n_mus`` is given (EUA: 140, synthetic: 50)."""
    extra = {"n_transactions": 1} if env_id == "ISACMarket-Bidding-v0" else {}
    for scenario, n_mus in (("eua-melbourne", 140), ("paper-synthetic", 50)):
        env = gym.make(env_id, scenario=scenario, **extra)
        assert env.unwrapped.config.scenario.n_mus == n_mus == ime.PRESETS[
            scenario].config.n_mus
    assert gym.make(env_id, scenario="eua-melbourne", n_mus=30).unwrapped.config.scenario.n_mus \
        == 30


@pytest.mark.parametrize("env_id", ime.ENV_IDS)
def test_reset_refuses_options(env_id: str) -> None:
    env = make(env_id)
    env.reset(seed=0, options={})
    with pytest.raises(ValueError, match="focal_mu"):
        env.reset(seed=0, options={"focal_mu": 3})


def test_maskable_ppo_learns_on_gym_make_output() -> None:
    """MaskablePPO finds ``action_masks`` through gym.make's wrappers with no extra code (by
    hand: ``env.unwrapped.action_masks()`` or ``env.get_wrapper_attr("action_masks")()``)."""
    sb3_contrib = pytest.importorskip("sb3_contrib")
    env = make("ISACMarket-Bidding-v0")
    env.reset(seed=0)
    assert np.array_equal(env.get_wrapper_attr("action_masks")(),
                          env.unwrapped.action_masks())
    model = sb3_contrib.MaskablePPO("MlpPolicy", env, n_steps=32, batch_size=32, seed=0)
    model.learn(64)
    assert model.num_timesteps >= 64
