"""The mechanisms compared in the paper (Sec. V-A), each a composition of the core's parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OnlineMode = Literal["none", "matching", "greedy", "greedy-retry", "optimal"]


@dataclass(frozen=True)
class MechanismSpec:
    """Which parts a mechanism uses.

    ``offline``: sign long-term contracts with offRFW2M before the transactions. ``online``: what
    runs in every transaction for present clients without an executable contract: ``matching``
    (onEBW2M), ``greedy`` (one bid per client), ``greedy-retry`` (rejected clients bid on their
    next solutions), ``optimal`` (welfare upper bound) or ``none``. ``coalitions``: sensing
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
    )
}


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
