"""The multi-agent market (PettingZoo): the rule reproduces simulate, PettingZoo's API and seed
tests, pickling, bad input, and the market's rules under random masked agents."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from conftest import without_runtimes
from test_market import check_episode

import isac_market_env as ime

pytest.importorskip("pettingzoo")
from pettingzoo.test import (
    api_test,
    parallel_api_test,
    parallel_seed_test,
    seed_test,
)

from isac_market_env.envs.multiagent import (
    BS_FEATURE_NAMES,
    CLIENT_GLOBAL_FEATURE_NAMES,
    env,
    parallel_env,
)

SMALL = {"n_mus": 8, "n_transactions": 2}


def same_episode(ours: object, reference: object) -> bool:
    """Equal records (the config differs only in how the rates are spelt: per BS here)."""
    a, b = (without_runtimes(r.to_dict()) for r in (ours, reference))  # type: ignore[attr-defined]
    a.pop("config"), b.pop("config")  # type: ignore[union-attr]
    return a == b


def play_rule(ma: object, seed: int) -> tuple[dict[str, float], int]:
    """Play an episode with every agent's ``rule_action``; return the raw returns and steps."""
    obs, infos = ma.reset(seed=seed)  # type: ignore[attr-defined]
    returns = dict.fromkeys(ma.agents, 0.0)  # type: ignore[attr-defined]
    steps = 0
    while ma.agents:  # type: ignore[attr-defined]
        actions = {a: infos[a]["rule_action"] for a in ma.agents}  # type: ignore[attr-defined]
        for a, action in actions.items():
            assert obs[a]["action_mask"][action] == 1  # the rule's action is always allowed
        # no step without a decision: rounds nobody may propose in are played in between
        assert any(obs[a]["action_mask"].sum() > 1 for a in ma.agents)  # type: ignore
        obs, _, _, _, infos = ma.step(actions)  # type: ignore[attr-defined]
        for a, info in infos.items():
            returns[a] += info["raw_reward"]
        steps += 1
    return returns, steps


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("bs_agents", [False, True])
def test_rule_actions_reproduce_simulate(seed: int, bs_agents: bool) -> None:
    """With every agent playing ``rule_action`` the episode is ``simulate("frbank", seed=s)``
    bit for bit (BS agents: the rule keeps the configured rate 0.2); the utility returns are
    the clients' and BSs' realised utilities and add up to the SW."""
    kwargs = dict(SMALL, bs_agents=bs_agents, **({"n_periods": 1} if bs_agents else {}))
    ma = parallel_env(**kwargs)
    returns, steps = play_rule(ma, seed)
    reference = ime.simulate("frbank", seed=seed, **SMALL)
    assert same_episode(ma.market.result(), reference)
    assert steps >= 1 + bs_agents
    summary = reference.summary()
    mu = sum(v for a, v in returns.items() if not a.startswith("bs_"))
    assert mu == pytest.approx(summary["mu_utility"], rel=1e-9)
    if bs_agents:
        bs = sum(v for a, v in returns.items() if a.startswith("bs_"))
        assert bs == pytest.approx(summary["bs_utility"], rel=1e-9)
        assert mu + bs == pytest.approx(summary["social_welfare"], rel=1e-9)


def test_rule_actions_reproduce_simulate_on_eua(eua_dir: object) -> None:
    kwargs = {"scenario": "eua-melbourne", "n_mus": 20, "n_transactions": 2,
              "eua_directory": eua_dir}
    for seed in (0, 1):
        ma = parallel_env(**kwargs)
        play_rule(ma, seed)
        reference = ime.simulate("frbank", seed=seed, **kwargs)  # type: ignore[arg-type]
        assert same_episode(ma.market.result(), reference)


def test_rule_reproduces_simulate_at_the_paper_size() -> None:
    ma = parallel_env(n_mus=50, n_transactions=3)
    _, steps = play_rule(ma, 3)
    reference = ime.simulate("frbank", n_mus=50, n_transactions=3, seed=3)
    assert [tx.social_welfare for tx in ma.market.transactions] == [
        tx.social_welfare for tx in reference.transactions]
    assert steps > 100


