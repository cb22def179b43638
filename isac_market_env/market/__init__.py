"""Market simulator: episode = offline signing phase + practical transactions."""

from isac_market_env.market.market import EpisodeStreams, Market, draw_participation
from isac_market_env.market.records import (
    ContractBook,
    EpisodeResult,
    SigningRecord,
    TransactionRecord,
)
from isac_market_env.market.variants import MECHANISMS, MechanismSpec, get_mechanism

__all__ = [
    "MECHANISMS",
    "ContractBook",
    "EpisodeResult",
    "EpisodeStreams",
    "Market",
    "MechanismSpec",
    "SigningRecord",
    "TransactionRecord",
    "draw_participation",
    "get_mechanism",
]
