"""Named scenario presets: ``paper-synthetic``, ``paper-synthetic-7bs``, ``eua-melbourne``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isac_market_env.config import ScenarioConfig, replace_from_mapping
from isac_market_env.scenarios.eua import SITES_FILE, eua_scenario
from isac_market_env.scenarios.scenario import Scenario
from isac_market_env.scenarios.synthetic import synthetic_scenario
from isac_market_env.validation import check_choice, check_mapping

EUA_DIR_ENV = "ISAC_MARKET_EUA_DIR"


@dataclass(frozen=True)
class ScenarioPreset:
    """A scenario name, its default config and how to build it."""

    name: str
    config: ScenarioConfig
    description: str
    needs_eua: bool = False


PRESETS: dict[str, ScenarioPreset] = {
    "paper-synthetic": ScenarioPreset(
        "paper-synthetic", ScenarioConfig(n_bss=5, n_mus=50, n_targets=8),
        "Paper Sec. V synthetic market: 5 BSs, |Q| = 8 targets, 1 km x 1 km"),
    "paper-synthetic-7bs": ScenarioPreset(
        "paper-synthetic-7bs", ScenarioConfig(n_bss=7, n_mus=50, n_targets=8),
        "Paper Fig. 2(d)-(f) market: 7 BSs, |Q| = 8 targets, 1 km x 1 km"),
    "eua-melbourne": ScenarioPreset(
        "eua-melbourne", ScenarioConfig(n_bss=11, n_mus=140, n_targets=28),
        "Paper Sec. V-C / Table I: EUA Melbourne CBD, 11 BSs, 140 MUs, 28 targets", True),
}


def default_eua_directory() -> Path:
    """``$ISAC_MARKET_EUA_DIR``, else the first ``shared/data/eua`` found beside the checkout."""
    env = os.environ.get(EUA_DIR_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    for candidate in (Path.cwd() / ".." / "shared" / "data" / "eua",
                      repo.parent / "shared" / "data" / "eua",
                      Path.cwd() / "shared" / "data" / "eua"):
        if (candidate / SITES_FILE).is_file():
            return candidate.resolve()
    return (repo.parent / "shared" / "data" / "eua").resolve()


def scenario_config(name: str, n_mus: int | None = None,
                    overrides: Mapping[str, Any] | None = None) -> ScenarioConfig:
    """The preset's config with ``n_mus`` and other field overrides applied (validated)."""
    check_choice("scenario", name, tuple(PRESETS))
    changes = check_mapping("scenario_overrides", overrides)
    if n_mus is not None:
        if "n_mus" in changes and changes["n_mus"] != n_mus:
            raise ValueError(f"n_mus is given twice: n_mus={n_mus!r} and scenario_overrides"
                             f"['n_mus']={changes['n_mus']!r}; pass one")
        changes["n_mus"] = n_mus  # validated with the other fields by ScenarioConfig
    return replace_from_mapping(PRESETS[name].config, changes, "scenario_overrides")


def build_scenario(name: str, config: ScenarioConfig, rng: np.random.Generator,
                   eua_directory: str | Path | None = None) -> Scenario:
    """Draw the named scenario with the scenario stream ``rng``."""
    preset = PRESETS[check_choice("scenario", name, tuple(PRESETS))]
    if preset.needs_eua:
        return eua_scenario(eua_directory or default_eua_directory(), config, rng, name)
    return synthetic_scenario(config, rng, name)


ScenarioBuilder = Callable[[ScenarioConfig, np.random.Generator], Scenario]
