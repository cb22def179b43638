"""Make the bidding env, reset, and step it with FRBank's own bidding rule."""

import gymnasium as gym

import isac_market_env  # noqa: F401  (registers the environments)
from isac_market_env.baselines import FRBankBiddingPolicy

env = gym.make("ISACMarket-Bidding-v0", n_mus=20, n_transactions=5, render_mode="ansi")
policy = FRBankBiddingPolicy()
obs, info = env.reset(seed=0)
episode_return, done = 0.0, False
while not done:
    action, _ = policy.predict(obs, deterministic=True)
    obs, reward, terminated, truncated, info = env.step(action)
    episode_return += reward
    done = terminated or truncated
print(env.render())
print(f"return (= episode social welfare): {episode_return:.2f}")
