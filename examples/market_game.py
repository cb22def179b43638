"""The market as a game (PettingZoo): every client and BS an agent.

Plays the same market twice: every agent following FRBank's rule (which is
``simulate("frbank")``), and the even-numbered MU clients bidding at random among their allowed
actions (everyone else by the rule), then compares SW and who gains. Needs the ``marl`` extra.
"""

import os

import numpy as np

from isac_market_env.envs.multiagent import parallel_env

SMALL = os.environ.get("ISAC_MARKET_EXAMPLES_SMALL") == "1"
KWARGS = {"n_mus": 10 if SMALL else 50, "n_transactions": 2 if SMALL else 10,
          "bs_agents": True, "n_periods": 1, "reward": "utility", "reward_scale": 1.0}


def play(random_mus: set[str], even: set[str], seed: int = 0) -> dict[str, float]:
    env = parallel_env(**KWARGS)
    rng = np.random.default_rng(seed)
    obs, infos = env.reset(seed=seed)
    returns: dict[str, float] = dict.fromkeys(env.agents, 0.0)
    while env.agents:
        actions = {}
        for agent in env.agents:
            mask = obs[agent]["action_mask"]
            random_choice = agent in random_mus and mask.sum() > 1
            actions[agent] = (int(rng.choice(np.flatnonzero(mask))) if random_choice
                              else infos[agent]["rule_action"])
        obs, rewards, _, _, infos = env.step(actions)
        for agent, reward in rewards.items():
            returns[agent] += reward
    summary = env.market.result().summary()
    return {"social_welfare": summary["social_welfare"],
            "even_mus": sum(returns[a] for a in even),
            "odd_mus": sum(v for a, v in returns.items() if a.startswith("mu_") and a not in even),
            "bss": sum(v for a, v in returns.items() if a.startswith("bs_"))}


even = {f"mu_{i}" for i in range(0, KWARGS["n_mus"], 2)}
for label, row in (("everyone by the rule", play(set(), even)),
                   ("the even MUs at random", play(even, even))):
    print(f"{label:24s} SW {row['social_welfare']:9.1f}; utility of the even MUs "
          f"{row['even_mus']:8.1f}, odd MUs {row['odd_mus']:8.1f}, BSs {row['bss']:8.1f}")
