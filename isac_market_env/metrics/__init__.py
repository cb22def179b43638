"""Episode metrics: SW, utilities, RT, NI, DIBC, ECIBC, RDSL, DRLC (computed in ``episode``)."""

from isac_market_env.metrics.overhead import Overhead

__all__ = ["Overhead"]
