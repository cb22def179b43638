"""Signalling overhead of a mechanism: NI, DIBC, ECIBC (paper Sec. V-A; docs/model.md, Metrics).

One exchange is a proposal and its answer (or a displacement notice). Its delay is U[1, 15] ms
and it costs ``delay * (MU power + BS power)`` joules with powers U[0.2, 0.4] W and U[6, 20] W,
which reproduces the paper's Table I ratios DIBC/NI ~ 8 ms and ECIBC/NI ~ 0.105.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isac_market_env.config import MarketConfig


@dataclass(frozen=True)
class Overhead:
    """Number of interactions, their total delay (ms) and energy (J)."""

    ni: int = 0
    dibc_ms: float = 0.0
    ecibc_j: float = 0.0

    def __add__(self, other: Overhead) -> Overhead:
        return Overhead(self.ni + other.ni, self.dibc_ms + other.dibc_ms,
                        self.ecibc_j + other.ecibc_j)


def draw_overhead(n_exchanges: int, market: MarketConfig, rng: np.random.Generator) -> Overhead:
    """Delay and energy of ``n_exchanges`` exchanges drawn from the delay stream ``rng``."""
    if n_exchanges == 0:
        return Overhead()
    delay_ms = rng.uniform(*market.interaction_delay_range_ms, n_exchanges)
    power_w = (rng.uniform(*market.mu_tx_power_range_w, n_exchanges)
               + rng.uniform(*market.bs_tx_power_range_w, n_exchanges))
    return Overhead(n_exchanges, float(delay_ms.sum()), float((delay_ms / 1e3 * power_w).sum()))
