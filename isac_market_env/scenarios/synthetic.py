"""The paper's synthetic market (Sec. V): BSs, MUs and targets uniform in a square."""

from __future__ import annotations

import numpy as np

from isac_market_env.config import ScenarioConfig
from isac_market_env.scenarios.scenario import Scenario


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], size: int) -> np.ndarray:
    return rng.uniform(bounds[0], bounds[1], size)


def _integers(rng: np.random.Generator, bounds: tuple[int, int], size: int) -> np.ndarray:
    return rng.integers(bounds[0], bounds[1], size, endpoint=True).astype(np.int64)


def draw_mu_attributes(config: ScenarioConfig, n_mus: int,
                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Requirements, antennas, participation and target of ``n_mus`` MUs (paper Sec. V ranges)."""
    return {
        "mu_target": rng.integers(0, config.n_targets, n_mus).astype(np.int64),
        "mu_rate_requirement_mbps": _uniform(rng, config.rate_requirement_range_mbps, n_mus),
        "mu_sensing_requirement_per_m": _uniform(rng, config.sensing_requirement_range_per_m,
                                                 n_mus),
        "mu_rx_antennas": _integers(rng, config.mu_rx_antennas_range, n_mus),
        "mu_participation": _uniform(rng, config.participation_range, n_mus),
    }


def draw_bs_attributes(config: ScenarioConfig, n_bss: int,
                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Bandwidth (MHz -> Hz), power (dBW -> W) and antennas of ``n_bss`` BSs."""
    return {
        "bs_bandwidth_hz": _uniform(rng, config.bs_bandwidth_range_mhz, n_bss) * 1e6,
        "bs_power_w": 10.0 ** (_uniform(rng, config.bs_power_range_dbw, n_bss) / 10.0),
        "bs_tx_antennas": _integers(rng, config.bs_tx_antennas_range, n_bss),
    }


def synthetic_scenario(config: ScenarioConfig, rng: np.random.Generator,
                       name: str = "synthetic") -> Scenario:
    """Draw one synthetic market from ``config`` with the scenario stream ``rng``."""
    side = config.area_side_m
    bs_xy = rng.uniform(0.0, side, (config.n_bss, 2))
    mu_xy = rng.uniform(0.0, side, (config.n_mus, 2))
    target_xy = rng.uniform(0.0, side, (config.n_targets, 2))
    return Scenario(
        name=name, mu_xy_m=mu_xy, bs_xy_m=bs_xy, target_xy_m=target_xy,
        **draw_mu_attributes(config, config.n_mus, rng),
        **draw_bs_attributes(config, config.n_bss, rng),
    )
