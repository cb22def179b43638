"""Train a PPO bidder for one MU and compare it with FRBank's bidding on held-out seeds.

A few thousand steps take minutes on a laptop CPU; see docs/training.md for longer runs.
"""

import json
import tempfile
from pathlib import Path

from isac_market_env.cli import main as isac_market
from train.ppo import main as train

config = {"n_mus": 12, "n_transactions": 4, "reward": "utility"}
work = Path(tempfile.mkdtemp())
(work / "env.json").write_text(json.dumps(config))
train(["--env", "ISACMarket-Bidding-v0", "--timesteps", "4000", "--n-envs", "2",
       "--config", str(work / "env.json"), "--out", str(work / "run")])
for policy in (str(work / "run" / "final_model.zip"), "frbank"):
    isac_market(["evaluate", "--policy", policy, "--env", "ISACMarket-Bidding-v0",
                 "--seeds", "10", "--config", str(work / "env.json")])
