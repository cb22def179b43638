"""The market's entities as a structure of arrays (MUs, BSs, sensing targets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, eq=False)
class Scenario:
    """Every MU, BS and sensing target of one market (paper Sec. II-B), positions in metres.

    MU i: position, sensing target ``mu_target[i]``, rate requirement (Mbit/s), sensing accuracy
    requirement (1/PEB, 1/m), receive antennas, participation probability a_i.
    BS j: position, bandwidth (Hz), power (W), transmit antennas.
    """

    name: str
    mu_xy_m: NDArray[np.float64]
    mu_target: NDArray[np.int64]
    mu_rate_requirement_mbps: NDArray[np.float64]
    mu_sensing_requirement_per_m: NDArray[np.float64]
    mu_rx_antennas: NDArray[np.int64]
    mu_participation: NDArray[np.float64]
    bs_xy_m: NDArray[np.float64]
    bs_bandwidth_hz: NDArray[np.float64]
    bs_power_w: NDArray[np.float64]
    bs_tx_antennas: NDArray[np.int64]
    target_xy_m: NDArray[np.float64]

    def __post_init__(self) -> None:
        n_mus, n_bss = len(self.mu_xy_m), len(self.bs_xy_m)
        if n_mus == 0:
            raise ValueError("n_mus must be >= 1: a market needs at least one MU")
        if n_bss == 0:
            raise ValueError("n_bss must be >= 1: a market needs at least one BS")
        for name in ("mu_xy_m", "mu_target", "mu_rate_requirement_mbps",
                     "mu_sensing_requirement_per_m", "mu_rx_antennas", "mu_participation"):
            if len(getattr(self, name)) != n_mus:
                raise ValueError(f"{name} must have one entry per MU ({n_mus})")
        for name in ("bs_bandwidth_hz", "bs_power_w", "bs_tx_antennas"):
            if len(getattr(self, name)) != n_bss:
                raise ValueError(f"{name} must have one entry per BS ({n_bss})")
        for name in ("mu_xy_m", "bs_xy_m", "target_xy_m", "mu_rate_requirement_mbps",
                     "mu_sensing_requirement_per_m", "mu_participation", "bs_bandwidth_hz",
                     "bs_power_w"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be finite (found NaN or inf)")
        if np.any((self.mu_participation < 0) | (self.mu_participation > 1)):
            raise ValueError("mu_participation (a_i) must lie in [0, 1]")
        if np.any(self.bs_bandwidth_hz <= 0):
            raise ValueError("bs_bandwidth_hz must be positive")
        if np.any(self.bs_power_w <= 0):
            raise ValueError("bs_power_w must be positive")
        if np.any(self.mu_rate_requirement_mbps < 0) or np.any(
                self.mu_sensing_requirement_per_m < 0):
            raise ValueError("mu requirements must be non-negative")
        if np.any((self.mu_target < 0) | (self.mu_target >= len(self.target_xy_m))):
            raise ValueError("mu_target must index target_xy_m")

    @property
    def n_mus(self) -> int:
        return len(self.mu_xy_m)

    @property
    def n_bss(self) -> int:
        return len(self.bs_xy_m)

    @property
    def n_targets(self) -> int:
        return len(self.target_xy_m)

    def with_participation(self, participation: NDArray[np.float64]) -> Scenario:
        """A copy with new participation probabilities (drifting markets)."""
        fields = {k: getattr(self, k) for k in self.__dataclass_fields__}
        fields["mu_participation"] = np.asarray(participation, dtype=np.float64)
        return Scenario(**fields)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe copy of every array."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in ((k, getattr(self, k)) for k in self.__dataclass_fields__)}
