"""Draw the envs' rgb_array frames to PNG files (needs matplotlib: the plot extra).

Writes bidding_signing.png (Bidding-v0 during the signing phase: tentative acceptances, the
focal MU) and overbooking_eua.png (Overbooking-v0 on the EUA Melbourne CBD market after one
contract period). ``python examples/render_frames.py [OUT_DIR]``; docs/frames/ holds its output.
"""

import sys
from pathlib import Path

import gymnasium as gym
import matplotlib.image as mpimg
import numpy as np

import isac_market_env  # noqa: F401  (registers the environments)
from isac_market_env.baselines import FixedOverbookingPolicy, FRBankBiddingPolicy


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
    out.mkdir(parents=True, exist_ok=True)
    env = gym.make("ISACMarket-Bidding-v0", n_mus=30, n_transactions=3, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    for _ in range(2):  # two of the focal MU's signing rounds
        obs = env.step(FRBankBiddingPolicy().predict(obs)[0])[0]
    mpimg.imsave(out / "bidding_signing.png", env.render())
    env = gym.make("ISACMarket-Overbooking-v0", scenario="eua-melbourne", n_periods=2,
                   transactions_per_period=2, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    env.step(FixedOverbookingPolicy(0.2).predict(obs)[0])
    frame = env.render()
    assert isinstance(frame, np.ndarray)
    mpimg.imsave(out / "overbooking_eua.png", frame)
    print(f"wrote {out / 'bidding_signing.png'} and {out / 'overbooking_eua.png'}")


if __name__ == "__main__":
    main()
