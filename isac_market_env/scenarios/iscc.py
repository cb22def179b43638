"""The ISCC perception market of seed 004 (docs/mechanisms.md, Seed 004): vehicles (clients)
that sense targets with a camera and with ISAC wireless sensing, train a local model and
exchange models with an edge server (a BS), moving between communication rounds.

``IsccWorld`` holds the positions and draws each round (``next_round``): movement at up to
``max_speed_m_per_s`` for one CR, reflected at the area's edges (the seed samples clients and
targets anew every CR, its Fig. 4), and each client's participation. ``round_state`` turns a
round's positions into the per-client terms of the workload model: a (visual samples/s), b
(wireless samples per s per MHz), the quality of data Q, and per client and server the model
transfers' time-frequency need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from isac_market_env.config import IsccConfig

FloatArray = NDArray[np.float64]
SPEED_OF_LIGHT_M_PER_S = 299_792_458.0
MIN_DISTANCE_M = 1.0
ISCC_PRESET = "iscc-perception"
# the seed's Fig. 11 resource stocks, (time, frequency, computing) factors
SHORTAGES: dict[str, tuple[float, float, float]] = {
    "1:1:1": (1.0, 1.0, 1.0),
    "1/2:1/2:1/2": (0.5, 0.5, 0.5),
    "1/4:1/4:1/4": (0.25, 0.25, 0.25),
    "time 1/4:1/2:1/2": (0.25, 0.5, 0.5),
    "frequency 1/2:1/4:1/2": (0.5, 0.25, 0.5),
    "computing 1/2:1/2:1/4": (0.5, 0.5, 0.25),
}


def shortage(name: str) -> dict[str, float]:
    """The ``scenario_overrides`` of one of the seed's Fig. 11 resource stocks (``SHORTAGES``),
    e.g. ``simulate("iscc", "iscc-perception", scenario_overrides=shortage("1/4:1/4:1/4"))``."""
    if name not in SHORTAGES:
        raise ValueError(f"unknown resource stock {name!r}; choose one of {', '.join(SHORTAGES)}")
    t, f, c = SHORTAGES[name]
    return {"time_factor": t, "frequency_factor": f, "computing_factor": c}


def dbm_to_w(dbm: float) -> float:
    return float(10 ** ((dbm - 30.0) / 10.0))


def wavelength_m(config: IsccConfig) -> float:
    return SPEED_OF_LIGHT_M_PER_S / (config.carrier_ghz * 1e9)


def wireless_sensing_radius_m(config: IsccConfig) -> float:
    """Where a target's echo falls to the wireless-sensing sensitivity (monostatic radar
    equation, P lambda^2 sigma / ((4 pi)^3 d^4), at the client's power): about 389 m with
    the seed's 26 dBm, 28 GHz and -180 dB."""
    echo_at_1m = (dbm_to_w(config.client_tx_power_dbm) * wavelength_m(config) ** 2
                  * config.target_rcs_m2 / (4 * np.pi) ** 3)
    return float((echo_at_1m / 10 ** (config.wireless_sensing_sensitivity_dbw / 10)) ** 0.25)


def link_efficiency(distance_m: FloatArray, tx_power_w: float, config: IsccConfig
                    ) -> FloatArray:
    """log2(1 + SNR) (Mbit/s per MHz) of a free-space link at the carrier, the noise floor
    being the communication receiver's sensitivity."""
    d = np.maximum(distance_m, MIN_DISTANCE_M)
    received = tx_power_w * (wavelength_m(config) / (4 * np.pi * d)) ** 2
    return np.asarray(np.log2(1 + received / 10 ** (config.communication_sensitivity_dbw / 10)))


@dataclass(frozen=True, eq=False)
class RoundState:
    """One round's terms of the workload model (eq. A.3) and transfers, per client."""

    active: NDArray[np.bool_]
    visual_rate: FloatArray  # a: samples/s
    wireless_rate: FloatArray  # b: samples per s per MHz
    quality: FloatArray  # Q in [0, 1]
    download_mhz_s: FloatArray  # (clients, servers): global model / downlink efficiency
    upload_mhz_s: FloatArray  # (clients, servers)
    client_xy_m: FloatArray
    target_xy_m: FloatArray


