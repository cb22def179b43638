"""The typed search (few bundle types, value affine in presence) is exact and both paths agree."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import numpy_only
from test_knapsack import exact_optimum

from isac_market_env.mechanisms import knapsack, typed_knapsack
from isac_market_env.mechanisms.knapsack import RELATIVE_GAP, VALUE_TOLERANCE, solve_knapsack
from isac_market_env.mechanisms.typed_knapsack import detect_structure, solve_typed

BUNDLE_BANDWIDTH = np.array([1.8e6, 8.1e6, 14.4e6, 14.4e6])
BUNDLE_POWER = np.array([1.0, 4.5, 8.0, 1.0])


def typed_instance(rng: np.random.Generator, max_items: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A BS selection as the first signing rounds pose it: a few bundles, presence-scaled risk
    rows that bind, and a value affine in presence within each bundle."""
    n = int(rng.integers(6, max_items))
    bundle = rng.integers(0, int(rng.integers(1, 5)), n)
    presence = rng.uniform(0.6, 0.97, n)
    booked = np.vstack([BUNDLE_BANDWIDTH[bundle], BUNDLE_POWER[bundle]])
    weights = np.vstack([booked, presence * booked])
    alpha = rng.uniform(0.0, 0.5, 4)[bundle] * booked[0] / 1e7
    beta = rng.uniform(0.5, 1.5, 4)[bundle] * booked[0] / 1e7
    values = alpha + beta * presence
    caps = booked.sum(axis=1) * rng.uniform(0.2, 0.8)
    caps = np.concatenate([caps, caps * rng.uniform(0.6, 0.95)])
    return values, weights, caps


def brute_force(values: np.ndarray, weights: np.ndarray, caps: np.ndarray) -> float:
    best = 0.0
    for chosen in itertools.product([False, True], repeat=len(values)):
        mask = np.array(chosen)
        if np.all(weights[:, mask].sum(axis=1) <= caps):
            best = max(best, float(values[mask].sum()))
    return best


@pytest.fixture(params=["compiled", "numpy"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "compiled":
        pytest.importorskip("numba")
        assert knapsack.load_compiled_solver()
        assert typed_knapsack.compiled_typed_search() is not None
    else:
        numpy_only(monkeypatch)
    return str(request.param)


def solve(values: np.ndarray, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    selected = solve_typed(values, weights, caps, RELATIVE_GAP, VALUE_TOLERANCE)
    assert selected is not None
    return selected


@pytest.mark.usefixtures("backend")
def test_matches_brute_force_on_small_instances() -> None:
    rng = np.random.default_rng(1)
    for _ in range(150):
        values, weights, caps = typed_instance(rng, 13)
        selected = solve(values, weights, caps)
        assert np.all(weights[:, selected].sum(axis=1) <= caps)
        optimum = brute_force(values, weights, caps)
        assert values[selected].sum() >= optimum * (1 - RELATIVE_GAP) - 1e-12


def test_matches_milp_on_larger_instances() -> None:
    """Up to 36 items; an instance that needs more than ``NODE_LIMIT`` nodes is declined (it
    goes to HiGHS): one of these 200 needs 1.3 million. (Both paths select the same items: see
    the next test.)"""
    rng = np.random.default_rng(2)
    declined = 0
    for _ in range(200):
        values, weights, caps = typed_instance(rng, 36)
        selected = solve_typed(values, weights, caps, RELATIVE_GAP, VALUE_TOLERANCE)
        if selected is None:
            declined += 1
            continue
        assert np.all(weights[:, selected].sum(axis=1) <= caps)
        optimum = exact_optimum(values, weights, caps)
        assert values[selected].sum() >= optimum * (1 - 1.01 * RELATIVE_GAP)
    assert declined <= 2


def test_compiled_and_python_search_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    assert typed_knapsack.compiled_typed_search() is not None
    rng = np.random.default_rng(3)
    cases = [typed_instance(rng, 40) for _ in range(300)]
    compiled = [solve(*case) for case in cases]
    numpy_only(monkeypatch)
    for case, fast in zip(cases, compiled, strict=True):
        assert np.array_equal(solve(*case), fast)


def test_instances_without_the_structure_are_declined() -> None:
    rng = np.random.default_rng(4)
    values, weights, _ = typed_instance(rng, 30)
    while len(values) < 10:
        values, weights, _ = typed_instance(rng, 30)
    assert detect_structure(values, weights) is not None
    bumped = values.copy()
    bumped[0] *= 1.01  # value no longer affine in presence within its bundle
    assert detect_structure(bumped, weights) is None
    decreasing = weights[2] / weights[0] * -1.0 + 2.0  # value falling with presence
    assert detect_structure(decreasing * weights[0] / 1e7, weights) is None
    assert detect_structure(values, rng.uniform(1, 2, weights.shape)) is None  # no types
    assert detect_structure(values, weights[:2]) is None  # no presence-scaled rows


def test_solve_knapsack_hands_typed_instances_to_the_typed_search() -> None:
    """What the branch and bound gives up on goes to the typed search, conflicts to HiGHS."""
    rng = np.random.default_rng(5)
    values, weights, caps = typed_instance(rng, 40)
    while len(values) < 25:
        values, weights, caps = typed_instance(rng, 40)
    result = solve_knapsack(values, weights, caps, node_limit=1)
    assert result.solver == "typed-search"
    assert result.value >= exact_optimum(values, weights, caps) * (1 - 1.01 * RELATIVE_GAP)
    with_pair = solve_knapsack(values, weights, caps, node_limit=1,
                               conflicts=np.array([[0, 1]]))
    assert with_pair.solver == "milp"
