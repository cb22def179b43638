"""Episode metrics: SW, utilities, RT, NI, DIBC, ECIBC, RDSL, DRLC."""

from isac_market_env.metrics.overhead import Overhead, draw_overhead

__all__ = ["Overhead", "draw_overhead"]