class IsccWorld:
    """Clients, targets and servers of one episode, moving from round to round."""

    def __init__(self, config: IsccConfig, scenario_rng: np.random.Generator) -> None:
        self.config = config
        side = config.area_side_m
        self.client_xy_m = scenario_rng.uniform(0, side, (config.n_clients, 2))
        self.target_xy_m = scenario_rng.uniform(0, side, (config.n_targets, 2))
        self.target_type = scenario_rng.integers(0, config.n_target_types, config.n_targets)
        if config.n_servers == 1:
            self.server_xy_m = np.full((1, 2), side / 2)
        else:
            self.server_xy_m = scenario_rng.uniform(0, side, (config.n_servers, 2))
        self.participation = scenario_rng.uniform(*config.participation_range,
                                                  config.n_clients)
        self.wireless_radius_m = wireless_sensing_radius_m(config)
        self.rounds_drawn = 0

    def _move(self, xy: FloatArray, rng: np.random.Generator) -> FloatArray:
        c = self.config
        heading = rng.uniform(0, 2 * np.pi, len(xy))
        step = rng.uniform(0, c.max_speed_m_per_s * c.round_time_s, len(xy))
        moved = xy + step[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=1)
        side = c.area_side_m
        moved = np.abs(moved)  # reflect at 0 ...
        return np.asarray(side - np.abs(side - np.mod(moved, 2 * side)))  # ... and at the side

    def next_round(self, mobility_rng: np.random.Generator,
                   participation_rng: np.random.Generator) -> RoundState:
        """Move everybody for one CR (not before the first round) and draw participation."""
        if self.rounds_drawn:
            self.client_xy_m = self._move(self.client_xy_m, mobility_rng)
            self.target_xy_m = self._move(self.target_xy_m, mobility_rng)
        self.rounds_drawn += 1
        active = participation_rng.random(self.config.n_clients) < self.participation
        return self.round_state(active)

    def round_state(self, active: NDArray[np.bool_]) -> RoundState:
        c = self.config
        d = np.linalg.norm(self.client_xy_m[:, None, :] - self.target_xy_m[None, :, :], axis=2)
        visual = d <= c.visual_radius_m
        ring = (d > c.visual_radius_m) & (d <= self.wireless_radius_m)
        # each visual target gives target_sample_ratio samples per frame; each target in the
        # wireless ring log2(1 + echo / sensitivity) Mbit/s per MHz of echo data, one sample
        # per wireless_sample_mbit
        efficiency = np.log2(1 + (self.wireless_radius_m / np.maximum(d, MIN_DISTANCE_M)) ** 4)
        per_visual = c.camera_fps * c.target_sample_ratio
        per_wireless = np.where(ring, efficiency, 0.0) / c.wireless_sample_mbit
        a = visual.sum(axis=1) * per_visual
        b = per_wireless.sum(axis=1)
        # quality of data: 1 - total variation distance between the client's class mix (its
        # targets weighted by the samples they give at its full bandwidth) and the global mix
        weight = visual * per_visual + per_wireless * c.client_bandwidth_mhz * c.frequency_factor
        onehot = np.eye(c.n_target_types)[self.target_type]
        with np.errstate(invalid="ignore", over="ignore"):
            local = np.nan_to_num(weight @ onehot, posinf=0.0)
        total = local.sum(axis=1, keepdims=True)
        local = np.divide(local, total, out=np.zeros_like(local), where=total > 0)
        global_mix = onehot.mean(axis=0)
        quality = np.where(total[:, 0] > 0,
                           1 - 0.5 * np.abs(local - global_mix[None, :]).sum(axis=1), 0.0)
        to_server = np.linalg.norm(self.client_xy_m[:, None, :] - self.server_xy_m[None, :, :],
                                   axis=2)
        downlink = link_efficiency(to_server, dbm_to_w(c.server_tx_power_dbm)
                                   / c.max_active_clients, c)
        uplink = link_efficiency(to_server, dbm_to_w(c.client_tx_power_dbm), c)
        with np.errstate(divide="ignore"):  # a dead link: the model never arrives (inf)
            download, upload = c.global_model_mbit / downlink, c.local_model_mbit / uplink
        return RoundState(active, a, b, quality, download, upload, self.client_xy_m.copy(),
                          self.target_xy_m.copy())
