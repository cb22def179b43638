"""Market simulator: episode = offline signing phase + practical transactions."""

from isac_market_env.market.market import EpisodeStreams, Market
from isac_market_env.market.random_models import draw_participation
from isac_market_env.market.records import (
    ContractBook,
    EpisodeResult,
    SigningRecord,
    TransactionRecord,
)
from isac_market_env.market.variants import MECHANISMS, MechanismSpec, get_mechanism
from isac_market_env.mechanisms.optimal import OPTIMAL_MIP_GAP, OPTIMAL_TIME_LIMIT_S

__all__ = [
    "MECHANISMS",
    "OPTIMAL_MIP_GAP",
    "OPTIMAL_TIME_LIMIT_S",
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
