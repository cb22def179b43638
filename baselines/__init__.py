"""The rule-based policies, for scripts run from a checkout.

They are installed with the package as ``isac_market_env.baselines`` (``isac-market evaluate``
loads them); this folder is not installed, so no generic top-level name is claimed.
"""

from isac_market_env.baselines import *  # noqa: F403
from isac_market_env.baselines import __all__  # noqa: F401
