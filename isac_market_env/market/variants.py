"""The mechanisms compared in the paper (Sec. V-A), each a composition of the core's parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OnlineMode = Literal["none", "matching", "greedy", "greedy-retry", "optimal", "pricing",
                     "centralized", "bargaining", "nearest", "random", "dfront", "cfront",
                     "gale-shapley", "cooperative"]
# online trades of the other seeds (docs/mechanisms.md): mechanisms.cdna, mechanisms.reuse and
# mechanisms.cooperative
TRADE_MODES = ("pricing", "centralized", "bargaining", "nearest", "random", "dfront", "cfront",
               "gale-shapley", "cooperative")
REUSE_MODES = ("dfront", "cfront")
# online trades that draw from the episode's mechanism stream, transaction after transaction
SEQUENTIAL_MODES = ("random", "cooperative")


@dataclass(frozen=True)
class MechanismSpec:
    """Which parts a mechanism uses.

    ``offline``: sign long-term contracts with offRFW2M before the transactions. ``online``: what
    runs in every transaction for present clients without an executable contract: ``matching``
    (onEBW2M), ``greedy`` (one bid per client), ``greedy-retry`` (rejected clients bid on their
    next solutions), ``optimal`` (welfare upper bound), one of the other seeds' trades
    (``TRADE_MODES``, docs/mechanisms.md) or ``none``. ``coalitions``: sensing
    coalitions (else every MU requests sensing alone). ``overbooking``: book up to (1+O) supply.
    ``risk``: risk constraints eq. 37e/37f/38h/38i.
    """

    name: str
    offline: bool
    online: OnlineMode
    coalitions: bool
    overbooking: bool
    risk: bool
    description: str = ""

    @property
    def concurrent_transactions(self) -> bool:
        """Whether an episode's transactions may run at once (``Market.run(workers=N)``): all
        but the trades that draw from the episode's mechanism stream in transaction order
        (``random``, ``cooperative``), which run one after the other."""
        return self.online not in SEQUENTIAL_MODES

    @property
    def reuse(self) -> bool:
        """Whether a BS may give the same bandwidth to clients that do not conflict."""
        return self.online in REUSE_MODES


MECHANISMS: dict[str, MechanismSpec] = {
    spec.name: spec
    for spec in (
        MechanismSpec("frbank", True, "matching", True, True, True,
                      "FRBank: offRFW2M contracts with coalitions, overbooking and risk control, "
                      "volunteers and onEBW2M backup"),
        MechanismSpec("cononline", False, "matching", False, False, False,
                      "ConOnline: M2M matching in every transaction, no coalitions"),
        MechanismSpec("conoffline", True, "none", False, False, True,
                      "ConOffline: long-term contracts only, no backup, no overbooking"),
        MechanismSpec("hybrid", True, "matching", False, False, True,
                      "Hybrid: ConOffline + online backup, no overbooking, no coalitions"),
        MechanismSpec("hybrido", True, "matching", False, True, True,
                      "HybridO: Hybrid + overbooking"),
        MechanismSpec("greedy", False, "greedy", False, False, False,
                      "Greedy: one-shot highest-payment-first allocation in every transaction"),
        MechanismSpec("greedy-retry", False, "greedy-retry", False, False, False,
                      "GreedyRetry: Greedy where a rejected client bids on its next solution"),
        MechanismSpec("frbank-nor", True, "matching", True, True, False,
                      "FRBankNoR: FRBank without risk constraints"),
        MechanismSpec("hybrido-nor", True, "matching", False, True, False,
                      "HybridONoR: HybridO without risk constraints"),
        MechanismSpec("conoffline-nor", True, "none", False, False, False,
                      "ConOfflineNoR: ConOffline without risk constraints"),
        MechanismSpec("optimal", False, "optimal", True, False, False,
                      "Welfare upper bound: value-maximising allocation per transaction (MILP)"),
        MechanismSpec("frbank-trust", True, "matching", True, True, True,
                      "FRBank with seed 001's trust over contract periods (market.trust; one "
                      "episode has no history, so it is FRBank)"),
        MechanismSpec("pricing-matching", False, "pricing", False, False, False,
                      "Seed 001 Alg. 3: matching with tatonnement unit prices per BS"),
        MechanismSpec("centralized", False, "centralized", False, False, False,
                      "Seed 001 Alg. 1: welfare-maximising association (MILP), surplus split"),
        MechanismSpec("bargaining", False, "bargaining", False, False, False,
                      "Seed 001 Alg. 2: bilateral price bargaining, then MILP allocation"),
        MechanismSpec("nearest", False, "nearest", False, False, False,
                      "Seed 001 baseline: minimum-distance matching at the reserve price"),
        MechanismSpec("random", False, "random", False, False, False,
                      "Seed 001 baseline: random matching at the reserve price"),
        MechanismSpec("dfront", False, "dfront", False, False, False,
                      "Seed 003 D-FRONT: deferred acceptance with spatial reuse (exact MWIS)"),
        MechanismSpec("cfront", False, "cfront", False, False, False,
                      "Seed 003 C-FRONT: centralized reuse ILP, the reuse market's bound"),
        MechanismSpec("gale-shapley", False, "gale-shapley", False, False, False,
                      "Seed 003 baseline: deferred acceptance without reuse"),
        MechanismSpec("cooperative", False, "cooperative", False, False, False,
                      "Seed 002: time-frequency blocks; groups share a BS's massive block, "
                      "others aggregate small blocks; the BS's own demand preempts blocks"),
    )
}


# the other seeds' mechanisms (docs/mechanisms.md); ``compare`` runs the rest by default
OTHER_SEED_MECHANISMS = ("frbank-trust", *(name for name, spec in MECHANISMS.items()
                                             if spec.online in TRADE_MODES))


def get_mechanism(name: str | MechanismSpec) -> MechanismSpec:
    """Look a mechanism up by name (a spec passes through)."""
    if isinstance(name, MechanismSpec):
        return name
    if not isinstance(name, str):
        raise TypeError(f"mechanism must be a name (one of {', '.join(MECHANISMS)}) or a "
                        f"MechanismSpec, got {name!r}")
    if name not in MECHANISMS:
        raise ValueError(f"unknown mechanism {name!r}; choose one of {', '.join(MECHANISMS)}")
    return MECHANISMS[name]