def test_pettingzoo_api_and_seed_tests() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the API test passes reset an option (we warn)
        parallel_api_test(parallel_env(**SMALL), num_cycles=400)
        parallel_api_test(parallel_env(**SMALL, bs_agents=True, n_periods=2), num_cycles=400)
        api_test(env(**SMALL), num_cycles=200)
    parallel_seed_test(lambda: parallel_env(**SMALL))
    seed_test(lambda: env(**SMALL), num_cycles=50)


def test_spaces_masks_and_named_features() -> None:
    ma = parallel_env(**SMALL, bs_agents=True, n_periods=2)
    obs, infos = ma.reset(seed=4)
    assert set(ma.agents) <= set(ma.possible_agents)
    assert [a for a in ma.agents if a.startswith("bs_")] == [f"bs_{j}" for j in range(ma.n_bss)]
    for agent in ma.agents:
        space = ma.observation_space(agent)
        assert space.contains(obs[agent]), agent
        assert len(ma.observation_features(agent)) == space["observation"].shape[0]
    # the first step of a period is the BSs': clients may only pass, BSs may set any rate
    assert all(obs[a]["action_mask"].sum() == 1 for a in ma.agents if not a.startswith("bs_"))
    assert all(obs[a]["action_mask"].all() for a in ma.agents if a.startswith("bs_"))
    assert infos["bs_0"]["rule_action"] != 0  # 0.2 is a level: the rule sets it
    obs, *_ = ma.step({a: infos[a]["rule_action"] for a in ma.agents})
    assert all(obs[a]["action_mask"].sum() == 1 for a in ma.agents if a.startswith("bs_"))
    deciding = [a for a in ma.agents if obs[a]["action_mask"].sum() > 1]
    assert deciding and all(obs[a]["observation"][-1] == 1.0 for a in deciding)
    assert ma.observation_features("mu_0")[-len(CLIENT_GLOBAL_FEATURE_NAMES):] == \
        CLIENT_GLOBAL_FEATURE_NAMES
    assert ma.observation_features("bs_0") == BS_FEATURE_NAMES


def test_pickling_mid_episode_continues_identically() -> None:
    ma = parallel_env(**SMALL, reward="net_welfare")
    obs, infos = ma.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(3):
        obs, _, _, _, infos = ma.step({a: infos[a]["rule_action"] for a in ma.agents})
    copy = pickle.loads(pickle.dumps(ma))
    while ma.agents:
        actions = {a: int(ma.action_space(a).sample(mask=obs[a]["action_mask"]))
                   if rng.random() < 0.3 else infos[a]["rule_action"] for a in ma.agents}
        obs, rewards, *_, infos = ma.step(actions)
        obs2, rewards2, *_ = copy.step(actions)
        assert rewards == rewards2
        assert all(np.array_equal(obs[a]["observation"], obs2[a]["observation"]) for a in obs)
    assert not copy.agents


@pytest.mark.parametrize("seed", range(4))
def test_random_masked_agents_keep_the_market_rules(seed: int) -> None:
    """Random masked clients (any solution, any bid level) and random BS rates: every period
    keeps IR, capacities, risk limits and the SW identity, and the social-welfare reward sums
    to the SW of every period."""
    ma = parallel_env(n_mus=(6, 12)[seed % 2], n_transactions=2, bs_agents=True, n_periods=2,
                      reward="social_welfare", reward_scale=1.0)
    obs, infos = ma.reset(seed=seed)
    rng = np.random.default_rng(seed)
    total, markets = 0.0, []
    while ma.agents:
        actions = {a: int(ma.action_space(a).sample(mask=obs[a]["action_mask"]))
                   if rng.random() < 0.5 else infos[a]["rule_action"] for a in ma.agents}
        obs, rewards, *_ = ma.step(actions)
        total += rewards.get("mu_0", 0.0)
        if ma.market is not None and (not markets or markets[-1] is not ma.market):
            markets.append(ma.market)
    assert len(markets) == 2
    for market in markets:
        check_episode(market)
    assert total == pytest.approx(sum(tx.social_welfare for m in markets
                                      for tx in m.transactions), rel=1e-9)


