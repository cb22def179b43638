"""Rule-based policies for the environments, with stable-baselines3's ``predict`` signature."""

from baselines.policies import (
    FixedOverbookingPolicy,
    FRBankBiddingPolicy,
    NewsvendorOverbookingPolicy,
    make_policy,
)

__all__ = [
    "FRBankBiddingPolicy",
    "FixedOverbookingPolicy",
    "NewsvendorOverbookingPolicy",
    "make_policy",
]
