"""How much memory an episode config needs, checked before anything is allocated.

The estimate is an upper bound of the big arrays (solutions, participation draws, the Monte Carlo
volunteer uniforms, one transaction record per transaction) with a factor for the temporaries
of the matching. A config above the memory available is refused with the estimate and the
fields that drive it, rather than failing deep inside numpy after minutes of work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from isac_market_env.config import EpisodeConfig, IsccConfig

# bytes per item, measured on the 50-MU market with the matching's temporaries (rounded up)
BYTES_PER_SOLUTION = 400
BYTES_PER_MU_BS_PAIR = 200
BYTES_PER_CLIENT_TRANSACTION = 64
BYTES_PER_MU_TRANSACTION = 1  # participation draws, drawn in chunks (no float temporary)
BYTES_PER_VOLUNTEER_UNIFORM = 8
FIXED_BYTES = 64 * 2**20
ISAC_MARKET_MEMORY_LIMIT = "ISAC_MARKET_MEMORY_LIMIT_GIB"


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one episode of ``config`` may need, split by what drives them."""

    solutions: int
    pairs: int
    transactions: int
    volunteer_uniforms: int

    @property
    def total(self) -> int:
        return (FIXED_BYTES + self.solutions + self.pairs + self.transactions
                + self.volunteer_uniforms)

    @classmethod
    def of(cls, config: EpisodeConfig) -> MemoryEstimate:
        sc = config.scenario
        n_clients = 2 * sc.n_mus + sc.n_targets  # comm clients + individual sensing requests
        grid = sc.n_bandwidth_levels * sc.n_power_levels
        return cls(
            solutions=BYTES_PER_SOLUTION * n_clients * sc.n_bss * grid,
            pairs=BYTES_PER_MU_BS_PAIR * sc.n_mus * sc.n_bss,
            transactions=config.n_transactions * (BYTES_PER_MU_TRANSACTION * sc.n_mus
                                                  + BYTES_PER_CLIENT_TRANSACTION * n_clients),
            volunteer_uniforms=BYTES_PER_VOLUNTEER_UNIFORM * config.market.volunteer_mc_samples
            * n_clients)


def available_bytes() -> int:
    """The memory this process may use: ``$ISAC_MARKET_MEMORY_LIMIT_GIB`` if set, else the
    system's available memory (``MemAvailable``), else its physical memory."""
    limit = os.environ.get(ISAC_MARKET_MEMORY_LIMIT)
    if limit:
        return int(float(limit) * 2**30)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - non-POSIX
        return 2**62


def check_memory(config: EpisodeConfig,
                 transactions_argument: str = "n_transactions") -> MemoryEstimate:
    """Raise ValueError when an episode of ``config`` cannot fit in the available memory
    (``transactions_argument``: what the caller calls the transaction count)."""
    estimate = MemoryEstimate.of(config)
    available = available_bytes()
    if estimate.total > available:
        sc, m = config.scenario, config.market
        parts = {
            f"solutions (n_mus={sc.n_mus}, n_targets={sc.n_targets}, n_bss={sc.n_bss}, "
            f"n_bandwidth_levels={sc.n_bandwidth_levels}, n_power_levels={sc.n_power_levels})":
                estimate.solutions,
            f"(MU, BS) pairs (n_mus={sc.n_mus}, n_bss={sc.n_bss})": estimate.pairs,
            f"transactions ({transactions_argument}={config.n_transactions}, n_mus={sc.n_mus})":
                estimate.transactions,
            f"volunteer estimate (volunteer_mc_samples={m.volunteer_mc_samples})":
                estimate.volunteer_uniforms}
        _refuse("this episode", estimate.total, available, parts)
    return estimate


def _refuse(what: str, total: int, available: int, parts: dict[str, int]) -> None:
    """The ValueError of a config that does not fit: the total and its largest part."""
    worst = max(parts, key=lambda k: parts[k])
    raise ValueError(
        f"{what} needs about {total / 2**30:.1f} GiB, more than the "
        f"{available / 2**30:.1f} GiB available; most of it for {worst}: "
        f"{parts[worst] / 2**30:.1f} GiB. Reduce those fields (or set "
        f"{ISAC_MARKET_MEMORY_LIMIT} to allow more)")


# ISCC market (seed 004): client-target distance temporaries, workload options, round records
BYTES_PER_CLIENT_TARGET = 64
BYTES_PER_OPTION = 400
BYTES_PER_CLIENT_ROUND = 128


def check_iscc_memory(config: IsccConfig, n_rounds: int) -> int:
    """Raise ValueError when an ISCC episode (``n_rounds`` rounds) cannot fit in memory;
    return the estimate in bytes."""
    parts = {
        f"client-target pairs (n_clients={config.n_clients}, n_targets={config.n_targets})":
            BYTES_PER_CLIENT_TARGET * config.n_clients * config.n_targets,
        f"workload options (n_clients={config.n_clients}, n_servers={config.n_servers}, "
        f"workload_levels={config.workload_levels})":
            BYTES_PER_OPTION * config.n_clients * config.n_servers * config.workload_levels,
        f"round records (n_transactions={n_rounds}, n_clients={config.n_clients})":
            BYTES_PER_CLIENT_ROUND * n_rounds * config.n_clients,
    }
    total = FIXED_BYTES + sum(parts.values())
    available = available_bytes()
    if total > available:
        _refuse("this ISCC episode", total, available, parts)
    return total
