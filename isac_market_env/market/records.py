"""Typed records of an episode: contracts, the signing phase, transactions, the whole episode."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from isac_market_env.metrics.episode import episode_summary
from isac_market_env.metrics.overhead import Overhead

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Overhead):
        return dataclasses.asdict(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


@dataclass(frozen=True, eq=False)
class ContractBook:
    """Long-term contracts (B, P, Pay, PelU, PelS) signed by offRFW2M, one row per contract."""

    client: IntArray
    solution: IntArray
    bs: IntArray
    bandwidth_hz: FloatArray
    power_w: FloatArray
    pay: FloatArray
    penalty_client: FloatArray
    penalty_bs: FloatArray

    @classmethod
    def empty(cls) -> ContractBook:
        z = np.zeros(0)
        zi = np.zeros(0, dtype=np.int64)
        return cls(zi, zi, zi, z, z, z, z, z)

    def __len__(self) -> int:
        return len(self.client)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True, eq=False)
class SigningRecord:
    """Outcome of the offline signing phase (``milp_calls``: BS selections past the search
    budget that got HiGHS's selection, see ``MarketConfig.knapsack_node_limit`` and
    ``MatchingResult``; ``contract_volunteer_rate``: each contract's E[v] as
    signed, its own or its BS's, see ``MarketConfig.volunteer_rate_per_client``)."""

    contracts: ContractBook
    rounds: int
    converged: bool
    overhead: Overhead
    runtime_ms: float
    bs_volunteer_rate: FloatArray
    booked_bandwidth_hz: FloatArray
    booked_power_w: FloatArray
    milp_calls: int = 0
    contract_volunteer_rate: FloatArray = dataclasses.field(default_factory=lambda: np.zeros(0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "contracts": self.contracts.to_dict(), "rounds": self.rounds,
            "milp_calls": self.milp_calls,
            "converged": self.converged, "overhead": _jsonable(self.overhead),
            "runtime_ms": self.runtime_ms,
            "bs_volunteer_rate": _jsonable(self.bs_volunteer_rate),
            "booked_bandwidth_hz": _jsonable(self.booked_bandwidth_hz),
            "booked_power_w": _jsonable(self.booked_power_w),
            "contract_volunteer_rate": _jsonable(self.contract_volunteer_rate),
        }


@dataclass(frozen=True, eq=False)
class TransactionRecord:
    """One practical transaction: who was present, what was delivered, who paid whom.

    Allocation rows (``alloc_*``) list every served request with its BS, resources, payment and
    realised value; ``alloc_online`` marks temporary (online) contracts. Per-client transfers:
    ``client_paid`` (payments + PelU) and ``client_received`` (PelS); per BS: ``bs_income``.
    """

    index: int
    mu_present: NDArray[np.bool_]
    alloc_client: IntArray
    alloc_solution: IntArray
    alloc_bs: IntArray
    alloc_bandwidth_hz: FloatArray
    alloc_power_w: FloatArray
    alloc_pay: FloatArray
    alloc_value: FloatArray
    alloc_online: NDArray[np.bool_]
    contract_absent: IntArray
    contract_volunteered: IntArray
    client_value: FloatArray
    client_paid: FloatArray
    client_received: FloatArray
    bs_income: FloatArray
    rdsl_bandwidth: FloatArray
    rdsl_power: FloatArray
    contracts_due: int
    overhead: Overhead
    runtime_ms: float
    online_rounds: int
    online_converged: bool
    mu_utility_comm: float
    mu_utility_sensing: float
    bs_utility_comm: float
    bs_utility_sensing: float
    welfare_upper_bound: float | None = None  # only the optimal mechanism certifies one
    # present clients that broke their contract because being served would cost them more
    # than PelU (``MarketConfig.strategic_breach``)
    contract_breached: IntArray = dataclasses.field(
        default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def social_welfare(self) -> float:
        """Sum of all client and BS utilities (eq. 25, 26, 31, 32, 49-52)."""
        return (self.mu_utility_comm + self.mu_utility_sensing + self.bs_utility_comm
                + self.bs_utility_sensing)

    @property
    def delivered_value(self) -> float:
        return float(self.alloc_value.sum())

    @property
    def contracts_failed(self) -> int:
        """Executions that failed: absent clients, breaching clients, volunteered contracts."""
        return (len(self.contract_absent) + len(self.contract_breached)
                + len(self.contract_volunteered))

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["social_welfare"] = self.social_welfare
        out["overhead"] = dataclasses.asdict(self.overhead)
        return out


@dataclass(frozen=True, eq=False)
class EpisodeResult:
    """Everything one episode produced; ``summary()`` gives the paper's metrics."""

    mechanism: str
    seed: int | None
    scenario: Any  # Scenario (kept untyped here to avoid an import cycle)
    config: Any  # EpisodeConfig
    client_kind: IntArray
    client_members: list[list[int]]
    solutions: dict[str, Any]
    signing: SigningRecord | None
    transactions: list[TransactionRecord] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Episode totals and means of SW, utilities, RT, NI, DIBC, ECIBC, RDSL, DRLC."""
        return episode_summary(self.signing, self.transactions)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record: scenario, config, every contract and every transaction."""
        return {
            "mechanism": self.mechanism,
            "seed": self.seed,
            "config": dataclasses.asdict(self.config),
            "scenario": self.scenario.to_dict(),
            "clients": {"kind": _jsonable(self.client_kind), "members": self.client_members},
            "solutions": {k: _jsonable(v) for k, v in self.solutions.items()},
            "signing": self.signing.to_dict() if self.signing else None,
            "transactions": [tx.to_dict() for tx in self.transactions],
            "summary": self.summary(),
        }
