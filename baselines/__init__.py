"""The rule-based policies, for scripts run from a checkout.

They are installed with the package as ``isac_market_env.baselines`` (``isac-market evaluate``
loads them); this folder is not installed, so no generic top-level name is claimed.
"""

from isac_market_env.baselines import (
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
