"""One-call entry point: ``simulate(mechanism, scenario, n_mus, n_transactions, seed)``."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from isac_market_env.config import (
    EpisodeConfig,
    MarketConfig,
    PhysicsConfig,
    replace_from_mapping,
)
from isac_market_env.market.market import EpisodeStreams, Market
from isac_market_env.market.records import EpisodeResult
from isac_market_env.market.variants import MechanismSpec, get_mechanism
from isac_market_env.memory import check_memory
from isac_market_env.scenarios.presets import PRESETS, build_scenario, scenario_config
from isac_market_env.scenarios.scenario import Scenario
from isac_market_env.validation import check_path, check_seed


def make_episode_config(scenario: str = "paper-synthetic", n_mus: int | None = None,
                        n_transactions: int = 20,
                        scenario_overrides: Mapping[str, Any] | None = None,
                        market_overrides: Mapping[str, Any] | None = None,
                        physics_overrides: Mapping[str, Any] | None = None) -> EpisodeConfig:
    """Validated episode config from a preset name plus dict overrides (unknown keys raise);
    the overrides apply on top of the preset's own physics and market fields."""
    scenario_cfg = scenario_config(scenario, n_mus, scenario_overrides)
    preset = PRESETS[scenario]
    return EpisodeConfig(
        scenario=scenario_cfg,
        physics=replace_from_mapping(replace_from_mapping(PhysicsConfig(), preset.physics),
                                     physics_overrides, "physics_overrides"),
        market=replace_from_mapping(replace_from_mapping(MarketConfig(), preset.market),
                                    market_overrides, "market_overrides"),
        n_transactions=n_transactions,
    )


def make_market(mechanism: str | MechanismSpec = "frbank", scenario: str = "paper-synthetic",
                n_mus: int | None = None, n_transactions: int = 20, seed: int | None = 0,
                config: EpisodeConfig | None = None, eua_directory: str | Path | None = None,
                **overrides: Any) -> Market:
    """Build a fresh ``Market`` (signing not yet run) for a preset scenario and seed."""
    _check_overrides("make_market", overrides)
    spec = get_mechanism(mechanism)
    seed = check_seed("seed", seed)
    eua_directory = check_path("eua_directory", eua_directory)
    if config is None:
        config = make_episode_config(scenario, n_mus, n_transactions, **overrides)
    elif not isinstance(config, EpisodeConfig):
        raise TypeError(f"config must be an EpisodeConfig (make_episode_config builds one from "
                        f"a preset and override dicts), got {type(config).__name__}; or pass "
                        f"n_mus=... and scenario_overrides/market_overrides/physics_overrides")
    elif overrides or n_mus is not None:
        raise ValueError("pass either config or n_mus/overrides, not both")
    check_memory(config)
    streams = EpisodeStreams.from_seed(seed)
    built: Scenario = build_scenario(scenario, config.scenario, streams.scenario, eua_directory)
    return Market(built, config, spec, seed=seed, streams=streams)


def simulate(mechanism: str | MechanismSpec = "frbank", scenario: str = "paper-synthetic",
             n_mus: int | None = None, n_transactions: int = 20, seed: int | None = 0,
             config: EpisodeConfig | None = None, eua_directory: str | Path | None = None,
             **overrides: Any) -> EpisodeResult:
    """Run one episode of ``mechanism`` on a preset scenario and return its ``EpisodeResult``.

    ``overrides`` may hold ``scenario_overrides``, ``market_overrides`` and ``physics_overrides``
    dicts (validated; unknown keys raise ``ValueError``). The same seed gives the same scenario and
    participation draws for every mechanism, and bit-for-bit the same result (except wall-clock RT).
    """
    _check_overrides("simulate", overrides)
    return make_market(mechanism, scenario, n_mus, n_transactions, seed, config, eua_directory,
                       **overrides).run()


OVERRIDES = ("scenario_overrides", "market_overrides", "physics_overrides")


def _check_overrides(caller: str, overrides: dict[str, Any]) -> None:
    """An unknown keyword is a TypeError that names ``caller``, the closest valid argument and
    all of them (not an internal function's name)."""
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if not unknown:
        return
    valid = [*inspect.signature(make_market).parameters][:-1] + list(OVERRIDES)
    close = difflib.get_close_matches(unknown[0], valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}{hint}; "
                    f"valid arguments: {', '.join(valid)}")
