"""Trust over repeated contract periods (seed 001, Sec. VI) layered on FRBank.

One market (BSs, MUs, targets) signs anew every period (FRBank: signing, then W practical
transactions). Some clients overstate their participation probability: they declare a_i but
take part with a_i - overstatement. Without trust the BSs take every declaration at face value.
With trust (``frbank-trust``), after each period:

* reliability (the seed's xi = delivered / agreed): of a client as seen by the BS it
  contracted with, executions it honoured (present, no breach) over the executions it agreed
  to, its declared presence times W (capped at 1); of a BS, the present contracts it served
  over those due (1 - its volunteering rate). Both as exponential moving averages over periods
  (``memory``: the weight of the latest period);
* direct trust of BS j in client k (eq. 32): 1 / (1 + exp(-h (xi_jk - phi xi_j))), h = 20,
  phi = 4/5, the BS's own reliability as reference point;
* indirect trust (eq. 33-34): the other BSs' direct trust in k, weighted by their credibility
  (their share of k's transactions), similarity 1 (every BS judges by the same rule);
* trust rho_jk = omega direct + (1 - omega) indirect (eq. 31), either one alone if only it
  exists, 1 with no history at all;
* access control: BS j signs no contract with a client it trusts at most ``access_threshold``
  (rho > 0.5 in the seed's evaluation);
* trust-weighted terms (eq. 36): a client's share sigma_k = mean_j rho_jk discounts its
  declared participation probability in the signing (every expected utility, risk and E[v]
  then uses a_k sigma_k).

``simulate("frbank-trust")`` is one period, with no history: FRBank. The periods run here
(``run_trust_periods``, ``isac-market experiment trust``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from isac_market_env.config import EpisodeConfig, _number
from isac_market_env.market.market import EpisodeStreams, Market
from isac_market_env.market.random_models import draw_participation
from isac_market_env.mechanisms.matching import run_matching
from isac_market_env.scenarios.presets import build_scenario

OVERSTATERS_STREAM_KEY = 1_000_033
MIN_PARTICIPATION = 0.05


@dataclass(frozen=True)
class TrustConfig:
    """The repeated market and the trust model's parameters (module docstring)."""

    n_periods: int = 6
    transactions_per_period: int = 10
    overstating_share: float = 0.3
    overstatement: float = 0.3
    steepness: float = 20.0
    reference: float = 0.8
    direct_weight: float = 0.7
    access_threshold: float = 0.5
    memory: float = 0.5

    def __post_init__(self) -> None:
        _number(self, "n_periods", 1, 10**6, integer=True)
        _number(self, "transactions_per_period", 1, 10**6, integer=True)
        _number(self, "overstating_share", 0, 1)
        _number(self, "overstatement", 0, 1)
        _number(self, "steepness", 0, low_open=True)
        _number(self, "reference", 0, 1)
        _number(self, "direct_weight", 0, 1)
        _number(self, "access_threshold", 0, 1)
        _number(self, "memory", 0, 1, low_open=True)


class TrustLedger:
    """Reliabilities and transaction counts per (BS, client) and per BS across periods."""

    def __init__(self, n_bss: int, n_clients: int, config: TrustConfig) -> None:
        self.config = config
        self.client_reliability = np.full((n_bss, n_clients), np.nan)
        self.transactions = np.zeros((n_bss, n_clients))
        self.bs_reliability = np.ones(n_bss)

    def direct(self) -> NDArray[np.float64]:
        """Eq. 32 per (BS, client); NaN where the BS has no history with the client."""
        c = self.config
        gap = self.client_reliability - c.reference * self.bs_reliability[:, None]
        return np.asarray(1.0 / (1.0 + np.exp(-c.steepness * gap)))

    def trust(self) -> NDArray[np.float64]:
        """Eq. 31 (direct and credibility-weighted indirect trust) per (BS, client)."""
        direct = self.direct()
        seen = ~np.isnan(direct)
        weight = np.where(seen, self.transactions, 0.0)
        weighted = np.where(seen, direct * weight, 0.0)
        others_w = weight.sum(axis=0)[None, :] - weight
        others = weighted.sum(axis=0)[None, :] - weighted
        with np.errstate(invalid="ignore", divide="ignore"):
            indirect = np.where(others_w > 0, others / others_w, np.nan)
        omega = self.config.direct_weight
        both = seen & ~np.isnan(indirect)
        rho = np.where(both, omega * np.nan_to_num(direct) + (1 - omega)
                       * np.nan_to_num(indirect), np.where(seen, direct, indirect))
        return np.asarray(np.where(np.isnan(rho), 1.0, rho))

    def update(self, market: Market) -> None:
        """Fold one finished period's contract history into the reliabilities."""
        c, lam = market.contracts, self.config.memory
        if len(c) == 0:
            return
        w = len(market.transactions)
        failed = np.zeros(len(c))
        volunteered = np.zeros(len(c))
        for tx in market.transactions:
            np.add.at(failed, tx.contract_absent, 1.0)
            np.add.at(failed, tx.contract_breached, 1.0)
            np.add.at(volunteered, tx.contract_volunteered, 1.0)
        agreed = market.book.client_presence_prob[c.client] * w
        observed = np.minimum(1.0, (w - failed) / np.maximum(agreed, 1e-12))
        old = self.client_reliability[c.bs, c.client]
        self.client_reliability[c.bs, c.client] = np.where(np.isnan(old), observed,
                                                           (1 - lam) * old + lam * observed)
        self.transactions[c.bs, c.client] += w
        due = np.bincount(c.bs, w - failed, minlength=len(self.bs_reliability))
        served = due - np.bincount(c.bs, volunteered, minlength=len(self.bs_reliability))
        has = due > 0
        self.bs_reliability[has] = ((1 - lam) * self.bs_reliability[has]
                                    + lam * served[has] / due[has])


