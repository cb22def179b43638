"""The paper's metrics (Sec. V-A), computed from an episode's records in this one place.

SW, MU and BS utilities, RT, NI, DIBC, ECIBC, RDSL and DRLC of an episode
(``episode_summary``), of one transaction (``transaction_metrics``), one client's realised
utility (``client_utility``), and per BS over a run of transactions (``per_bs_execution``).
The summary, the envs' info and rewards and ``isac-market evaluate`` all call these. The
records (``isac_market_env.market.records``) are read by attribute only: metrics sit below the
market and import nothing from it at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from isac_market_env.metrics.overhead import Overhead

if TYPE_CHECKING:  # annotations only
    from isac_market_env.config import MarketConfig
    from isac_market_env.market.records import SigningRecord, TransactionRecord


def episode_summary(signing: SigningRecord | None,
                    transactions: Sequence[TransactionRecord]) -> dict[str, float]:
    """Episode totals and means of SW, utilities, RT, NI, DIBC, ECIBC, RDSL, DRLC: the
    signing phase (its overhead and RT) plus every transaction."""
    txs = transactions
    n_tx = max(len(txs), 1)
    online = Overhead()
    for tx in txs:
        online = online + tx.overhead
    offline = signing.overhead if signing else Overhead()
    rt_offline = signing.runtime_ms if signing else 0.0
    rt_online = float(sum(tx.runtime_ms for tx in txs))
    due = sum(tx.contracts_due for tx in txs)
    failed = sum(tx.contracts_failed for tx in txs)
    sw = float(sum(tx.social_welfare for tx in txs))
    mu_c = float(sum(tx.mu_utility_comm for tx in txs))
    mu_s = float(sum(tx.mu_utility_sensing for tx in txs))
    bs_c = float(sum(tx.bs_utility_comm for tx in txs))
    bs_s = float(sum(tx.bs_utility_sensing for tx in txs))
    rdsl_b = [tx.rdsl_bandwidth for tx in txs]
    rdsl_p = [tx.rdsl_power for tx in txs]
    total = offline + online
    out = {
        "social_welfare": sw,
        "social_welfare_per_transaction": sw / n_tx,
        "delivered_value": float(sum(tx.delivered_value for tx in txs)),
        "mu_utility": mu_c + mu_s,
        "mu_utility_comm": mu_c,
        "mu_utility_sensing": mu_s,
        "bs_utility": bs_c + bs_s,
        "bs_utility_comm": bs_c,
        "bs_utility_sensing": bs_s,
        "rt_ms": rt_offline + rt_online,
        "rt_offline_ms": rt_offline,
        "rt_online_ms": rt_online,
        "ni": float(total.ni),
        "ni_offline": float(offline.ni),
        "ni_online": float(online.ni),
        "dibc_ms": total.dibc_ms,
        "dibc_online_ms": online.dibc_ms,
        "ecibc_j": total.ecibc_j,
        "ecibc_online_j": online.ecibc_j,
        "drlc": failed / due if due else 0.0,
        "rdsl_bandwidth": float(np.mean(rdsl_b)) if rdsl_b else 0.0,
        "rdsl_power": float(np.mean(rdsl_p)) if rdsl_p else 0.0,
        "n_contracts": float(len(signing.contracts)) if signing else 0.0,
        "signing_rounds": float(signing.rounds) if signing else 0.0,
        "signing_converged": float(signing.converged) if signing else 1.0,
        "n_transactions": float(len(txs)),
        "served_per_transaction": float(sum(len(tx.alloc_client) for tx in txs)) / n_tx,
    }
    bounds = [tx.welfare_upper_bound for tx in txs]
    if bounds and all(bound is not None for bound in bounds):
        out["welfare_upper_bound"] = float(np.sum(bounds))  # type: ignore[arg-type]
    return out


def transaction_metrics(tx: TransactionRecord) -> dict[str, float]:
    """One transaction's SW, MU and BS utility, NI and DRLC (failed / due executions)."""
    return {"social_welfare": tx.social_welfare,
            "mu_utility": tx.mu_utility_comm + tx.mu_utility_sensing,
            "bs_utility": tx.bs_utility_comm + tx.bs_utility_sensing,
            "ni": tx.overhead.ni,
            "drlc": tx.contracts_failed / tx.contracts_due if tx.contracts_due else 0.0}


def client_utility(transactions: Sequence[TransactionRecord], client: int) -> float:
    """A client's realised utility over ``transactions``: value received minus payments and
    its penalties, plus the compensation it was paid (eq. 25-26 realised)."""
    return float(sum(tx.client_value[client] - tx.client_paid[client]
                     + tx.client_received[client] for tx in transactions))


def overhead_cost(overhead: Overhead, market: MarketConfig) -> float:
    """The price of an interaction overhead: ECIBC (J) and DIBC (ms) at the market's
    ``overhead_price_per_joule`` and ``overhead_price_per_ms``; the net welfare is SW minus it."""
    return (market.overhead_price_per_joule * overhead.ecibc_j
            + market.overhead_price_per_ms * overhead.dibc_ms)


def net_welfare(summary: dict[str, float], market: MarketConfig) -> float:
    """An episode's SW minus the price of its whole overhead (``episode_summary``'s totals,
    signing included)."""
    return summary["social_welfare"] - overhead_cost(
        Overhead(int(summary["ni"]), summary["dibc_ms"], summary["ecibc_j"]), market)


def per_bs_execution(contract_bs: NDArray[np.int64], transactions: Sequence[TransactionRecord],
                     n_bss: int) -> dict[str, NDArray[np.float64]]:
    """Per BS over ``transactions`` of one contract book: mean RDSL of bandwidth and power,
    and DRLC (contract executions failed, absent, breached or volunteered, over executions
    due)."""
    failed = np.zeros(n_bss)
    for tx in transactions:
        for rows in (tx.contract_absent, tx.contract_breached, tx.contract_volunteered):
            np.add.at(failed, contract_bs[rows], 1.0)
    due = np.bincount(contract_bs, minlength=n_bss) * len(transactions)
    return {"rdsl_bandwidth": np.mean([tx.rdsl_bandwidth for tx in transactions], axis=0),
            "rdsl_power": np.mean([tx.rdsl_power for tx in transactions], axis=0),
            "drlc": np.divide(failed, due, out=np.zeros(n_bss), where=due > 0)}
