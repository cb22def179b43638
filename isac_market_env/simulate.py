"""One-call entry point: ``simulate(mechanism, scenario, n_mus, n_transactions, seed)``."""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from isac_market_env.config import (
    EpisodeConfig,
    IsccConfig,
    MarketConfig,
    PhysicsConfig,
    replace_from_mapping,
)
from isac_market_env.market.driver import SequentialTransactionsWarning
from isac_market_env.market.iscc_market import ISCC_MECHANISMS, IsccMarket, IsccResult
from isac_market_env.market.market import EpisodeStreams, Market
from isac_market_env.market.records import EpisodeResult
from isac_market_env.market.variants import MechanismSpec, get_mechanism
from isac_market_env.memory import check_iscc_memory, check_memory
from isac_market_env.scenarios.iscc import ISCC_PRESET
from isac_market_env.scenarios.presets import PRESETS, build_scenario, scenario_config
from isac_market_env.scenarios.scenario import Scenario
from isac_market_env.validation import check_integer, check_path, check_seed


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
    if isinstance(mechanism, str) and mechanism in ISCC_MECHANISMS:
        raise ValueError(f"{mechanism!r} is a mechanism of seed 004's ISCC market: build it with "
                         f"make_iscc_market, or simulate(..., scenario={ISCC_PRESET!r})")
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
             config: EpisodeConfig | IsccConfig | None = None,
             eua_directory: str | Path | None = None, workers: int = 1,
             **overrides: Any) -> EpisodeResult | IsccResult:
    """Run one episode of ``mechanism`` on a preset scenario and return its ``EpisodeResult``
    (an ``IsccResult`` for seed 004's ISCC mechanisms on ``iscc-perception``, whose rounds are
    the transactions and whose ``scenario_overrides`` are ``IsccConfig`` fields).

    ``overrides`` may hold ``scenario_overrides``, ``market_overrides`` and ``physics_overrides``
    dicts (validated; unknown keys raise ``ValueError``). The same seed gives the same scenario and
    participation draws for every mechanism, and bit-for-bit the same result (except wall-clock RT,
    and a selection that stops at its MILP time limit: ``IsccConfig.selection_time_limit_s``).

    ``workers`` > 1 plays the transactions' online steps, and makes the signing's rule
    proposals and the BSs' selections, on that many threads, with the same records
    (``EpisodeDriver.run``); the ``random`` and ``cooperative`` trades and the ISCC market (its
    world moves from round to round) run one after the other and warn.
    """
    _check_overrides("simulate", overrides)
    workers = check_integer("workers", workers, 1)
    if _is_iscc(mechanism, scenario):
        assert isinstance(mechanism, str) and not isinstance(config, EpisodeConfig)
        if workers > 1:
            warnings.warn("the ISCC market's rounds run one after the other (its world moves "
                          "from round to round)", SequentialTransactionsWarning, stacklevel=2)
        return make_iscc_market(mechanism, n_mus, n_transactions, seed, config,
                                **overrides).run()
    if isinstance(config, IsccConfig):
        raise TypeError(f"an IsccConfig is for scenario {ISCC_PRESET!r} and its mechanisms")
    return make_market(mechanism, scenario, n_mus, n_transactions, seed, config, eua_directory,
                       **overrides).run(workers)


def _is_iscc(mechanism: object, scenario: object) -> bool:
    """Whether a call asks for seed 004's ISCC market; a mechanism of one market on the other's
    scenario is a ValueError that says which go together."""
    iscc_mechanism = isinstance(mechanism, str) and mechanism in ISCC_MECHANISMS
    iscc_scenario = scenario == ISCC_PRESET
    if iscc_mechanism != iscc_scenario:
        raise ValueError(
            f"mechanism {mechanism!r} and scenario {scenario!r} belong to different markets: "
            f"the ISCC mechanisms ({', '.join(ISCC_MECHANISMS)}) run on scenario "
            f"{ISCC_PRESET!r} only, every other mechanism on the ISAC presets "
            f"({', '.join(PRESETS)})")
    return iscc_mechanism


def make_iscc_config(n_mus: int | None = None,
                     scenario_overrides: Mapping[str, Any] | None = None) -> IsccConfig:
    """Validated ISCC config (seed 004's Table 1 defaults) with ``n_mus`` clients and field
    overrides (unknown keys raise)."""
    config = replace_from_mapping(IsccConfig(), scenario_overrides, "scenario_overrides")
    if n_mus is not None:
        given = (scenario_overrides or {}).get("n_clients")
        if given is not None and given != n_mus:
            raise ValueError(f"the number of clients is given twice: n_mus={n_mus!r} and "
                             f"scenario_overrides['n_clients']={given!r}; pass one")
        config = replace_from_mapping(config, {"n_clients": n_mus}, "n_mus")
    return config


def make_iscc_market(mechanism: str = "iscc", n_mus: int | None = None,
                     n_transactions: int = 20, seed: int | None = 0,
                     config: IsccConfig | None = None, **overrides: Any) -> IsccMarket:
    """A fresh ISCC market (seed 004, docs/mechanisms.md): ``n_transactions`` rounds of
    ``n_mus`` clients (default 50); ``scenario_overrides`` are ``IsccConfig`` fields."""
    _check_overrides("make_iscc_market", overrides)
    for name in ("market_overrides", "physics_overrides"):
        if overrides.get(name):
            raise ValueError(f"the ISCC market takes scenario_overrides (IsccConfig fields) "
                             f"only, not {name}")
    seed = check_seed("seed", seed)
    n_rounds = check_integer("n_transactions", n_transactions, 1)
    if config is None:
        config = make_iscc_config(n_mus, overrides.get("scenario_overrides"))
    elif not isinstance(config, IsccConfig):
        raise TypeError(f"config must be an IsccConfig on scenario {ISCC_PRESET!r}, got "
                        f"{type(config).__name__}")
    elif n_mus is not None or overrides.get("scenario_overrides"):
        raise ValueError("pass either config or n_mus/scenario_overrides, not both")
    check_iscc_memory(config, n_rounds)
    return IsccMarket(config, mechanism, n_rounds, seed)


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
