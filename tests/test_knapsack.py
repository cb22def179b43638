"""The BS client selection equals the exact MILP optimum (scipy.optimize.milp / HiGHS)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import numpy_only
from scipy.optimize import Bounds, LinearConstraint, milp

from isac_market_env.mechanisms import knapsack
from isac_market_env.mechanisms.knapsack import MAX_SEARCH_DEPTH, solve_knapsack


def exact_optimum(values: np.ndarray, weights: np.ndarray, caps: np.ndarray) -> float:
    res = milp(-values, constraints=LinearConstraint(weights, -np.inf, caps),
               integrality=np.ones(len(values)), bounds=Bounds(0, 1),
               options={"mip_rel_gap": 0.0})
    return float(-res.fun)


def random_instance(rng: np.random.Generator, max_items: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values (some negative), sparse weights with 1-4 constraints, capacities that bind."""
    n = int(rng.integers(1, max_items))
    m = int(rng.integers(1, 5))
    weights = rng.uniform(0.0, 10.0, (m, n)) * (rng.random((m, n)) < 0.9)
    caps = rng.uniform(0.2, 0.7, m) * weights.sum(axis=1) + 1e-3
    values = rng.uniform(-1.0, 10.0, n)
    return values, weights, caps


@pytest.fixture(params=["compiled", "numpy"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with numba's compiled solver (when installed) and with the numpy one."""
    if request.param == "compiled":
        pytest.importorskip("numba")
        assert knapsack.load_compiled_solver()
    else:
        numpy_only(monkeypatch)
    return str(request.param)


@pytest.mark.usefixtures("backend")
def test_matches_milp_on_random_instances() -> None:
    rng = np.random.default_rng(2024)
    for _ in range(250):
        values, weights, caps = random_instance(rng, 30)
        result = solve_knapsack(values, weights, caps)
        assert np.all(weights[:, result.selected].sum(axis=1) <= caps + 1e-6)
        assert np.isclose(result.value, values[result.selected].sum())
        assert result.value >= exact_optimum(np.maximum(values, 0), weights, caps) - 1e-6


@pytest.mark.usefixtures("backend")
def test_market_like_instances_with_risk_rows() -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        n = int(rng.integers(5, 35))
        a = rng.uniform(0.64, 0.96, n)
        w = np.vstack([rng.choice([10.0, 45.0, 80.0], n), rng.choice([1.0, 4.5, 8.0], n)])
        weights = np.vstack([w, a * w])
        values = 0.02 * w[0] + 0.1 * w[1] + rng.uniform(0, 2, n)
        caps = np.array([600.0, 60.0, 475.0, 47.5])
        result = solve_knapsack(values, weights, caps)
        assert np.isclose(result.value, exact_optimum(values, weights, caps), atol=1e-6)


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("node_limit", [3_000, 0])  # 0: every instance goes to HiGHS
def test_conflicting_pairs_match_milp(node_limit: int) -> None:
    """At most one item of each conflicting pair (a held and a new solution of one client)."""
    rng = np.random.default_rng(11)
    for _ in range(150):
        values, weights, caps = random_instance(rng, 25)
        n = len(values)
        if n < 2:
            continue
        pairs = np.array([rng.choice(n, 2, replace=False) for _ in range(int(rng.integers(1, 4)))])
        if rng.random() < 0.5:  # often all items fit: only the conflicts bind
            caps = weights.sum(axis=1) + 1.0
        rows = np.zeros((len(pairs), n))
        rows[np.arange(len(pairs))[:, None], pairs] = 1.0
        result = solve_knapsack(values, weights, caps, conflicts=pairs, node_limit=node_limit)
        assert not np.any(result.selected[pairs].all(axis=1))
        assert np.all(weights[:, result.selected].sum(axis=1) <= caps + 1e-6)
        exact = exact_optimum(np.maximum(values, 0), np.vstack([weights, rows]),
                              np.r_[caps, np.ones(len(pairs))])
        assert result.value == pytest.approx(exact, rel=1e-6, abs=1e-6)


def test_ties_are_broken_deterministically() -> None:
    values = np.ones(6)
    weights = np.ones((1, 6))
    first = solve_knapsack(values, weights, np.array([3.0]))
    again = solve_knapsack(values, weights, np.array([3.0]))
    assert first.selected.sum() == 3
    assert np.array_equal(first.selected, again.selected)


def test_incumbent_does_not_change_the_optimum() -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        n = 20
        weights = rng.uniform(1, 10, (2, n))
        caps = weights.sum(axis=1) * 0.4
        values = rng.uniform(1, 5, n)
        base = solve_knapsack(values, weights, caps)
        hinted = solve_knapsack(values, weights, caps, incumbent=np.zeros(n, dtype=bool))
        assert np.isclose(base.value, hinted.value)


@pytest.mark.usefixtures("backend")
def test_instances_deeper_than_the_search_go_to_highs() -> None:
    """A BS facing more proposals than ``MAX_SEARCH_DEPTH`` (markets of 2,000 MUs) gets HiGHS's
    selection: from HiGHS, or compiled, proven to be the one HiGHS returns."""
    rng = np.random.default_rng(3)
    n = MAX_SEARCH_DEPTH + 200
    weights = rng.uniform(1.0, 10.0, (2, n))
    values = rng.uniform(0.0, 10.0, n)
    caps = 0.1 * weights.sum(axis=1)
    result = solve_knapsack(values, weights, caps)
    assert result.solver in ("milp", "proven-milp")
    assert result.nodes == 0  # the search itself never started
    slack = caps + knapsack.CAPACITY_TOLERANCE * np.maximum(1.0, caps)
    highs = knapsack._milp(values, weights, slack)
    assert np.array_equal(np.flatnonzero(result.selected), highs)
    assert result.value == pytest.approx(exact_optimum(values, weights, caps), rel=1e-6)


def highs_window(values: np.ndarray, weights: np.ndarray, caps: np.ndarray, pairs: np.ndarray,
                 optimum: float) -> list[int]:
    """By brute force, every selection (bit mask) that ``_prove_highs_selection`` counts as one
    HiGHS may return: feasible for the widened capacities, no conflict, worth at least the
    floor below ``optimum``."""
    margin = knapsack.HIGHS_MARGIN
    wide = caps + margin * (1.0 + np.abs(caps) + weights.sum(axis=1))
    floor = optimum - margin * (max(1.0, abs(optimum)) + values.sum())
    n = len(values)
    masks = np.arange(2 ** n)
    chosen = (masks[:, None] >> np.arange(n)) & 1
    fits = np.all(chosen @ weights.T <= wide, axis=1)
    for a, b in pairs:
        fits &= ~((chosen[:, a] == 1) & (chosen[:, b] == 1))
    return masks[fits & (chosen @ values >= floor)].tolist()


def proof_instance(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A candidate set as ``_milp`` gets it (positive values, each item fits alone), often with
    ties or near-ties, so that both outcomes of the proof occur."""
    n = int(rng.integers(2, 13))
    m = int(rng.integers(1, 4))
    weights = rng.uniform(0.5, 10.0, (m, n))
    values = rng.uniform(0.5, 10.0, n)
    if rng.random() < 0.5:  # copies of items, exact or within a hair of the margin
        copies = rng.integers(0, n, size=n // 3)
        targets = rng.integers(0, n, size=n // 3)
        weights[:, targets] = weights[:, copies]
        scale = rng.choice([1.0, 1.0 + 1e-7, 1.0 + 1e-3], size=len(copies))
        values[targets] = values[copies] * scale
    caps = np.maximum(rng.uniform(0.2, 0.6) * weights.sum(axis=1), weights.max(axis=1))
    n_pairs = int(rng.integers(0, 3))
    pairs = np.array([rng.choice(n, 2, replace=False) for _ in range(n_pairs)],
                     dtype=np.int64).reshape(-1, 2)
    return values, weights, caps, pairs


def test_a_proven_selection_is_the_only_one_highs_may_return() -> None:
    """``_prove_highs_selection`` against brute force: when it says proven, its selection is the
    only one in HiGHS's window; when it declines (within its node budget), there is another."""
    pytest.importorskip("numba")
    assert knapsack.load_compiled_solver()
    rng = np.random.default_rng(11)
    outcomes = {True: 0, False: 0}
    for _ in range(400):
        values, weights, caps, pairs = proof_instance(rng)
        chosen, nodes, proven = knapsack._proof_kernel(
            values, weights, caps, np.ascontiguousarray(pairs[:, 0]),
            np.ascontiguousarray(pairs[:, 1]), knapsack.PROOF_NODE_LIMIT)
        assert nodes <= knapsack.PROOF_NODE_LIMIT
        mask = sum(1 << int(i) for i in np.flatnonzero(chosen))
        window = highs_window(values, weights, caps, pairs, float(values[chosen == 1].sum()))
        assert mask in window
        if proven:
            assert window == [mask]
        else:
            assert len(window) > 1
        outcomes[bool(proven)] += 1
    assert min(outcomes.values()) > 30  # both outcomes were tested


def test_the_proof_declines_ties_and_takes_clear_winners() -> None:
    """Two equal items of which only one fits: HiGHS may return either, so no proof; the
    same within the margin; a winner by 0.1 % is proven, and it is HiGHS's selection."""
    pytest.importorskip("numba")
    assert knapsack.load_compiled_solver()
    weights, caps, no_pairs = np.array([[4.0, 4.0, 3.0]]), np.array([5.0]), np.zeros((0, 2),
                                                                                    np.int64)
    for second, expected in [(5.0, None), (5.0 * (1 + 1e-7), None), (5.0 * (1 + 1e-3), [1])]:
        values = np.array([5.0, second, 3.0])
        proven = knapsack._highs_selection(values, weights, caps, no_pairs)
        if expected is None:
            assert proven is None
        else:
            assert proven is not None and proven.tolist() == expected
            assert np.array_equal(proven, knapsack._milp(values, weights, caps))


def check_proofs_against_highs(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """From now on every proof of HiGHS's selection is checked against HiGHS itself; returns
    the list to which each proof appends whether it succeeded."""
    real_proof = knapsack._highs_selection
    proven: list[bool] = []

    def checked(values: np.ndarray, weights: np.ndarray, caps: np.ndarray,
                pairs: np.ndarray) -> np.ndarray | None:
        chosen = real_proof(values, weights, caps, pairs)
        proven.append(chosen is not None)
        if chosen is not None:
            assert np.array_equal(chosen, knapsack._milp(values, weights, caps, pairs))
        return chosen

    monkeypatch.setattr(knapsack, "_highs_selection", checked)
    return proven


def test_proven_selections_of_a_signing_are_highs_selections(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every selection of the 100-MU signings of seeds 0 and 4 that goes past the branch and
    bound (one each; the proof takes both) is the selection HiGHS returns for it, and the
    contracts are those of a signing in which HiGHS answers them all."""
    pytest.importorskip("numba")
    import isac_market_env as ime

    def contracts() -> list[bytes]:
        out = []
        for seed in (0, 4):
            signing = ime.make_market("frbank", n_mus=100, n_transactions=1, seed=seed).sign()
            out += [signing.contracts.solution.tobytes(), signing.contracts.pay.tobytes()]
        return out

    proven = check_proofs_against_highs(monkeypatch)
    with_proofs = contracts()
    assert proven == [True, True]
    monkeypatch.setattr(knapsack, "_highs_selection", lambda *args: None)
    assert contracts() == with_proofs


def market_instances(rng: np.random.Generator, count: int
                     ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """BS selections as the matching poses them: few bundles, risk rows, held items, conflicts."""
    out = []
    for _ in range(count):
        n = int(rng.integers(2, 40))
        presence = rng.uniform(0.64, 0.96, n)
        bundle = rng.integers(0, int(rng.integers(1, 4)), n)
        w = np.vstack([np.array([10.0, 45.0, 80.0])[bundle], np.array([1.0, 4.5, 8.0])[bundle]])
        weights = np.vstack([w, presence * w])
        values = presence * rng.choice([0.5, 1.0, 2.0], n) * (1 + rng.integers(0, 3, n) * 0.1)
        caps = np.array([450.0, 45.0, 400.0, 40.0]) * rng.uniform(0.3, 1.2)
        held = rng.random(n) < 0.3
        if np.any(weights[:, held].sum(axis=1) > caps):  # a held set always fits
            held[:] = False
        pairs = np.array([rng.choice(n, 2, replace=False) for _ in range(int(rng.integers(0, 3)))],
                         dtype=np.intp).reshape(-1, 2)
        out.append((values, weights, caps, held, pairs))
    return out


def test_compiled_and_python_search_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """numba's compiled search (``fast`` extra) gives the CPython search's selection and nodes."""
    pytest.importorskip("numba")
    assert knapsack.load_compiled_solver()
    rng = np.random.default_rng(5)
    cases = [(*random_instance(rng, 30), None, None) for _ in range(300)]
    cases += market_instances(rng, 300)
    compiled = [solve_knapsack(v, w, c, incumbent=h, conflicts=p) for v, w, c, h, p in cases]
    numpy_only(monkeypatch)
    searched = sum(r.solver == "branch-and-bound" and r.nodes > 20 for r in compiled)
    assert searched > 100  # the comparison covers real searches, not just trivial instances
    for (v, w, c, h, p), fast in zip(cases, compiled, strict=True):
        slow = solve_knapsack(v, w, c, incumbent=h, conflicts=p)
        assert np.array_equal(fast.selected, slow.selected)
        assert (fast.nodes, fast.solver, fast.value) == (slow.nodes, slow.solver, slow.value)

