"""Volunteer selection (paper Sec. IV) and its expectation E[v] (App. B, eq. 66-68).

When the present contracted demand of a BS exceeds its real supply, the BS volunteers contracts
greedily: lowest PelS per unit of the overloaded resources first (each resource normalised by the
BS's supply), until the remaining demand fits both supplies. Volunteers receive PelS.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]


def select_volunteers(present: BoolArray, bandwidth_hz: FloatArray, power_w: FloatArray,
                      compensation: FloatArray, supply_bandwidth_hz: float,
                      supply_power_w: float) -> BoolArray:
    """Volunteer mask for one transaction at one BS (greedy rule above)."""
    return select_volunteers_batch(np.asarray(present, dtype=bool)[None, :], bandwidth_hz, power_w,
                                   compensation, supply_bandwidth_hz, supply_power_w)[0]


def select_volunteers_batch(present: BoolArray, bandwidth_hz: FloatArray, power_w: FloatArray,
                            compensation: FloatArray, supply_bandwidth_hz: float,
                            supply_power_w: float) -> BoolArray:
    """The greedy rule applied to many participation cases at once: ``present`` is (cases, n)."""
    n = present.shape[1]
    volunteers = np.zeros_like(present, dtype=bool)
    if n == 0:
        return volunteers
    demand_b = present @ bandwidth_hz
    demand_p = present @ power_w
    tol_b = 1e-9 * max(supply_bandwidth_hz, 1.0)
    tol_p = 1e-9 * max(supply_power_w, 1.0)
    over_b = demand_b > supply_bandwidth_hz + tol_b
    over_p = demand_p > supply_power_w + tol_p
    for use_b, use_p in ((True, False), (False, True), (True, True)):
        rows = np.flatnonzero((over_b == use_b) & (over_p == use_p))
        if rows.size == 0:
            continue
        size = (use_b * bandwidth_hz / supply_bandwidth_hz + use_p * power_w / supply_power_w)
        score = compensation / np.maximum(size, 1e-300)
        order = np.lexsort((np.arange(n), score))
        x = present[np.ix_(rows, order)]
        freed_b = np.cumsum(x * bandwidth_hz[order], axis=1)
        freed_p = np.cumsum(x * power_w[order], axis=1)
        fits = ((demand_b[rows, None] - freed_b <= supply_bandwidth_hz + tol_b)
                & (demand_p[rows, None] - freed_p <= supply_power_w + tol_p))
        stop = np.argmax(fits, axis=1)  # the full set always fits (demand 0)
        chosen = x & (np.arange(n)[None, :] <= stop[:, None])
        block = np.zeros((rows.size, n), dtype=bool)
        block[:, order] = chosen
        volunteers[rows] = block
    return volunteers


def expected_volunteer_rate(presence_prob: FloatArray, bandwidth_hz: FloatArray,
                            power_w: FloatArray, compensation: FloatArray,
                            supply_bandwidth_hz: float, supply_power_w: float,
                            exact_max_contracts: int,
                            uniforms: FloatArray | None) -> float:
    """E[#volunteers] / E[#present contracts] of one BS's contract set: the published E[v].

    Contracts are present independently with ``presence_prob``. Up to ``exact_max_contracts``
    contracts every participation case is enumerated and weighted by its probability (eq. 66);
    above, ``uniforms`` (samples x contracts, common random numbers) give a Monte Carlo estimate.
    """
    n = len(presence_prob)
    if n == 0:
        return 0.0
    if bandwidth_hz.sum() <= supply_bandwidth_hz and power_w.sum() <= supply_power_w:
        return 0.0
    expected_present = float(presence_prob.sum())
    if expected_present <= 0:
        return 0.0
    if n <= exact_max_contracts:
        cases = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
        weights = np.prod(np.where(cases, presence_prob, 1.0 - presence_prob), axis=1)
    else:
        if uniforms is None or uniforms.shape[1] != n:
            raise ValueError("Monte Carlo volunteer estimate needs one uniform column per contract")
        cases = uniforms < presence_prob[None, :]
        weights = np.full(len(cases), 1.0 / len(cases))
    volunteers = select_volunteers_batch(cases, bandwidth_hz, power_w, compensation,
                                         supply_bandwidth_hz, supply_power_w)
    return float(weights @ volunteers.sum(axis=1)) / expected_present
