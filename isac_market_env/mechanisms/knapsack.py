"""Exact multi-constraint 0-1 knapsack: the BS's client selection of Alg. 1 line 15 (eq. 37c-37f).

A BS keeps the subset of its held and newly proposed clients that maximises its (expected) utility
subject to linear capacity constraints: booked bandwidth and power within the overbooked supply
(37c, 37d) and, with risk control, expected demand within rho * supply (69, 70). The paper solves
this by DP; we solve it exactly by depth-first branch and bound (include-first in a fixed order, an
incumbent replaced only by a strictly better set, so ties are broken deterministically). Instances
that exceed ``node_limit`` search nodes or ``MAX_SEARCH_DEPTH`` items go to the exact typed
searches of ``typed_knapsack`` when their items fall into a few bundle types, and to HiGHS
(``scipy.optimize.milp``) otherwise (or when the typed searches decline). The answer is optimal
to a relative ``RELATIVE_GAP`` = 1e-6 of the BS's utility.

Compiled, an instance bound for HiGHS first goes to a proof (``_prove_highs_selection``): when
the branch and bound, with a larger budget, shows that only one selection is optimal within
``HIGHS_MARGIN`` (five times HiGHS's tolerances), that selection is HiGHS's answer and HiGHS
is not called. It answered both such selections of the 100-MU signings of seeds 0-6, and 132
of 209 in signings of 100 to 1,000 MUs, each in 3-70 ms where HiGHS takes 9-1,560 ms.

Two implementations give identical answers (same selection, same node count; tested): with numba
installed (the ``fast`` extra) the solver runs compiled (``_solve_with_loops``, about 10x faster
on the market's instances); without it, numpy prepares the arrays and the same search function
``_search`` runs in CPython. Sums that decide anything are added left to right in both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp

from isac_market_env.mechanisms._highs import highs_solve
from isac_market_env.mechanisms._jit import (
    compile_or_warn,
    compiled_loops_enabled,
    cut,
    numba_jit,
    sequential_sums,
    shared_kernel,
    stable_argsort,
)
from isac_market_env.mechanisms.typed_knapsack import (
    adjacency,
    compiled_count_vectors,
    compiled_general_search,
    compiled_typed_search,
    solve_typed,
)

VALUE_TOLERANCE = 1e-9
# A branch is pruned when it cannot beat the incumbent by more than this fraction: the selection
# is optimal to 1e-6 of the BS's utility (money values differ far above that; exact ties below it
# are broken by the fixed search order).
RELATIVE_GAP = 1e-6
CAPACITY_TOLERANCE = 1e-9
# Instances with more candidates than this (a BS facing ~1,000 proposals in a market of thousands
# of MUs) go straight to HiGHS instead of the depth-first search.
MAX_SEARCH_DEPTH = 800
# search nodes before an instance goes to the typed search or HiGHS
# (``MarketConfig.knapsack_node_limit``)
DEFAULT_NODE_LIMIT = 30_000
# how an instance was solved (the ``outcome`` of the solvers below)
TRIVIAL, ALL_FIT, SEARCHED, TOO_HARD, TYPED, PROVEN = 0, 1, 2, 3, 4, 5
SOLVERS = ("trivial", "all-fit", "branch-and-bound", "milp", "typed-search", "proven-milp")
# HiGHS's tolerances, five times over (its gap, row and integrality tolerances are 1e-6): the
# selection HiGHS returns (its solution rounded at 0.5) uses at most c + HIGHS_MARGIN * (1 + |c|
# + the row's total weight) of a row of capacity c, and is worth at least V - HIGHS_MARGIN *
# (max(1, V) + the candidates' total value), V the optimum (``_prove_highs_selection``)
HIGHS_MARGIN = 5e-6
# search nodes that proof may take before the instance goes to HiGHS itself
PROOF_NODE_LIMIT = 300_000


@dataclass(frozen=True)
class KnapsackResult:
    """Selected items (boolean mask over the input), their total value, and how it was solved."""

    selected: NDArray[np.bool_]
    value: float
    nodes: int
    solver: str


def solve_knapsack(values: NDArray[np.float64], weights: NDArray[np.float64],
                   capacities: NDArray[np.float64], node_limit: int = DEFAULT_NODE_LIMIT,
                   incumbent: NDArray[np.bool_] | None = None,
                   conflicts: NDArray[np.intp] | None = None) -> KnapsackResult:
    """Maximise ``values @ x`` s.t. ``weights @ x <= capacities``, ``x`` binary.

    ``weights`` has shape (n_constraints, n_items) and must be non-negative. Items of non-positive
    value are never selected (a BS gains nothing from them). ``incumbent`` is an optional feasible
    selection used as the starting lower bound (it speeds the search up, never changes the
    optimum value). ``conflicts`` lists pairs of items (shape (k, 2)) of which at most one may be
    selected: a client's held and newly proposed solution at the same BS.
    """
    values = np.asarray(values, dtype=np.float64)
    weights = np.ascontiguousarray(np.atleast_2d(np.asarray(weights, dtype=np.float64)))
    capacities = np.asarray(capacities, dtype=np.float64)
    n = len(values)
    if weights.shape != (len(capacities), n):
        raise ValueError(f"weights must have shape ({len(capacities)}, {n}), got {weights.shape}")
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError("knapsack weights must be finite and non-negative")
    pairs = (np.zeros((0, 2), dtype=np.int64) if conflicts is None
             else np.asarray(conflicts, dtype=np.int64).reshape(-1, 2))
    start = (np.zeros(n, dtype=np.int8) if incumbent is None
             else np.asarray(incumbent, dtype=bool).astype(np.int8))
    kernel = compiled_solver()
    solve = _solve_with_numpy if kernel is None else kernel
    flags, nodes, outcome = solve(values, weights, capacities, np.ascontiguousarray(pairs[:, 0]),
                                  np.ascontiguousarray(pairs[:, 1]), start,
                                  incumbent is not None, node_limit)
    selected = flags.astype(bool)
    if outcome == TOO_HARD:
        idx, slack, local_pairs = _candidates(values, weights, capacities, pairs)
        typed = solve_typed(values[idx], weights[:, idx], slack, RELATIVE_GAP, VALUE_TOLERANCE,
                            local_pairs)
        if typed is None:
            proven = _highs_selection(values[idx], weights[:, idx], slack, local_pairs)
            if proven is None:
                selected[idx[_milp(values[idx], weights[:, idx], slack, local_pairs)]] = True
            else:
                selected[idx[proven]] = True
                outcome = PROVEN
        else:
            selected[idx[typed]] = True
            outcome = TYPED
    return KnapsackResult(selected, float(values[selected].sum()), nodes, SOLVERS[outcome])


def _candidates(values: NDArray[np.float64], weights: NDArray[np.float64],
                capacities: NDArray[np.float64], pairs: NDArray[np.int64]
                ) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.int64]]:
    """Items worth selecting that fit alone, the capacities with tolerance, the conflicts among
    them (positions in the candidate list)."""
    slack = capacities + CAPACITY_TOLERANCE * np.maximum(1.0, np.abs(capacities))
    idx = np.flatnonzero((values > VALUE_TOLERANCE) & np.all(weights <= slack[:, None], axis=0))
    if len(pairs) == 0:
        return idx, slack, pairs
    position = np.full(len(values), -1, dtype=np.int64)
    position[idx] = np.arange(idx.size)
    local_pairs = position[pairs]
    return idx, slack, local_pairs[np.all(local_pairs >= 0, axis=1)]


def _solve_with_numpy(values: NDArray[np.float64], weights: NDArray[np.float64],
                      capacities: NDArray[np.float64], pair_a: NDArray[np.int64],
                      pair_b: NDArray[np.int64], start: NDArray[np.int8], has_incumbent: bool,
                      node_limit: int) -> tuple[NDArray[np.int8], int, int]:
    """The solve without numba: (selected flags, nodes, outcome); ``_solve_with_loops`` is its
    compiled twin."""
    pairs = np.column_stack([pair_a, pair_b]) if len(pair_a) else np.zeros((0, 2), np.int64)
    idx, slack, pairs = _candidates(values, weights, capacities, pairs)
    selected = np.zeros(len(values), dtype=np.int8)
    if idx.size == 0:
        return selected, 0, TRIVIAL
    weights = weights[:, idx]
    if len(pairs) == 0 and np.all(sequential_sums(weights) <= slack):
        selected[idx] = 1
        return selected, 0, ALL_FIT
    if idx.size > MAX_SEARCH_DEPTH:
        return selected, 0, TOO_HARD
    chosen, nodes = _branch_and_bound(values[idx], weights, slack, node_limit,
                                      start[idx].astype(bool) if has_incumbent else None, pairs)
    if chosen is None:
        return selected, nodes, TOO_HARD
    selected[idx[chosen]] = 1
    return selected, nodes, SEARCHED


def _branch_and_bound(values: NDArray[np.float64], weights: NDArray[np.float64],
                      capacities: NDArray[np.float64], node_limit: int,
                      incumbent: NDArray[np.bool_] | None, pairs: NDArray[np.int64]
                      ) -> tuple[NDArray[np.intp] | None, int]:
    """DFS branch and bound; returns (chosen item positions, nodes) or (None, nodes) at the limit.

    Constraints that all candidates together satisfy can never bind and are dropped. Items are
    visited by decreasing value per unit of the surrogate constraint (sum of the binding
    constraints, each normalised by its capacity), so the surrogate's fractional (Dantzig) bound
    over the undecided items is a prefix-sum look-up. When it does not prune, the node also tries
    the Dantzig bound of every binding constraint alone; each is a valid relaxation. Dominated
    items are excluded with the item that dominates them (a symmetry cut that keeps an optimum).
    Including an item excludes its ``pairs`` partners; the bounds ignore conflicts (still
    valid relaxations), and an item with a partner dominates nothing (the swap could clash).
    The arrays are prepared with numpy (``_prepare``) and ``_search`` walks the tree.
    """
    binding = sequential_sums(weights) > capacities
    weights, capacities = weights[binding], capacities[binding]
    # the caller's selection (if feasible) is the starting incumbent when it beats the greedy one
    start = np.zeros(len(values), dtype=np.int8)
    incumbent_value = -np.inf
    if (incumbent is not None and np.all(sequential_sums(weights[:, incumbent]) <= capacities)
            and not np.any(np.all(incumbent[pairs], axis=1))):
        incumbent_value = float(sequential_sums(values[incumbent]))
        start[incumbent] = 1
    order, arrays, n_rows = _prepare(values, weights, capacities, pairs)
    best = start[order].tolist()
    n, m = len(values), len(capacities)
    work = [[0.0] * m, [0.0] * m, [0] * n, [0] * (n + 1), [0] * (n + 1), [0.0] * (n + 1), False,
            [], [], []]
    arguments = [a.tolist() for a in arrays] + [n_rows, incumbent_value, best, node_limit, *work]
    nodes, finished = _search(*arguments)
    if not finished:
        return None, nodes
    return np.sort(order[np.flatnonzero(best)]), nodes


def _prepare(values: NDArray[np.float64], weights: NDArray[np.float64],
             capacities: NDArray[np.float64], pairs: NDArray[np.int64]
             ) -> tuple[NDArray[np.intp], tuple[NDArray[Any], ...], int]:
    """Search order and the flat sequences ``_search`` takes, built with numpy."""
    n, m = len(values), len(capacities)
    scale = 1.0 / np.maximum(capacities, 1e-300)
    surrogate = (weights * scale[:, None]).sum(axis=0)
    order = np.argsort(-values / np.maximum(surrogate, 1e-300), kind="stable")
    v_sorted = values[order]
    w_sorted = weights[:, order]
    sur = surrogate[order]
    rel = (weights * scale[:, None])[:, order]
    prefix_w = np.concatenate([[0.0], np.cumsum(sur)])
    prefix_v = np.concatenate([[0.0], np.cumsum(v_sorted)])
    # per-constraint Dantzig bounds: each binding row's items by decreasing value density
    n_rows = m if m > 1 else 0
    density = np.where(rel > 0, v_sorted / np.maximum(rel, 1e-300), np.inf)
    row_order = np.argsort(-density[:n_rows], axis=1, kind="stable")
    row_weight = np.take_along_axis(rel[:n_rows], row_order, axis=1)
    row_value = v_sorted[row_order]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    ranked_pairs = rank[pairs]
    partner_ptr, partner_idx = adjacency(n, np.concatenate([ranked_pairs,
                                                            ranked_pairs[:, ::-1]]))
    # dominance: j (after i) needs at least i's resources for at most i's value, so an optimal
    # set that leaves i out can leave j out too (swap j for i)
    dominates = (np.all(w_sorted[:, None, :] >= w_sorted[:, :, None], axis=0)
                 & (v_sorted[None, :] <= v_sorted[:, None])
                 & (np.arange(n)[None, :] > np.arange(n)[:, None]))
    dominates[np.diff(partner_ptr) > 0] = False
    dominated_ptr, dominated_idx = adjacency(n, np.argwhere(dominates))
    arrays = (v_sorted, np.ascontiguousarray(w_sorted.T).ravel(), sur, prefix_w, prefix_v,
              np.ascontiguousarray(rel.T).ravel(), row_order.ravel(), row_weight.ravel(),
              row_value.ravel(), dominated_ptr, dominated_idx, partner_ptr, partner_idx,
              capacities)
    return order, arrays, n_rows


def _search(vals: Any, weights: Any, sur: Any, prefix_w: Any, prefix_v: Any, rel_w: Any,
            row_order: Any, row_weight: Any, row_value: Any, dominated_ptr: Any,
            dominated_idx: Any, partner_ptr: Any, partner_idx: Any, capacities: Any,
            n_rows: int, incumbent_value: float, best: Any, node_limit: int,
            remaining: Any, rel_remaining: Any, forbidden: Any, chosen: Any, stage: Any,
            value_at: Any, linked: bool, row_next: Any, row_prev: Any, row_entry: Any
            ) -> tuple[int, bool]:
    """Depth-first search over items in order; returns (nodes, finished), ``best`` updated.

    The search starts from the greedy selection in item order, or from the caller's selection
    (``best`` on entry, worth ``incumbent_value``; -inf for none) when that is better.
    Node ``pos`` decides item ``pos``: include it (if it fits and no partner is in), then exclude
    it (forbidding what it dominates). A node is pruned when a fractional bound cannot beat the
    incumbent by ``RELATIVE_GAP``. Written with plain loops over flat sequences so that the same
    code runs under numba (arrays) and under CPython (lists); both give identical results.
    ``weights`` and ``rel_w`` are item-major (item * m + constraint), the ``row_*`` sequences
    row-major (row * n + rank). ``remaining`` ... ``value_at`` are work space of lengths m, m,
    n, n + 1, n + 1, n + 1 (the caller allocates them: arrays compiled, lists in CPython).

    The per-row bounds add up each row's undecided items in the row's order. When ``linked``
    (compiled) they follow ``row_next``, lists of the undecided items (work space of n_rows *
    (n + 1), with ``row_prev`` and ``row_entry`` of n_rows * n; entry n heads each list) from
    which a node unlinks the item its parent decided and into which it relinks it on the way
    back; otherwise (CPython, where the upkeep costs more than it saves) they scan the row and
    skip decided items. Both visit the same items in the same order, so the sums are the same.
    A row's sum stops as soon as it exceeds the pruning limit: it only grows (every item is
    worth more than 0), so that row cannot prune, whatever the rest of the row adds (most rows
    do not prune: on hard instances ~88% of the nodes that reach these bounds keep going).
    """
    n = len(vals)
    m = len(capacities)
    for r in range(m):
        remaining[r] = capacities[r]
        rel_remaining[r] = 1.0
    sur_remaining = float(m)
    for i in range(n + 1):
        chosen[i] = 0
        stage[i] = 0  # 0: entering, 1: include branch done, 2: exclude branch done
        value_at[i] = 0.0
    for i in range(n):
        forbidden[i] = 0
    for r in range(n_rows if linked else 0):
        base = r * (n + 1)
        for e in range(n):
            row_entry[r * n + row_order[r * n + e]] = e
            row_next[base + e] = e + 1
            row_prev[base + e] = e - 1 if e > 0 else n
        row_next[base + n] = 0 if n > 0 else n
        row_prev[base + n] = n - 1 if n > 0 else n
    best_value = 0.0
    for i in range(n):  # greedy incumbent, kept in ``chosen``
        fits = True
        for r in range(m):
            if weights[i * m + r] > remaining[r]:
                fits = False
                break
        for e in range(partner_ptr[i], partner_ptr[i + 1]):
            if chosen[partner_idx[e]]:
                fits = False
        if fits:
            for r in range(m):
                remaining[r] -= weights[i * m + r]
            chosen[i] = 1
            best_value += vals[i]
    if incumbent_value > best_value + VALUE_TOLERANCE:
        best_value = incumbent_value
    else:
        for i in range(n):
            best[i] = chosen[i]
    for r in range(m):
        remaining[r] = capacities[r]
    for i in range(n):
        chosen[i] = 0
    nodes = 0
    pos = 0
    while True:
        step = stage[pos]
        if step == 0:
            if linked and pos > 0:  # item pos - 1 is decided from here down: unlink it
                for r in range(n_rows):
                    base = r * (n + 1)
                    e = row_entry[r * n + pos - 1]
                    row_next[base + row_prev[base + e]] = row_next[base + e]
                    row_prev[base + row_next[base + e]] = row_prev[base + e]
            nodes += 1
            if nodes > node_limit:
                return nodes, False
            value = value_at[pos]
            if value > best_value + VALUE_TOLERANCE:
                best_value = value
                for i in range(n):
                    best[i] = chosen[i] if i < pos else 0
            limit = best_value * (1.0 + RELATIVE_GAP) + VALUE_TOLERANCE
            prune = pos == n or value + prefix_v[n] - prefix_v[pos] <= limit
            if not prune:  # surrogate Dantzig bound (bisect_right over the prefix sums)
                target = prefix_w[pos] + sur_remaining
                lo, hi = pos, n + 1
                while lo < hi:
                    mid = (lo + hi) // 2
                    if target < prefix_w[mid]:
                        hi = mid
                    else:
                        lo = mid + 1
                k = lo - 1  # items pos..k-1 fit whole
                total = value + prefix_v[k] - prefix_v[pos]
                if k < n and sur[k] > 0:
                    total += vals[k] * (target - prefix_w[k]) / sur[k]
                prune = total <= limit
            if not prune and n_rows > 0:  # the tightest single-constraint Dantzig bound
                for r in range(n_rows):
                    cap = rel_remaining[r]
                    total = value
                    if linked:  # the undecided items in the row's order, from the list
                        base = r * (n + 1)
                        e = row_next[base + n]
                        while e != n:
                            w = row_weight[r * n + e]
                            if w <= cap:
                                cap -= w
                                total += row_value[r * n + e]
                                if total > limit:  # the bound only grows: it cannot prune
                                    break
                            else:
                                total += row_value[r * n + e] * cap / w
                                break
                            e = row_next[base + e]
                    else:  # the same items, by scanning the row
                        for e in range(r * n, r * n + n):
                            if row_order[e] < pos:
                                continue
                            w = row_weight[e]
                            if w <= cap:
                                cap -= w
                                total += row_value[e]
                                if total > limit:
                                    break
                            else:
                                total += row_value[e] * cap / w
                                break
                    if total <= limit:
                        prune = True
                        break
            if prune:
                step = 3
            else:
                base = pos * m
                fits = forbidden[pos] == 0
                for r in range(m):
                    if weights[base + r] > remaining[r]:
                        fits = False
                        break
                if fits:
                    for r in range(m):
                        remaining[r] -= weights[base + r]
                        rel_remaining[r] -= rel_w[base + r]
                    sur_remaining -= sur[pos]
                    chosen[pos] = 1
                    for e in range(partner_ptr[pos], partner_ptr[pos + 1]):
                        forbidden[partner_idx[e]] += 1
                    stage[pos] = 1
                    value_at[pos + 1] = value + vals[pos]
                    pos += 1
                    stage[pos] = 0
                    continue
                step = 1
        if step == 1:
            if chosen[pos]:
                for e in range(partner_ptr[pos], partner_ptr[pos + 1]):
                    forbidden[partner_idx[e]] -= 1
                chosen[pos] = 0
                base = pos * m
                for r in range(m):
                    remaining[r] += weights[base + r]
                    rel_remaining[r] += rel_w[base + r]
                sur_remaining += sur[pos]
            for e in range(dominated_ptr[pos], dominated_ptr[pos + 1]):
                forbidden[dominated_idx[e]] += 1
            stage[pos] = 2
            value_at[pos + 1] = value_at[pos]
            pos += 1
            stage[pos] = 0
            continue
        if step == 2:
            for e in range(dominated_ptr[pos], dominated_ptr[pos + 1]):
                forbidden[dominated_idx[e]] -= 1
        # this node is done: back to its parent
        if pos == 0:
            return nodes, True
        if linked:  # item pos - 1 is undecided again: relink it (last out, first in)
            for r in range(n_rows):
                base = r * (n + 1)
                e = row_entry[r * n + pos - 1]
                row_next[base + row_prev[base + e]] = e
                row_prev[base + row_next[base + e]] = e
        pos -= 1


def _partner_lists(rank: Any, pair_a: Any, pair_b: Any, partner_ptr: Any, partner_idx: Any,
                   filled: Any) -> None:
    """Each item's conflict partners as compressed rows (``partner_ptr``, n + 1, and
    ``partner_idx``, 2 per pair), the items renumbered by ``rank``; ``filled``: work space of
    n. In loops, for numba (``_prepare_and_search``, ``_prove_highs_selection``)."""
    n = len(rank)
    partner_ptr[:] = 0
    for e in range(len(pair_a)):
        partner_ptr[rank[pair_a[e]] + 1] += 1
        partner_ptr[rank[pair_b[e]] + 1] += 1
    for i in range(n):
        partner_ptr[i + 1] += partner_ptr[i]
        filled[i] = partner_ptr[i]
    for e in range(len(pair_a)):
        a, b = rank[pair_a[e]], rank[pair_b[e]]
        partner_idx[filled[a]] = b
        filled[a] += 1
        partner_idx[filled[b]] = a
        filled[b] += 1


def _prepare_and_search(values: Any, weights: Any, capacities: Any, pair_a: Any, pair_b: Any,
                        start: Any, incumbent_value: float, node_limit: int
                        ) -> tuple[Any, int, bool]:
    """``_prepare`` then ``_search`` in loops, for numba; returns (selected flags, nodes, finished).

    Compiled only (in CPython the numpy ``_prepare`` is faster); it builds exactly the arrays of
    ``_prepare`` (stable sorts, the same floating-point operations in the same order), which the
    tests check. Its ~30 arrays are cut from one float and one integer buffer (``_jit.cut``):
    allocating them one by one cost ~0.6 us a call, a fifth of the set-up.
    """
    m, n = weights.shape
    n_rows = m if m > 1 else 0
    n_pairs = len(pair_a)
    floats = np.empty(3 * m + 3 * m * n + 5 * n + 3 * (n + 1) + 2 * n_rows * n)
    ints = np.empty(5 * n + 4 * (n + 1) + 2 * n_pairs + n * (n - 1) // 2
                    + 2 * n_rows * n + 2 * n_rows * (n + 1), dtype=np.int64)
    scale, at = _cut_kernel(floats, 0, m)
    rel_rows, at = _cut_kernel(floats, at, m * n)  # row-major m x n
    surrogate, at = _cut_kernel(floats, at, n)
    key, at = _cut_kernel(floats, at, n)
    v_sorted, at = _cut_kernel(floats, at, n)
    sur, at = _cut_kernel(floats, at, n)
    w_flat, at = _cut_kernel(floats, at, n * m)
    rel_flat, at = _cut_kernel(floats, at, n * m)
    prefix_w, at = _cut_kernel(floats, at, n + 1)
    prefix_v, at = _cut_kernel(floats, at, n + 1)
    row_weight, at = _cut_kernel(floats, at, n_rows * n)
    row_value, at = _cut_kernel(floats, at, n_rows * n)
    density, at = _cut_kernel(floats, at, n)
    remaining, at = _cut_kernel(floats, at, m)
    rel_remaining, at = _cut_kernel(floats, at, m)
    value_at, at = _cut_kernel(floats, at, n + 1)
    order, at = _cut_kernel(ints, 0, n)
    rank, at = _cut_kernel(ints, at, n)
    row, at = _cut_kernel(ints, at, n)
    row_order, at = _cut_kernel(ints, at, n_rows * n)
    partner_ptr, at = _cut_kernel(ints, at, n + 1)
    partner_idx, at = _cut_kernel(ints, at, 2 * n_pairs)
    filled, at = _cut_kernel(ints, at, n)
    dominated_ptr, at = _cut_kernel(ints, at, n + 1)
    dominated, at = _cut_kernel(ints, at, n * (n - 1) // 2)  # at most every later item
    forbidden, at = _cut_kernel(ints, at, n)
    chosen, at = _cut_kernel(ints, at, n + 1)
    stage, at = _cut_kernel(ints, at, n + 1)
    row_next, at = _cut_kernel(ints, at, n_rows * (n + 1))
    row_prev, at = _cut_kernel(ints, at, n_rows * (n + 1))
    row_entry, at = _cut_kernel(ints, at, n_rows * n)
    for r in range(m):
        scale[r] = 1.0 / max(capacities[r], 1e-300)
    for i in range(n):
        surrogate[i] = 0.0  # no binding row: conflicts alone decide
        for r in range(m):
            rel_rows[r * n + i] = weights[r, i] * scale[r]
            surrogate[i] = rel_rows[i] if r == 0 else surrogate[i] + rel_rows[r * n + i]
        key[i] = -values[i] / max(surrogate[i], 1e-300)
    _argsort_kernel(key, order)
    prefix_w[0] = 0.0
    prefix_v[0] = 0.0
    for i in range(n):
        o = order[i]
        rank[o] = i
        v_sorted[i] = values[o]
        sur[i] = surrogate[o]
        for r in range(m):
            w_flat[i * m + r] = weights[r, o]
            rel_flat[i * m + r] = rel_rows[r * n + o]
        prefix_w[i + 1] = sur[i] if i == 0 else prefix_w[i] + sur[i]
        prefix_v[i + 1] = v_sorted[i] if i == 0 else prefix_v[i] + v_sorted[i]
    for r in range(n_rows):
        for i in range(n):
            w = rel_flat[i * m + r]
            density[i] = -(v_sorted[i] / max(w, 1e-300)) if w > 0 else -np.inf
        _argsort_kernel(density, row)
        for e in range(n):
            row_order[r * n + e] = row[e]
            row_weight[r * n + e] = rel_flat[row[e] * m + r]
            row_value[r * n + e] = v_sorted[row[e]]
    _partners_kernel(rank, pair_a, pair_b, partner_ptr, partner_idx, filled)
    dominated_ptr[0] = 0
    n_dominated = 0
    for i in range(n):
        if partner_ptr[i + 1] == partner_ptr[i]:
            for j in range(i + 1, n):  # without branches: their outcome is a coin toss
                covers = v_sorted[j] <= v_sorted[i]
                for r in range(m):
                    covers &= w_flat[j * m + r] >= w_flat[i * m + r]
                dominated[n_dominated] = j  # kept only if it counts
                n_dominated += covers
        dominated_ptr[i + 1] = n_dominated
    best = np.empty(n, dtype=np.int8)
    for i in range(n):
        best[rank[i]] = start[i]
    nodes, finished = _search_kernel(v_sorted, w_flat, sur, prefix_w, prefix_v, rel_flat,
                                     row_order, row_weight, row_value, dominated_ptr,
                                     dominated[:n_dominated], partner_ptr, partner_idx,
                                     capacities, n_rows, incumbent_value, best, node_limit,
                                     remaining, rel_remaining, forbidden, chosen, stage,
                                     value_at, True, row_next, row_prev, row_entry)
    selected = np.empty(n, dtype=np.int8)
    for i in range(n):
        selected[order[i]] = best[i]
    return selected, nodes, finished


def _solve_with_loops(values: Any, weights: Any, capacities: Any, pair_a: Any, pair_b: Any,
                      start: Any, has_incumbent: bool, node_limit: int) -> tuple[Any, int, int]:
    """``_solve_with_numpy`` and the set-up of ``_branch_and_bound`` in loops, for numba.

    Compiled only; same decisions, same floating-point sums (left to right), same outcome. Its
    small arrays are cut from one integer and one float buffer (``_jit.cut``), as in
    ``_prepare_and_search``.
    """
    m, n = weights.shape
    ints = np.empty(2 * n + 2 * len(pair_a) + m, dtype=np.int64)
    position, at = _cut_kernel(ints, 0, n)
    idx, at = _cut_kernel(ints, at, n)  # the candidates, the first k
    local_a, at = _cut_kernel(ints, at, len(pair_a))
    local_b, at = _cut_kernel(ints, at, len(pair_a))
    rows, at = _cut_kernel(ints, at, m)  # the binding rows, the first n_rows
    floats = np.empty(2 * m + n)
    slack, at = _cut_kernel(floats, 0, m)
    sub_caps, at = _cut_kernel(floats, at, m)
    sub_values, at = _cut_kernel(floats, at, n)
    for r in range(m):
        slack[r] = capacities[r] + CAPACITY_TOLERANCE * max(1.0, abs(capacities[r]))
    k = 0
    for i in range(n):
        position[i] = -1
        worth = values[i] > VALUE_TOLERANCE
        for r in range(m):
            if not weights[r, i] <= slack[r]:
                worth = False
                break
        if worth:
            position[i] = k
            idx[k] = i
            k += 1
    selected = np.zeros(n, dtype=np.int8)
    if k == 0:
        return selected, 0, TRIVIAL
    n_pairs = 0
    for e in range(len(pair_a)):
        if position[pair_a[e]] >= 0 and position[pair_b[e]] >= 0:
            local_a[n_pairs] = position[pair_a[e]]
            local_b[n_pairs] = position[pair_b[e]]
            n_pairs += 1
    n_rows = 0
    for r in range(m):
        total = 0.0
        for j in range(k):
            total += weights[r, idx[j]]
        if total > slack[r]:
            rows[n_rows] = r
            n_rows += 1
    if n_pairs == 0 and n_rows == 0:
        for j in range(k):
            selected[idx[j]] = 1
        return selected, 0, ALL_FIT
    if k > MAX_SEARCH_DEPTH:
        return selected, 0, TOO_HARD
    sub_weights = np.empty((n_rows, k))
    for j in range(k):
        sub_values[j] = values[idx[j]]
        for b in range(n_rows):
            sub_weights[b, j] = weights[rows[b], idx[j]]
    for b in range(n_rows):
        sub_caps[b] = slack[rows[b]]
    sub_start = np.zeros(k, dtype=np.int8)
    incumbent_value = -np.inf
    if has_incumbent:
        feasible = True
        for b in range(n_rows):
            total = 0.0
            for j in range(k):
                if start[idx[j]]:
                    total += sub_weights[b, j]
            if not total <= sub_caps[b]:
                feasible = False
        for e in range(n_pairs):
            if start[idx[local_a[e]]] and start[idx[local_b[e]]]:
                feasible = False
        if feasible:
            incumbent_value = 0.0
            for j in range(k):
                if start[idx[j]]:
                    sub_start[j] = 1
                    incumbent_value += sub_values[j]
    chosen, nodes, finished = _prepare_kernel(sub_values[:k], sub_weights, sub_caps[:n_rows],
                                              local_a[:n_pairs], local_b[:n_pairs], sub_start,
                                              incumbent_value, node_limit)
    if not finished:
        return selected, nodes, TOO_HARD
    for j in range(k):
        if chosen[j]:
            selected[idx[j]] = 1
    return selected, nodes, SEARCHED


def _highs_selection(values: NDArray[np.float64], weights: NDArray[np.float64],
                     capacities: NDArray[np.float64], conflicts: NDArray[np.int64]
                     ) -> NDArray[np.intp] | None:
    """The selection HiGHS would return for ``_milp``'s instance, when a proof shows that it
    can be only one (``_prove_highs_selection``), else None (always without numba: the proof's
    search in CPython would take longer than HiGHS)."""
    if compiled_solver() is None:
        return None
    chosen, _, proven = _proof_kernel(values, np.ascontiguousarray(weights), capacities,
                                      np.ascontiguousarray(conflicts[:, 0]),
                                      np.ascontiguousarray(conflicts[:, 1]), PROOF_NODE_LIMIT)
    return np.flatnonzero(chosen) if proven else None


def _prove_highs_selection(values: Any, weights: Any, capacities: Any, pair_a: Any, pair_b: Any,
                           node_limit: int) -> tuple[Any, int, bool]:
    """An optimum and whether it is the only selection HiGHS may return: (selected flags, nodes,
    proven). Compiled only.

    The branch and bound finds an optimum S (value V). Whatever HiGHS returns lies, by its
    tolerances, in a window: feasible for capacities widened by ``HIGHS_MARGIN``, worth at least
    ``floor`` = V less ``HIGHS_MARGIN`` (see there). S lies in it; the proof shows that no other
    selection does. Every other selection first differs from S at some item of the search order:
    the items before it as in S, it flipped, the later ones free. For each such item the flipped
    selection must be infeasible, or the best over the free items must stay below ``floor``:
    shown by the values alone, by a row's fractional (Dantzig) bound, or by a branch and bound
    whose incumbent is ``floor`` that finds nothing better. Not proven (another selection in the
    window, or more than ``node_limit`` nodes in all): the caller asks HiGHS.
    """
    m, n = weights.shape
    best, nodes, finished = _prepare_kernel(values, weights, capacities, pair_a, pair_b,
                                            np.zeros(n, dtype=np.int8), -np.inf, node_limit)
    if not finished:
        return best, nodes, False
    optimum, total_value = 0.0, 0.0
    for i in range(n):
        total_value += values[i]
        if best[i]:
            optimum += values[i]
    floor = optimum - HIGHS_MARGIN * (max(1.0, abs(optimum)) + total_value)
    wide = np.empty(m)
    key = np.empty(n)
    for r in range(m):
        row_total = 0.0
        for i in range(n):
            row_total += weights[r, i]
        wide[r] = capacities[r] + HIGHS_MARGIN * (1.0 + abs(capacities[r]) + row_total)
    for i in range(n):
        surrogate = 0.0
        for r in range(m):
            surrogate += weights[r, i] / max(capacities[r], 1e-300)
        key[i] = -values[i] / max(surrogate, 1e-300)
    order = np.empty(n, dtype=np.int64)
    _argsort_kernel(key, order)
    row_orders = np.empty((m, n), dtype=np.int64)  # each row's items by decreasing density
    for r in range(m):
        for i in range(n):
            key[i] = -values[i] / weights[r, i] if weights[r, i] > 0 else -np.inf
        _argsort_kernel(key, row_orders[r])
    partner_ptr = np.empty(n + 1, dtype=np.int64)  # each item's conflict partners
    partner_idx = np.empty(2 * len(pair_a), dtype=np.int64)
    _partners_kernel(np.arange(n), pair_a, pair_b, partner_ptr, partner_idx,
                     np.empty(n, dtype=np.int64))
    taken = np.zeros(n, dtype=np.int8)  # S's items before the flipped one
    free = np.zeros(n, dtype=np.int8)
    free_items = np.empty(n, dtype=np.int64)
    position = np.empty(n, dtype=np.int64)
    used = np.zeros(m)
    left = np.empty(m)
    fixed_value = 0.0
    for k in range(n):
        item = order[k]
        flip_in = best[item] == 0
        value = fixed_value + values[item] if flip_in else fixed_value
        feasible = True
        for r in range(m):
            left[r] = wide[r] - used[r] - (weights[r, item] if flip_in else 0.0)
            if left[r] < 0.0:
                feasible = False
        if flip_in:
            for e in range(partner_ptr[item], partner_ptr[item + 1]):
                if taken[partner_idx[e]]:
                    feasible = False
        if feasible:
            if value >= floor:  # the flipped selection itself is in the window
                return best, nodes, False
            count, free_value = 0, 0.0
            for j in range(k + 1, n):  # the later items that fit with the fixed ones
                candidate = order[j]
                fits = True
                for e in range(partner_ptr[candidate], partner_ptr[candidate + 1]):
                    partner = partner_idx[e]
                    if taken[partner] or (flip_in and partner == item):
                        fits = False
                for r in range(m):
                    if weights[r, candidate] > left[r]:
                        fits = False
                free[candidate] = fits
                if fits:
                    position[candidate] = count
                    free_items[count] = candidate
                    count += 1
                    free_value += values[candidate]
            bound = value + free_value
            for r in range(m):  # each row's fractional bound over the free items
                cap, total = left[r], value
                for e in range(n):
                    candidate = row_orders[r, e]
                    if not free[candidate]:
                        continue
                    w = weights[r, candidate]
                    if w <= cap:
                        cap -= w
                        total += values[candidate]
                    else:
                        total += values[candidate] * cap / w
                        break
                bound = min(bound, total)
            if bound >= floor - VALUE_TOLERANCE:  # the bounds do not settle it: search
                threshold = (floor - value - 2.0 * VALUE_TOLERANCE) / (1.0 + RELATIVE_GAP)
                if threshold <= VALUE_TOLERANCE or nodes >= node_limit:
                    return best, nodes, False
                n_pairs = 0
                for e in range(len(pair_a)):
                    n_pairs += free[pair_a[e]] and free[pair_b[e]]
                sub_a = np.empty(n_pairs, dtype=np.int64)
                sub_b = np.empty(n_pairs, dtype=np.int64)
                n_pairs = 0
                for e in range(len(pair_a)):
                    if free[pair_a[e]] and free[pair_b[e]]:
                        sub_a[n_pairs] = position[pair_a[e]]
                        sub_b[n_pairs] = position[pair_b[e]]
                        n_pairs += 1
                sub_values = np.empty(count)
                sub_weights = np.empty((m, count))
                for c in range(count):
                    sub_values[c] = values[free_items[c]]
                    for r in range(m):
                        sub_weights[r, c] = weights[r, free_items[c]]
                found, sub_nodes, done = _prepare_kernel(
                    sub_values, sub_weights, left.copy(), sub_a, sub_b,
                    np.zeros(count, dtype=np.int8), threshold, node_limit - nodes)
                nodes += sub_nodes
                if not done:
                    return best, nodes, False
                for c in range(count):
                    if found[c]:  # a selection within the window (or near it)
                        return best, nodes, False
            for j in range(k + 1, n):
                free[order[j]] = 0
        if best[item]:  # from here on, the item is fixed as in S
            taken[item] = 1
            fixed_value += values[item]
            for r in range(m):
                used[r] += weights[r, item]
    return best, nodes, True


def _milp(values: NDArray[np.float64], weights: NDArray[np.float64],
          capacities: NDArray[np.float64],
          conflicts: NDArray[np.intp] | None = None) -> NDArray[np.intp]:
    """MILP (HiGHS, gap ``RELATIVE_GAP``) for instances too large for the branch and bound."""
    if conflicts is not None and len(conflicts):
        rows = np.zeros((len(conflicts), len(values)))
        rows[np.arange(len(conflicts))[:, None], conflicts] = 1.0
        weights = np.vstack([weights, rows])
        capacities = np.concatenate([capacities, np.ones(len(conflicts))])
    with highs_solve():
        res = milp(-values, constraints=LinearConstraint(weights, -np.inf, capacities),
                   integrality=np.ones(len(values)), bounds=Bounds(0, 1),
                   options={"mip_rel_gap": RELATIVE_GAP})
    if res.x is None:  # pragma: no cover - the empty set is always feasible
        raise RuntimeError(f"knapsack MILP failed: {res.message}")
    return np.flatnonzero(res.x > 0.5)


# compiled functions that compiled callers reach as globals (set by ``_compile``)
_search_kernel: Any = None
_cut_kernel: Any = None
_argsort_kernel: Any = None
_prepare_kernel: Any = None
_partners_kernel: Any = None
_proof_kernel: Any = None
_KERNEL: list[Callable[..., tuple[Any, int, int]] | None] = []


def load_compiled_solver() -> bool:
    """Compile (or load from numba's cache) the knapsack solver now; False when not in use.

    The compiled solver needs numba (the ``fast`` extra); ``ISAC_MARKET_ENV_JIT=0`` turns it
    off. Both paths give the same selections and node counts. Call it before timing anything:
    compiling takes seconds the first time.
    """
    compiled_typed_search()
    compiled_general_search()
    compiled_count_vectors()
    return compiled_solver() is not None


def compiled_solver() -> Callable[..., tuple[Any, int, int]] | None:
    """The compiled ``_solve_with_loops`` (for compiled callers), or None without numba."""
    if not compiled_loops_enabled():
        return None
    if not _KERNEL:
        _KERNEL.append(_compile())
    return _KERNEL[0]


def _compile() -> Callable[..., tuple[Any, int, int]] | None:
    jit = numba_jit()
    if jit is None:
        return None

    def build() -> Callable[..., tuple[Any, int, int]]:
        global _search_kernel, _cut_kernel, _argsort_kernel, _prepare_kernel, _proof_kernel
        global _partners_kernel
        _search_kernel = jit(_search)
        _cut_kernel = shared_kernel(cut, jit)
        _argsort_kernel = shared_kernel(stable_argsort, jit)
        _partners_kernel = jit(_partner_lists)
        _prepare_kernel = jit(_prepare_and_search)
        _proof_kernel = jit(_prove_highs_selection)
        kernel = jit(_solve_with_loops)
        no_pairs = np.zeros(0, dtype=np.int64)  # compile for the argument types of the calls
        kernel(np.ones(2), np.ones((1, 2)), np.ones(1), no_pairs, no_pairs,
               np.zeros(2, dtype=np.int8), False, 10)
        _proof_kernel(np.ones(2), np.ones((1, 2)), np.ones(1), no_pairs, no_pairs, 10)
        return cast(Callable[..., tuple[Any, int, int]], kernel)

    return compile_or_warn(build, "knapsack solver")