def test_net_welfare_prices_the_overhead() -> None:
    """net_welfare = SW - price x (ECIBC of signing and transactions); with the price 0 it is
    the SW."""
    priced = parallel_env(**SMALL, reward="net_welfare", reward_scale=1.0,
                          market_overrides={"overhead_price_per_joule": 0.5,
                                            "overhead_price_per_ms": 0.01})
    returns, _ = play_rule(priced, 0)
    s = ime.simulate("frbank", seed=0, **SMALL).summary()
    assert returns["mu_0"] == pytest.approx(
        s["social_welfare"] - 0.5 * s["ecibc_j"] - 0.01 * s["dibc_ms"], rel=1e-9)
    free = parallel_env(**SMALL, reward="net_welfare", reward_scale=1.0,
                        market_overrides={"overhead_price_per_joule": 0.0})
    assert play_rule(free, 0)[0]["mu_0"] == pytest.approx(s["social_welfare"], rel=1e-12)


def test_bad_input_raises_clear_errors() -> None:
    ma = parallel_env(**SMALL)
    ma.reset(seed=0)
    n = ma.action_space("mu_0").n
    for bad, match in ((n, "mu_0"), (-1, "mu_0"), (1.5, "mu_0"), ("x", "mu_0"),
                       (np.nan, "mu_0"), ([1, 2], "mu_0")):
        with pytest.raises(ValueError, match=match):
            ma.step({"mu_0": bad})
    with pytest.raises(ValueError, match="unknown agent"):
        ma.step({"mu_999": 0})
    for kwargs, match in (({"bogus": 1}, "bogus"), ({"reward": "x"}, "reward"),
                          ({"n_bid_levels": 1}, "n_bid_levels"),
                          ({"bs_agents": "yes"}, "bs_agents"),
                          ({"mechanism": "greedy"}, "mechanism"),
                          ({"mechanism": "cononline"}, "frbank-nor"),
                          ({"overbooking_levels": [-0.1]}, "overbooking_levels")):
        with pytest.raises((ValueError, TypeError), match=match):
            parallel_env(**SMALL, **kwargs)
    with pytest.warns(UserWarning, match="options"):
        ma.reset(seed=0, options={"x": 1})
    while ma.agents:
        ma.step({})  # everyone passes: the episode still ends
    with pytest.raises(RuntimeError, match="reset"):
        ma.step({})


def test_masked_out_action_is_a_pass_and_renders() -> None:
    ma = parallel_env(**SMALL, render_mode="rgb_array")
    obs, _ = ma.reset(seed=0)
    frame = ma.render()
    assert frame.shape == (540, 760, 3)
    agent = next(a for a in ma.agents if not obs[a]["action_mask"].all())
    forbidden = int(np.flatnonzero(obs[agent]["action_mask"] == 0)[0])
    passing = parallel_env(**SMALL)
    passing.reset(seed=0)
    a = ma.step({agent: forbidden})
    b = passing.step({agent: 0})
    assert all(np.array_equal(a[0][k]["observation"], b[0][k]["observation"]) for k in a[0])


def test_evaluate_the_market_game_rule_and_fixed_rates() -> None:
    """``isac-market evaluate`` on the game: the rule's row is simulate's (SW, utilities,
    SW / bound <= 1); fixed:0.2 is the rule's rate, so the same episode; a rate not among the
    levels and fixed rates without BS agents are refused."""
    from isac_market_env.evaluate import evaluate_market_game, load_market_policies

    kwargs = {**SMALL, "bs_agents": True, "n_periods": 1}
    rule = evaluate_market_game(load_market_policies("frbank", kwargs), [0, 1], kwargs)
    fixed = evaluate_market_game(load_market_policies("fixed:0.2", kwargs), [0, 1], kwargs)
    assert rule == fixed
    for row, seed in zip(rule, [0, 1], strict=True):
        s = ime.simulate("frbank", seed=seed, **SMALL).summary()
        assert row["social_welfare"] == s["social_welfare"]
        assert row["mu_utility"] + row["bs_utility"] == pytest.approx(s["social_welfare"])
        assert 0 < row["sw_to_bound"] <= 1 + 1e-9
        assert row["mu_jump_bids"] == 0.0 and row["mu_dropouts"] == 0.0  # the rule's bids
    with pytest.raises(ValueError, match="overbooking_levels"):
        load_market_policies("fixed:0.25", kwargs)
    with pytest.raises(ValueError, match="bs_agents"):
        load_market_policies("fixed:0.2", SMALL)


