"""Expected utilities and risk of clients and BSs (eq. 27, 28, 33, 34, 69-74).

Penalties are proportional to the payment (docs/model.md, Clients, contracts, utilities):
PelU = lambda_U * Pay (client absent), PelS = lambda_S * Pay (BS volunteers the client).
``presence`` is E[alpha_i] (MU) or E[beta_k] (coalition); ``volunteer`` is E[v], the
probability that a present contract is volunteered.
Every function broadcasts over arrays of contracts (scalars are accepted too).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Values = NDArray[np.float64] | float


def client_expected_utility(value: Values, pay: Values, presence: Values, volunteer: Values,
                            penalty_client_ratio: float, penalty_bs_ratio: float) -> FloatArray:
    """Eq. 27 / 28: ``a (1-v)(V - Pay) - (1-a) PelU + a v PelS``."""
    return np.asarray(np.multiply(presence, 1.0 - np.asarray(volunteer)) * np.subtract(value, pay)
                      - np.multiply(1.0 - np.asarray(presence), penalty_client_ratio) * pay
                      + np.multiply(presence, volunteer) * penalty_bs_ratio * pay,
                      dtype=np.float64)


def client_max_utility(value: Values, pay: Values, penalty_bs_ratio: float) -> FloatArray:
    """``u_max`` of eq. 71: the best realised utility (served, or volunteered and compensated)."""
    return np.asarray(np.maximum(np.subtract(value, pay), np.multiply(penalty_bs_ratio, pay)),
                      dtype=np.float64)


def client_risk(value: Values, pay: Values, presence: Values, volunteer: Values,
                utility_threshold: Values, penalty_client_ratio: float,
                penalty_bs_ratio: float) -> FloatArray:
    """Markov bound of eq. 73 / 74 on Pr(u <= u_min): ``(u_max - E[u]) / (u_max - u_min)``.

    Returns ``inf`` where ``u_max <= u_min`` (the contract can never beat the threshold).
    """
    u_max = client_max_utility(value, pay, penalty_bs_ratio)
    expected = client_expected_utility(value, pay, presence, volunteer, penalty_client_ratio,
                                       penalty_bs_ratio)
    span = u_max - np.asarray(utility_threshold)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(span > 0, (u_max - expected) / np.where(span > 0, span, 1.0), np.inf)
    return np.asarray(ratio, dtype=np.float64)


def bs_expected_contract_value(pay: Values, presence: Values, volunteer: Values,
                               penalty_client_ratio: float, penalty_bs_ratio: float) -> FloatArray:
    """One contract's term of eq. 33 / 34: ``(1-v) a Pay + (1-a) PelU - a v PelS``."""
    share = (np.multiply(1.0 - np.asarray(volunteer), presence)
             + np.multiply(1.0 - np.asarray(presence), penalty_client_ratio)
             - np.multiply(presence, volunteer) * penalty_bs_ratio)
    return np.asarray(np.multiply(pay, share), dtype=np.float64)
