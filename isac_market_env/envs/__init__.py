"""Gymnasium environments (the only layer that imports gymnasium)."""

from __future__ import annotations

import gymnasium as gym

from isac_market_env.envs.bidding import ISACMarketBiddingEnv
from isac_market_env.envs.overbooking import ISACMarketOverbookingEnv

ENV_IDS = ("ISACMarket-Bidding-v0", "ISACMarket-Overbooking-v0")


def register_envs() -> None:
    """Register both ids with gymnasium (idempotent)."""
    entries = {"ISACMarket-Bidding-v0": "isac_market_env.envs.bidding:ISACMarketBiddingEnv",
               "ISACMarket-Overbooking-v0":
                   "isac_market_env.envs.overbooking:ISACMarketOverbookingEnv"}
    for env_id, entry in entries.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry)


__all__ = ["ENV_IDS", "ISACMarketBiddingEnv", "ISACMarketOverbookingEnv", "register_envs"]
