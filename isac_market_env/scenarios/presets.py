"""Named scenario presets: the paper's ``paper-synthetic``, ``paper-synthetic-7bs`` and
``eua-melbourne``, and the other seeds' set-ups ``cdna-synthetic`` (seed 001) and
``dfront-synthetic`` (seed 003), docs/mechanisms.md.

A preset may also set physics and market fields (the other seeds' channel and noise models,
D-FRONT's conflict model); a user's overrides apply on top of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
    """A scenario name, its default config and how to build it (``physics`` / ``market``:
    the preset's own PhysicsConfig / MarketConfig field values)."""

    name: str
    config: ScenarioConfig
    description: str
    needs_eua: bool = False
    physics: Mapping[str, Any] = field(default_factory=dict)
    market: Mapping[str, Any] = field(default_factory=dict)


# the other seeds' markets have no sensing demand: requirements above the accuracy cap
# (PhysicsConfig.sensing_accuracy_cap_per_m) leave every sensing request without a solution
NO_SENSING = (1e6, 1e6)


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
    # seed 001 Sec. VII-A/B: 5 sellers, 10 buyers, 1 km x 1 km, path loss beta d^-4 with
    # beta = 62.5 (102.0 dB at 1 km), noise 3.34e-20 W/Hz, availability in (0.5, 1], B = 5
    # channels per seller (of 1.8 MHz), demands of 1-5 channels
    "cdna-synthetic": ScenarioPreset(
        "cdna-synthetic",
        ScenarioConfig(n_bss=5, n_mus=10, n_targets=1, bs_bandwidth_range_mhz=(9.0, 9.0),
                       participation_range=(0.5, 1.0), request_subchannels_range=(10, 50),
                       sensing_requirement_range_per_m=NO_SENSING),
        "Seed 001 (CDNA) set-up: 5 BSs, 10 MUs, 5 channels per BS, path-loss exponent 4",
        physics={"path_loss_at_1km_db": 102.04, "path_loss_slope_db_per_decade": 40.0,
                 "noise_psd_dbm_per_hz": -164.76, "noise_figure_db": 0.0}),
    # seed 003 Sec. V: 20 SUs, 2 (or 5) PUs, 1 km x 1 km, gamma d^-4 with gamma = 3.90625
    # (114.1 dB at 1 km), sigma^2 = 1e-10 W over a 12.5 MHz band, bands of 10-15 MHz that a
    # client needs (almost) whole, interference range R_I = 500 m
    "dfront-synthetic": ScenarioPreset(
        "dfront-synthetic",
        ScenarioConfig(n_bss=2, n_mus=20, n_targets=1, bs_bandwidth_range_mhz=(10.0, 15.0),
                       request_subchannels_range=(50, 55), request_power_range_w=(0.1, 1.0),
                       sensing_requirement_range_per_m=NO_SENSING),
        "Seed 003 (D-FRONT) set-up: 2 BSs, 20 MUs, 10-15 MHz bands, R_I = 500 m",
        physics={"path_loss_at_1km_db": 114.08, "path_loss_slope_db_per_decade": 40.0,
                 "noise_psd_dbm_per_hz": -140.97, "noise_figure_db": 0.0},
        market={"reuse_conflict": "distance", "reuse_interference_range_m": 500.0}),
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
