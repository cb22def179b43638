"""Rule-based policies for the environments, with stable-baselines3's ``predict`` signature."""

from isac_market_env.baselines.policies import (
    FixedOverbookingPolicy,
    FRBankBiddingPolicy,
    NewsvendorOverbookingPolicy,
    make_policy,
    overbooking_action,
)

__all__ = [
    "FRBankBiddingPolicy",
    "FixedOverbookingPolicy",
    "NewsvendorOverbookingPolicy",
    "make_policy",
    "overbooking_action",
]
