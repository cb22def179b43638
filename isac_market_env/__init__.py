"""isac-market-env: the FRBank ISAC resource market as a simulator and Gymnasium environments.

The core (physics, model, mechanisms, market, metrics, scenarios) is pure numpy/scipy; the
Gymnasium environments in ``isac_market_env.envs`` are registered on import.
"""

from isac_market_env.config import (
    EpisodeConfig,
    IsccConfig,
    MarketConfig,
    PhysicsConfig,
    ScenarioConfig,
)
from isac_market_env.market import MECHANISMS, EpisodeResult, Market, get_mechanism
from isac_market_env.market.driver import SequentialTransactionsWarning
from isac_market_env.market.iscc_market import ISCC_MECHANISMS, IsccResult
from isac_market_env.mechanisms._jit import PerformanceWarning
from isac_market_env.scenarios import PRESETS
from isac_market_env.simulate import (
    make_episode_config,
    make_iscc_market,
    make_market,
    simulate,
)

__version__ = "0.1.0"

from isac_market_env.envs import ENV_IDS, register_envs

register_envs()

__all__ = [
    "ENV_IDS",
    "ISCC_MECHANISMS",
    "MECHANISMS",
    "PRESETS",
    "EpisodeConfig",
    "EpisodeResult",
    "IsccConfig",
    "IsccResult",
    "Market",
    "MarketConfig",
    "PerformanceWarning",
    "PhysicsConfig",
    "ScenarioConfig",
    "SequentialTransactionsWarning",
    "__version__",
    "get_mechanism",
    "make_episode_config",
    "make_iscc_market",
    "make_market",
    "simulate",
]
