"""The typed searches (few bundle types; affine or any values, conflicting pairs) are exact, and
the compiled and CPython paths agree."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from conftest import numpy_only
from test_knapsack import exact_optimum

from isac_market_env.mechanisms import knapsack, typed_knapsack
from isac_market_env.mechanisms.knapsack import RELATIVE_GAP, VALUE_TOLERANCE, solve_knapsack
from isac_market_env.mechanisms.typed_knapsack import detect_structure, solve_typed

BUNDLE_BANDWIDTH = np.array([1.8e6, 8.1e6, 14.4e6, 14.4e6])
BUNDLE_POWER = np.array([1.0, 4.5, 8.0, 1.0])


def typed_instance(rng: np.random.Generator, max_items: int, affine: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A BS selection as the signing rounds pose it: a few bundles, presence-scaled risk rows
    that bind, and a value affine in presence within each bundle (first rounds, everyone at the
    reserve price) or not (``affine=False``: bids have risen unevenly)."""
    n = int(rng.integers(6, max_items))
    bundle = rng.integers(0, int(rng.integers(1, 5)), n)
    presence = rng.uniform(0.6, 0.97, n)
    booked = np.vstack([BUNDLE_BANDWIDTH[bundle], BUNDLE_POWER[bundle]])
    weights = np.vstack([booked, presence * booked])
    alpha = rng.uniform(0.0, 0.5, 4)[bundle] * booked[0] / 1e7
    beta = rng.uniform(0.5, 1.5, 4)[bundle] * booked[0] / 1e7
    values = alpha + beta * presence
    if not affine:
        values = values * rng.uniform(0.7, 1.3, n)
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


