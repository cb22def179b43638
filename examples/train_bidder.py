"""Train a PPO bidder for one MU and compare it with FRBank's bidding on held-out seeds.

A few thousand steps take a few minutes on a laptop CPU; see docs/training.md for longer runs.
Run from anywhere: it calls the training script of the checkout (``python -m train.ppo``) and
``isac-market evaluate``. ``ISAC_MARKET_EXAMPLES_SMALL=1`` runs a few hundred steps only
(how the test suite runs every example).
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from isac_market_env.cli import main as isac_market

CHECKOUT = Path(__file__).resolve().parents[1]


def main() -> None:
    small = os.environ.get("ISAC_MARKET_EXAMPLES_SMALL") == "1"
    config = {"n_mus": 12, "n_transactions": 4, "reward": "utility"}
    work = Path(tempfile.mkdtemp())
    (work / "env.json").write_text(json.dumps(config))
    steps, seeds = ("256", "2") if small else ("4000", "10")
    subprocess.run([sys.executable, "-m", "train.ppo", "--env", "ISACMarket-Bidding-v0",
                    "--timesteps", steps, "--n-envs", "2", "--n-steps", "64", "--no-progress",
                    "--config", str(work / "env.json"), "--out", str(work / "run")],
                   cwd=CHECKOUT, check=True)
    isac_market(["evaluate", "--policy", f"{work / 'run' / 'final_model.zip'},frbank",
                 "--env", "ISACMarket-Bidding-v0", "--seeds", seeds,
                 "--config", str(work / "env.json")])


if __name__ == "__main__":  # the training's subprocess workers import this file again
    main()
