"""Greedy volunteer rule and its expectation (exact enumeration vs Monte Carlo)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import numpy_only

from isac_market_env.mechanisms import matching, volunteers
from isac_market_env.mechanisms.volunteers import (
    VolunteerModel,
    expected_volunteer_rate,
    expected_volunteer_rates,
    select_volunteers,
    select_volunteers_batch,
)


def test_volunteers_make_demand_fit_and_are_cheapest_first() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        b, p = rng.uniform(1, 10, n), rng.uniform(1, 5, n)
        pel = rng.uniform(0.1, 3.0, n)
        present = rng.random(n) < 0.8
        cap_b, cap_p = 0.6 * b.sum(), 0.6 * p.sum()
        vol = select_volunteers(present, b, p, pel, cap_b, cap_p)
        assert not np.any(vol & ~present)
        kept = present & ~vol
        assert b[kept].sum() <= cap_b + 1e-9 and p[kept].sum() <= cap_p + 1e-9
        if vol.any():  # greedy stops at the first fit: without its last pick it did not fit
            use_b = b[present].sum() > cap_b
            use_p = p[present].sum() > cap_p
            assert use_b or use_p
            score = pel / (use_b * b / cap_b + use_p * p / cap_p)
            order = np.lexsort((np.arange(n), score))
            last = [i for i in order if vol[i]][-1]
            back = kept.copy()
            back[last] = True
            assert b[back].sum() > cap_b + 1e-9 or p[back].sum() > cap_p + 1e-9


def test_no_volunteer_without_overload() -> None:
    b, p = np.array([1.0, 2.0]), np.array([1.0, 1.0])
    assert not select_volunteers(np.array([True, True]), b, p, np.ones(2), 3.0, 2.0).any()


def test_batch_equals_single_case_rule() -> None:
    rng = np.random.default_rng(1)
    n = 8
    b, p, pel = rng.uniform(1, 10, n), rng.uniform(1, 5, n), rng.uniform(0.1, 3, n)
    cases = rng.random((64, n)) < 0.7
    batch = select_volunteers_batch(cases, b, p, pel, 25.0, 12.0)
    for row, case in zip(batch, cases, strict=True):
        assert np.array_equal(row, select_volunteers(case, b, p, pel, 25.0, 12.0))


def test_exact_enumeration_agrees_with_monte_carlo() -> None:
    rng = np.random.default_rng(5)
    n = 10
    prob = rng.uniform(0.6, 0.95, n)
    b, p, pel = rng.uniform(1, 10, n), rng.uniform(1, 5, n), rng.uniform(0.5, 2, n)
    cap_b, cap_p = 0.7 * b.sum(), 0.8 * p.sum()
    exact = expected_volunteer_rate(prob, b, p, pel, cap_b, cap_p, 16, None)
    samples = 20_000
    mc = expected_volunteer_rate(prob, b, p, pel, cap_b, cap_p, 0,
                                 rng.random((samples, n)))
    assert exact > 0.01
    # the rate is a ratio of a bounded mean; 5 standard errors of a [0, 1] mean is generous
    assert abs(exact - mc) < 5 * 0.5 / np.sqrt(samples) * n / prob.sum()


def test_compiled_rule_equals_numpy_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled volunteer rule (``fast`` extra) gives the numpy probabilities, volunteer
    counts and masks exactly, so E[v] and the transactions' volunteers do not depend on numba
    (exact and Monte Carlo, with ties in the greedy order and resources that do not add exactly
    in floating point)."""
    pytest.importorskip("numba")
    kernels = volunteers.compiled_volunteer_kernels()
    assert kernels is not None
    kernel = kernels.cases
    rng = np.random.default_rng(7)
    for trial in range(300):
        n = int(rng.integers(1, 13))
        prob = rng.uniform(0.6, 0.97, n)
        b = rng.choice([1.8e6, 8.1e6, 14.4e6], n) if trial % 2 else rng.uniform(0.1, 10, n) / 3
        p = rng.choice([1.0, 4.5, 8.0], n) if trial % 2 else rng.uniform(0.1, 5, n) / 7
        pel = rng.choice([0.5, 1.0], n) if trial % 3 == 0 else rng.uniform(0.1, 3, n)
        cap_b, cap_p = rng.uniform(0.4, 1.0) * b.sum(), rng.uniform(0.4, 1.0) * p.sum()
        exact = trial % 4 != 0
        draws = np.zeros((0, n)) if exact else rng.random((64, n))
        args = (prob, b, p, pel, cap_b, cap_p, exact, draws)
        weights, counts = kernel(*args, np.zeros((0, n), dtype=bool))
        numpy_weights, numpy_counts, _ = volunteers._volunteer_cases_with_numpy(*args)
        assert np.array_equal(weights, numpy_weights) and np.array_equal(counts, numpy_counts)
        rate, own = expected_volunteer_rates(prob, b, p, pel, cap_b, cap_p, 12 if exact else 0,
                                             None if exact else draws)
        present = rng.random(n) < 0.8
        mask = select_volunteers(present, b, p, pel, cap_b, cap_p)
        with monkeypatch.context() as patch:
            numpy_only(patch)
            numpy_rate, numpy_own = expected_volunteer_rates(
                prob, b, p, pel, cap_b, cap_p, 12 if exact else 0, None if exact else draws)
            assert numpy_rate == rate and np.array_equal(numpy_own, own)
            assert np.array_equal(select_volunteers(present, b, p, pel, cap_b, cap_p), mask)


