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
    """alpha_i ~ Bernoulli(a_i) for every transaction: (n_transactions, n_mus).

    Drawn in blocks of rows (the same numbers as one draw of the whole array: the generator
    fills row after row) so that only the booleans, not a float array of the same shape,
    are ever held.
    """
    n_mus = len(participation)
    present = np.empty((n_transactions, n_mus), dtype=bool)
    rows = max(1, 2**20 // max(n_mus, 1))
    for start in range(0, n_transactions, rows):
        stop = min(start + rows, n_transactions)
        present[start:stop] = rng.random((stop - start, n_mus)) < participation[None, :]
    return present


def draw_overhead(n_exchanges: int, market: MarketConfig, rng: np.random.Generator) -> Overhead:
    """Delay and energy of ``n_exchanges`` exchanges drawn from the delay stream ``rng``."""
    if n_exchanges == 0:
        return Overhead()
    delay_ms = rng.uniform(*market.interaction_delay_range_ms, n_exchanges)
    power_w = (rng.uniform(*market.mu_tx_power_range_w, n_exchanges)
               + rng.uniform(*market.bs_tx_power_range_w, n_exchanges))
    return Overhead(n_exchanges, float(delay_ms.sum()), float((delay_ms / 1e3 * power_w).sum()))
