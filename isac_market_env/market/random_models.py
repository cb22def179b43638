"""The market's random models: who shows up in a transaction, and what each exchange costs.

One exchange is a proposal and its answer (or a displacement notice). Its delay is U[1, 15] ms
and it costs ``delay * (MU power + BS power)`` joules with powers U[0.2, 0.4] W and U[6, 20] W,
which reproduces the paper's Table I ratios DIBC/NI ~ 8 ms and ECIBC/NI ~ 0.105. Each draws from
its own named stream of the episode's seed (``EpisodeStreams``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from isac_market_env.config import MarketConfig
from isac_market_env.metrics.overhead import Overhead


def draw_participation(participation: NDArray[np.float64], n_transactions: int,
                       rng: np.random.Generator) -> NDArray[np.bool_]:
    """alpha_i ~ Bernoulli(a_i) for every transaction: (n_transactions, n_mus)."""
    return np.asarray(rng.random((n_transactions, len(participation))) < participation[None, :])


def draw_overhead(n_exchanges: int, market: MarketConfig, rng: np.random.Generator) -> Overhead:
    """Delay and energy of ``n_exchanges`` exchanges drawn from the delay stream ``rng``."""
    if n_exchanges == 0:
        return Overhead()
    delay_ms = rng.uniform(*market.interaction_delay_range_ms, n_exchanges)
    power_w = (rng.uniform(*market.mu_tx_power_range_w, n_exchanges)
               + rng.uniform(*market.bs_tx_power_range_w, n_exchanges))
    return Overhead(n_exchanges, float(delay_ms.sum()), float((delay_ms / 1e3 * power_w).sum()))