def test_compiled_exact_estimate_skips_only_cases_without_volunteers() -> None:
    """The compiled exact E[#volunteers] walks only the participation cases that may overload
    the BS; it equals the probability-weighted sum over all 2^n cases to the last bit, also
    when a supply equals a subset's demand exactly (the walk's margin is what keeps it exact)."""
    pytest.importorskip("numba")
    kernels = volunteers.compiled_volunteer_kernels()
    assert kernels is not None
    expected = kernels.expected
    rng = np.random.default_rng(3)
    overloaded = walked_twice = 0
    for trial in range(600):
        n = int(rng.integers(1, 17))
        prob = rng.uniform(0.6, 0.97, n)
        if trial % 3:
            b, p = rng.uniform(0.1, 10, n) / 3, rng.uniform(0.1, 5, n) / 7
        else:
            b, p = rng.choice([1.8e6, 8.1e6, 14.4e6], n), rng.choice([1.0, 4.5, 8.0], n)
        pel = rng.uniform(0.1, 3, n)
        if trial % 2:  # supplies exactly at a subset's demand, summed left to right
            subset = rng.random(n) < 0.8
            subset[0] = True
            cap_b = float(np.cumsum(np.where(subset, b, 0.0))[-1])
            cap_p = float(np.cumsum(np.where(subset, p, 0.0))[-1])
        else:
            cap_b, cap_p = rng.uniform(0.4, 1.0) * b.sum(), rng.uniform(0.4, 1.0) * p.sum()
        weights, counts, each = volunteers._volunteer_cases_with_numpy(
            prob, b, p, pel, cap_b, cap_p, True, np.zeros((0, n)))
        total = float(np.cumsum(weights * counts)[-1])
        per_contract = np.zeros(n)
        assert expected(prob, b, p, pel, cap_b, cap_p, per_contract) == total
        assert np.array_equal(per_contract, each)  # each contract's Pr(volunteered), bit for bit
        assert per_contract.sum() == pytest.approx(total, rel=1e-12, abs=1e-15)
        overloaded += total > 0
        walked_twice += (counts > 0).sum() > volunteers.FIRST_CASES  # its arrays were too small
    assert overloaded > 300 and 30 < walked_twice < overloaded - 100


def test_compiled_signing_rounds_publish_the_numpy_estimate() -> None:
    """The compiled signing rounds publish each BS's E[v] from its tentative contracts exactly
    and each contract's own, as ``VolunteerModel.rates`` does on the numpy path (exact and Monte
    Carlo)."""
    pytest.importorskip("numba")
    assert matching.compiled_kernels() is not None
    rng = np.random.default_rng(11)
    n_bss, published = 3, 0
    for _ in range(150):
        n_clients = int(rng.integers(1, 30))
        sol_client = np.repeat(np.arange(n_clients), 2)  # two solutions per client
        sol_bs = rng.integers(0, n_bss, 2 * n_clients)
        held = np.where(rng.random(n_clients) < 0.8,
                        2 * np.arange(n_clients) + rng.integers(0, 2, n_clients), -1)
        held_pay = rng.uniform(0.1, 5.0, n_clients)
        presence = rng.uniform(0.5, 0.99, 2 * n_clients)
        bundles = np.vstack([rng.choice([1.8e6, 8.1e6], 2 * n_clients),
                             rng.uniform(0.5, 5.0, 2 * n_clients)])
        weights = np.vstack([bundles, presence * bundles])
        model = VolunteerModel(rng.uniform(5e6, 3e7, n_bss), rng.uniform(3.0, 20.0, n_bss),
                               int(rng.integers(0, 12)), rng.random((32, n_clients)))
        for j in range(n_bss):
            contracts = held[held >= 0]
            contracts = contracts[sol_bs[contracts] == j]
            clients = sol_client[contracts]
            rate, own = model.rates(j, clients, presence[contracts], bundles[0, contracts],
                                    bundles[1, contracts], 0.5 * held_pay[clients])
            n_sol = len(sol_client)
            state = matching.MatchingState(
                np.zeros(4, dtype=np.int64), np.arange(n_sol), np.zeros(n_clients, dtype=np.int64),
                np.zeros(n_sol, dtype=bool), np.zeros(n_sol, dtype=np.int64),
                np.zeros(n_bss, dtype=np.int64), np.zeros(n_sol, dtype=np.int64),
                np.zeros(n_clients, dtype=np.int64), np.ones(n_sol, dtype=bool), held, held_pay,
                np.zeros(n_sol), np.zeros(n_bss), np.zeros(n_bss, dtype=np.int64),
                np.full(n_clients, -1.0))
            sols = matching.SolutionTable(sol_bs, sol_client, np.ones(n_sol), presence,
                                          np.zeros(n_sol), np.full(n_sol, np.inf), weights,
                                          np.ones(n_sol), np.ones(n_sol, dtype=bool),
                                          np.searchsorted(sol_client, np.arange(n_clients + 1)))
            bss = matching.BSTable(np.ones((n_bss, 4)), model.supply_bandwidth_hz,
                                   model.supply_power_w, model.uniforms)
            terms = matching.MatchingTerms(10, 10, 0.3, 0.5, False, 1000, True,
                                           model.exact_max_contracts, True)
            assert matching._volunteer_rate_kernel(j, state, sols, bss, terms) == rate
            assert np.array_equal(state.held_rate[clients], own)
            # the BS's rate is the presence-weighted mean of its contracts' own rates
            if rate > 0:
                assert rate == pytest.approx(float(np.dot(own, presence[contracts])
                                                   / presence[contracts].sum()), rel=1e-9)
            published += rate > 0
    assert published > 100
