"""Gymnasium environments (the only layer that imports gymnasium)."""

from __future__ import annotations

import gymnasium as gym

from isac_market_env.envs.bidding import ISACMarketBiddingEnv
from isac_market_env.envs.overbooking import ISACMarketOverbookingEnv

ENV_IDS = ("ISACMarket-Bidding-v0", "ISACMarket-Overbooking-v0")


def canonical_env_id(env_id: str) -> str:
    """``ISACMarket-...-v0`` from itself or its ``isac_market_env:ISACMarket-...-v0`` form (the
    form that makes ``gym.make`` import the package first, as a fresh worker process needs)."""
    module, sep, name = env_id.rpartition(":")
    if sep and module != "isac_market_env":
        raise ValueError(f"unknown env {env_id!r}: the module part must be isac_market_env")
    if name not in ENV_IDS:
        raise ValueError(f"unknown env {env_id!r}; choose one of {', '.join(ENV_IDS)} "
                         "(optionally as isac_market_env:ID)")
    return name


def register_envs() -> None:
    """Register both ids with gymnasium (idempotent)."""
    entries = {"ISACMarket-Bidding-v0": "isac_market_env.envs.bidding:ISACMarketBiddingEnv",
               "ISACMarket-Overbooking-v0":
                   "isac_market_env.envs.overbooking:ISACMarketOverbookingEnv"}
    for env_id, entry in entries.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry)


__all__ = ["ENV_IDS", "ISACMarketBiddingEnv", "ISACMarketOverbookingEnv", "canonical_env_id",
           "register_envs"]