@dataclass(frozen=True)
class PeriodRecord:
    """One contract period: SW, contract executions delivered over agreed (declared presence
    times W), DRLC, contracts signed (with overstating clients), pairs shut out by access
    control, and the mean trust in honest and overstating clients before the signing."""

    period: int
    social_welfare: float
    delivered: float
    agreed: float
    drlc: float
    n_contracts: int
    n_overstater_contracts: int
    excluded_pairs: int
    trust_honest: float
    trust_overstaters: float

    @property
    def delivered_over_agreed(self) -> float:
        return self.delivered / self.agreed if self.agreed else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "delivered_over_agreed": self.delivered_over_agreed}


def overstaters(n_mus: int, share: float, seed: int) -> NDArray[np.bool_]:
    """Which MUs overstate: exactly round(share * n_mus) of them, drawn from the seed."""
    rng = np.random.default_rng([seed, OVERSTATERS_STREAM_KEY])
    out = np.zeros(n_mus, dtype=bool)
    out[rng.permutation(n_mus)[:round(share * n_mus)]] = True
    return out


def run_trust_periods(scenario_name: str, config: EpisodeConfig, seed: int,
                      trust: TrustConfig, use_trust: bool,
                      eua_directory: str | Path | None = None) -> list[PeriodRecord]:
    """Run ``trust.n_periods`` FRBank contract periods, with or without the trust layer, on
    the same market, overstating clients and participation draws (period k draws from
    ``SeedSequence([seed, k])``)."""
    config = dataclasses.replace(config, n_transactions=trust.transactions_per_period)
    scenario = build_scenario(scenario_name, config.scenario,
                              EpisodeStreams.from_seed(seed).scenario, eua_directory)
    lying = overstaters(scenario.n_mus, trust.overstating_share, seed)
    true_a = np.where(lying, np.maximum(MIN_PARTICIPATION,
                                        scenario.mu_participation - trust.overstatement),
                      scenario.mu_participation)
    ledger: TrustLedger | None = None
    records = []
    for period in range(trust.n_periods):
        streams = EpisodeStreams.from_seed(np.random.SeedSequence([seed, period]))
        presence = draw_participation(true_a, config.n_transactions, streams.participation)
        market = Market(scenario, config, "frbank", seed=seed, streams=streams,
                        participation=presence)
        if ledger is None:
            ledger = TrustLedger(scenario.n_bss, market.book.n_clients, trust)
        client_lies = np.array([lying[market.book.members(k)].any()
                                for k in range(market.book.n_clients)])
        rho = ledger.trust()
        excluded = 0
        if use_trust:
            excluded = _sign_with_trust(market, rho, trust.access_threshold)
        else:
            market.sign()
        market.run()
        summary = market.result().summary()
        c = market.contracts
        failed = sum(len(tx.contract_absent) + len(tx.contract_breached)
                     for tx in market.transactions)
        # agreed at the declared presence (the book's), whatever the signing was told
        agreed = float(market.book.client_presence_prob[c.client].sum() * config.n_transactions)
        records.append(PeriodRecord(
            period, summary["social_welfare"], float(len(c) * config.n_transactions - failed),
            agreed, summary["drlc"], len(c), int(client_lies[c.client].sum()), excluded,
            float(rho.mean(axis=0)[~client_lies].mean()) if (~client_lies).any() else 1.0,
            float(rho.mean(axis=0)[client_lies].mean()) if client_lies.any() else 1.0))
        ledger.update(market)
    return records


def _sign_with_trust(market: Market, rho: NDArray[np.float64], threshold: float) -> int:
    """FRBank's signing with access control and trust-weighted presence; returns how many
    (client, BS) pairs that have solutions access control shut out."""
    problem = market.offline_problem()
    book = market.book
    share = rho.mean(axis=0)  # eq. 36
    allowed = rho[book.sol_bs, book.sol_client] > threshold
    keep = np.flatnonzero(allowed)
    shut = {(int(j), int(k)) for j, k in zip(book.sol_bs[~allowed], book.sol_client[~allowed],
                                             strict=True)}
    reduced = dataclasses.replace(
        problem, sol_client=problem.sol_client[keep], sol_bs=problem.sol_bs[keep],
        sol_bandwidth_hz=problem.sol_bandwidth_hz[keep], sol_power_w=problem.sol_power_w[keep],
        sol_value=problem.sol_value[keep], sol_start_bid=problem.sol_start_bid[keep],
        client_presence=problem.client_presence * share)
    volunteers = market.volunteer_model() if market.spec.overbooking else None
    result = run_matching(reduced, volunteers)
    matched = result.client_solution >= 0
    mapped = np.where(matched, keep[np.maximum(result.client_solution, 0)], -1)
    market.record_signing(dataclasses.replace(result, client_solution=mapped))
    return len(shut)