def random_pairs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Up to three conflicting pairs (a client's held and new solution at one BS)."""
    return np.array([rng.choice(n, 2, replace=False) for _ in range(int(rng.integers(0, 4)))],
                    dtype=np.int64).reshape(-1, 2)


def solve(values: np.ndarray, weights: np.ndarray, caps: np.ndarray,
          pairs: np.ndarray | None = None) -> np.ndarray:
    selected = solve_typed(values, weights, caps, RELATIVE_GAP, VALUE_TOLERANCE, pairs)
    assert selected is not None
    return selected


def pair_rows(pairs: np.ndarray, n: int) -> np.ndarray:
    rows = np.zeros((len(pairs), n))
    rows[np.arange(len(pairs))[:, None], pairs] = 1.0
    return rows


def check_with_pairs(values: np.ndarray, weights: np.ndarray, caps: np.ndarray,
                     pairs: np.ndarray,
                     optimum_of: Callable[[np.ndarray, np.ndarray, np.ndarray], float]) -> None:
    """The typed search's selection is feasible, keeps one of each pair, and is optimal to
    the gap (``optimum_of``: brute force or HiGHS, the pairs as rows x_a + x_b <= 1)."""
    selected = solve(values, weights, caps, pairs)
    assert np.all(weights[:, selected].sum(axis=1) <= caps)
    assert not np.any(selected[pairs].all(axis=1))
    optimum = optimum_of(values, np.vstack([weights, pair_rows(pairs, len(values))]),
                         np.r_[caps, np.ones(len(pairs))])
    assert values[selected].sum() >= optimum * (1 - 1.01 * RELATIVE_GAP) - 1e-12


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


@pytest.mark.usefixtures("backend")
@pytest.mark.filterwarnings("error")
def test_general_search_matches_brute_force_with_pairs() -> None:
    rng = np.random.default_rng(6)
    for case in range(150):
        values, weights, caps = typed_instance(rng, 13, affine=False)
        if case % 5 == 0:
            caps[2:] = np.inf  # risk control off
        check_with_pairs(values, weights, caps, random_pairs(rng, len(values)), brute_force)


def test_general_search_matches_milp_on_larger_instances() -> None:
    """Values not affine in presence, with pairs. (Affine instances with pairs also go to the
    general search, whose bound is the LP's and cannot see the subset-sum: 5 of 100 exceed
    ``NODE_LIMIT`` and go to HiGHS.)"""
    rng = np.random.default_rng(7)
    for _ in range(150):
        values, weights, caps = typed_instance(rng, 40, affine=False)
        check_with_pairs(values, weights, caps, random_pairs(rng, len(values)), exact_optimum)


def test_compiled_and_python_search_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    assert typed_knapsack.compiled_typed_search() is not None
    assert typed_knapsack.compiled_general_search() is not None
    rng = np.random.default_rng(3)
    cases: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = [
        (*typed_instance(rng, 40), None) for _ in range(200)]
    for _ in range(200):
        values, weights, caps = typed_instance(rng, 40, affine=False)
        cases.append((values, weights, caps, random_pairs(rng, len(values))))
    compiled = [solve_typed(v, w, c, RELATIVE_GAP, VALUE_TOLERANCE, p) for v, w, c, p in cases]
    assert sum(selected is None for selected in compiled) <= 2  # beyond NODE_LIMIT: HiGHS
    numpy_only(monkeypatch)
    for (v, w, c, p), fast in zip(cases, compiled, strict=True):
        slow = solve_typed(v, w, c, RELATIVE_GAP, VALUE_TOLERANCE, p)
        if fast is None:
            assert slow is None
        else:
            assert slow is not None and np.array_equal(slow, fast)


def test_structure_is_recognised_or_declined() -> None:
    """Affine and non-affine typed instances are told apart; untyped ones are declined."""
    rng = np.random.default_rng(4)
    values, weights, caps = typed_instance(rng, 30)
    while len(values) < 10:
        values, weights, caps = typed_instance(rng, 30)
    structure = detect_structure(values, weights)
    assert structure is not None and structure.affine
    bumped = values.copy()
    bumped[0] *= 1.01  # value no longer affine in presence within its bundle
    assert not detect_structure(bumped, weights).affine  # type: ignore[union-attr]
    assert solve_typed(bumped, weights, caps, RELATIVE_GAP, VALUE_TOLERANCE) is not None
    falling = 2.0 - weights[2] / weights[0]  # value falling with presence
    assert not detect_structure(falling * weights[0] / 1e7, weights).affine  # type: ignore[union-attr]
    assert detect_structure(values, rng.uniform(1, 2, weights.shape)) is None  # no types
    assert detect_structure(values, weights[:2]) is None  # no presence-scaled rows
    negative = np.r_[caps[:2], -1.0, caps[3]]  # nothing fits, not even the empty selection
    for case in (values, bumped):  # the affine and the general search
        assert solve_typed(case, weights, negative, RELATIVE_GAP, VALUE_TOLERANCE) is None


def test_solve_knapsack_hands_hard_selections_to_the_typed_searches() -> None:
    """What the branch and bound gives up on goes to a typed search; the rest gets HiGHS's
    selection (compiled, often proven without calling HiGHS)."""
    rng = np.random.default_rng(5)
    for affine, pairs in ((True, None), (False, np.array([[0, 1]]))):
        values, weights, caps = typed_instance(rng, 40, affine)
        while len(values) < 25:
            values, weights, caps = typed_instance(rng, 40, affine)
        result = solve_knapsack(values, weights, caps, node_limit=1, conflicts=pairs)
        assert result.solver == "typed-search"
        if pairs is not None:
            weights, caps = np.vstack([weights, pair_rows(pairs, len(values))]), np.r_[caps, 1.0]
        assert result.value >= exact_optimum(values, weights, caps) * (1 - 1.01 * RELATIVE_GAP)
    untyped = rng.uniform(1.0, 2.0, weights.shape)
    result = solve_knapsack(values, untyped, untyped.sum(axis=1) / 3, node_limit=1)
    assert result.solver in ("milp", "proven-milp")


@pytest.mark.parametrize("block_rows", [1, 7, 1 << 16, 0])
def test_count_vectors_are_every_fitting_vector_in_order(block_rows: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The enumeration is every (k_t) within the capacity rows, in lexicographic order, whatever
    the block of extensions built at once (numpy) or walked depth first (compiled, block 0);
    past the cap it gives up (None)."""
    if block_rows:
        numpy_only(monkeypatch)
        monkeypatch.setattr(typed_knapsack, "COUNT_BLOCK_ROWS", block_rows)
    else:
        pytest.importorskip("numba")
        assert typed_knapsack.compiled_count_vectors() is not None
    rng = np.random.default_rng(7)
    for _ in range(40):
        n_types = int(rng.integers(1, 5))
        sizes = rng.integers(0, 6, n_types)
        levels = rng.uniform(0.0, 3.0, (n_types, 2))
        levels[rng.random((n_types, 2)) < 0.15] = 0.0
        caps = rng.uniform(1.0, 12.0, 2)
        expected = np.array([k for k in itertools.product(*(range(s + 1) for s in sizes))
                             if np.all(np.asarray(k) @ levels <= caps)], dtype=np.int64)
        got = typed_knapsack._count_vectors(sizes, levels, caps)
        assert got is not None and np.array_equal(got, expected.reshape(got.shape))
        monkeypatch.setattr(typed_knapsack, "MAX_COUNT_VECTORS", len(expected))  # just enough
        got = typed_knapsack._count_vectors(sizes, levels, caps)
        assert got is not None and np.array_equal(got, expected.reshape(got.shape))
        monkeypatch.setattr(typed_knapsack, "MAX_COUNT_VECTORS", len(expected) - 1)
        if len(expected) > 1:
            assert typed_knapsack._count_vectors(sizes, levels, caps) is None
        monkeypatch.setattr(typed_knapsack, "MAX_COUNT_VECTORS", 200_000)
