"""Market scenarios: the paper's synthetic markets and the EUA Melbourne CBD market."""

from isac_market_env.scenarios.eua import eua_scenario, load_eua_locations
from isac_market_env.scenarios.presets import (
    PRESETS,
    build_scenario,
    default_eua_directory,
    scenario_config,
)
from isac_market_env.scenarios.scenario import Scenario
from isac_market_env.scenarios.synthetic import synthetic_scenario

__all__ = [
    "PRESETS",
    "Scenario",
    "build_scenario",
    "default_eua_directory",
    "eua_scenario",
    "load_eua_locations",
    "scenario_config",
    "synthetic_scenario",
]
