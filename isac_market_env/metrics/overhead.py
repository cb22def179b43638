"""Signalling overhead of a mechanism: NI, DIBC, ECIBC (paper Sec. V-A; docs/model.md, Metrics).

The value type; how each exchange's delay and energy are drawn is a random model of the market
(``isac_market_env.market.random_models.draw_overhead``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Overhead:
    """Number of interactions, their total delay (ms) and energy (J)."""

    ni: int = 0
    dibc_ms: float = 0.0
    ecibc_j: float = 0.0

    def __add__(self, other: Overhead) -> Overhead:
        return Overhead(self.ni + other.ni, self.dibc_ms + other.dibc_ms,
                        self.ecibc_j + other.ecibc_j)