def test_overbooking_v0_offers_net_welfare() -> None:
    import gymnasium as gym

    kwargs = {"n_mus": 8, "n_periods": 1, "transactions_per_period": 2, "reward_scale": 1.0,
              "market_overrides": {"overhead_price_per_joule": 0.5}}
    sw = gym.make("ISACMarket-Overbooking-v0", **kwargs)
    net = gym.make("ISACMarket-Overbooking-v0", reward="net_welfare", **kwargs)
    sw.reset(seed=0)
    net.reset(seed=0)
    action = np.zeros(sw.action_space.shape, dtype=np.float32)
    r_sw, *_, info = sw.step(action)[1:]
    r_net = net.step(action)[1]
    assert r_net == pytest.approx(r_sw - 0.5 * info["ecibc_j"], rel=1e-9) and r_net < r_sw


def test_stubborn_low_bidders_cannot_stall_the_auction() -> None:
    """Every client always proposing its first allowed solution at bid level 1, whatever is
    rejected: the auction stays ascending (a rejected price rises), so every matching ends
    long before its round cap and the market keeps its rules."""
    ma = parallel_env(**SMALL, market_overrides={"max_rounds": 2000})
    obs, _ = ma.reset(seed=1)
    steps = 0
    while ma.agents:
        actions = {}
        for agent in ma.agents:
            allowed = np.flatnonzero(obs[agent]["action_mask"])
            if allowed.size > 1:
                actions[agent] = int(allowed[1]) + 1 if obs[agent]["action_mask"][
                    allowed[1] + 1] else int(allowed[1])  # level 1 of the first slot
        obs, *_ = ma.step(actions)
        steps += 1
    rounds = ma.market.signing.rounds + sum(tx.online_rounds for tx in ma.market.transactions)
    assert steps < 500 and rounds < 500 and ma.market.signing.converged
    check_episode(ma.market)


def test_clients_by_rule_in_compiled_runs_is_the_same_episode() -> None:
    """``step_clients_by_rule`` (the BS-only training path) plays the periods that stepping
    every round with ``rule_action`` plays: the same records, the same summed rewards."""
    kwargs = {**SMALL, "bs_agents": True, "n_periods": 2, "reward": "net_welfare"}
    stepped, fast = parallel_env(**kwargs), parallel_env(**kwargs)
    results = []
    for game, quick in ((stepped, False), (fast, True)):
        _, infos = game.reset(seed=3)
        total, markets = 0.0, []
        while game.agents:
            if quick and game.driver is not None:
                _, rewards, *_, infos = game.step_clients_by_rule()
            else:
                _, rewards, *_, infos = game.step({a: infos[a]["rule_action"]
                                                     for a in game.agents})
            total += rewards.get("bs_0", 0.0)
            if game.market is not None and (not markets or markets[-1] is not game.market):
                markets.append(game.market)
        results.append((total, markets))
    (total_a, markets_a), (total_b, markets_b) = results
    assert len(markets_a) == len(markets_b) == 2
    for a, b in zip(markets_a, markets_b, strict=True):
        assert same_episode(a.result(), b.result())
    assert total_a == pytest.approx(total_b, rel=1e-12)
    with pytest.raises(RuntimeError, match="period"):
        fast.step_clients_by_rule()


def test_random_agents_play_the_same_market_without_numba(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every round played from the env (random masked solutions and bid levels, jump bids
    included) is one compiled call (``_play_with_loops``); the numpy rounds give the same
    observations and rewards."""
    pytest.importorskip("numba")
    from conftest import numpy_only

    from isac_market_env.mechanisms.matching import load_compiled_matching

    def rollout() -> list[object]:
        ma = parallel_env(n_mus=32, n_transactions=2)
        obs, infos = ma.reset(seed=3)
        rng = np.random.default_rng(3)
        out: list[object] = []
        while ma.agents:
            actions = {a: int(rng.choice(np.flatnonzero(obs[a]["action_mask"])))
                       if rng.random() < 0.5 else infos[a]["rule_action"] for a in ma.agents}
            obs, rewards, *_ = ma.step(actions)
            out.append(sorted(rewards.items()))
            out.extend(obs[a]["observation"].tolist() for a in sorted(obs))
        return out

    assert load_compiled_matching()
    compiled = rollout()
    numpy_only(monkeypatch)
    assert rollout() == compiled
