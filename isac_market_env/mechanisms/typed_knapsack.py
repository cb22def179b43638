"""Exact searches for the BS selections that branch and bound finds hardest: few bundle types.

Clients propose a handful of bundles, so a BS's candidates fall into a few *types* (identical
bundle, so identical weights on the capacity rows 37c, 37d) whose weights on the risk rows
(69, 70) are the bundle times the client's presence ``s_i``. Choosing k_t items of each type
fixes the capacity rows; the LP relaxation cannot see that k_t is an integer, so the general
branch and bound can run out of nodes on these instances (HiGHS takes 5-600 ms each). Both
searches here enumerate the feasible count vectors (k_t) and search them best bound first:

* ``_typed_search`` (value affine in presence within a type, ``v_i = alpha_t + beta_t * s_i``,
  as when everyone proposes at the reserve price, and no conflicting pairs): the bound is the
  LP with the counts fixed; within a vector it branches on each type's items in decreasing
  presence (a subset-sum against the risk limits) and takes the largest-presence completion as
  soon as it fits.
* ``_general_search`` (any values, conflicting pairs): the bound relaxes one risk row with a
  Lagrange multiplier (bisection per vector); within a vector it branches on each type's items
  in decreasing reduced value.

Answers are optimal to the same relative gap as the branch and bound. Instances without the
structure, or beyond ``MAX_COUNT_VECTORS`` vectors or ``NODE_LIMIT`` nodes, return None and go
to HiGHS. The searches run compiled with numba when available and in CPython otherwise; both
run the same loops and give the same selection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from isac_market_env.mechanisms._jit import (
    compile_with_example,
    compiled_loops_enabled,
    numba_jit,
)

# rows with at most this many distinct values (and fewer than the most varied row) define the
# types
MAX_TYPES = 16
# relative residual up to which weights and values count as following the typed structure
STRUCTURE_TOLERANCE = 1e-9
# count vectors and search nodes beyond which the instance goes to HiGHS instead
MAX_COUNT_VECTORS = 200_000
# extensions built at once while enumerating count vectors (rows of one block)
COUNT_BLOCK_ROWS = 1 << 16
# a type whose extensions of the vectors so far would pass this many per allowed vector
# declines the instance before building them
EXTENSIONS_PER_VECTOR = 20
NODE_LIMIT = 200_000


@dataclass(frozen=True)
class TypedStructure:
    """Items grouped by type (``item_type``); ``levels`` (types x type rows) are the types'
    weights on ``type_rows``; on ``scaled_rows`` item i weighs ``scale[t] * presence[i]``. When
    ``affine``, its value is ``alpha[t] + beta[t] * presence[i]`` with ``beta >= 0``."""

    type_rows: NDArray[np.intp]
    scaled_rows: NDArray[np.intp]
    levels: NDArray[np.float64]
    item_type: NDArray[np.intp]
    presence: NDArray[np.float64]
    scale: NDArray[np.float64]
    alpha: NDArray[np.float64]
    beta: NDArray[np.float64]
    affine: bool


def detect_structure(values: NDArray[np.float64], weights: NDArray[np.float64]
                     ) -> TypedStructure | None:
    """The typed structure of an instance, or None when it has none (see the module doc)."""
    distinct = np.array([len(np.unique(row)) for row in weights])
    few = (distinct <= MAX_TYPES) & (distinct < distinct.max())
    type_rows, scaled_rows = np.flatnonzero(few), np.flatnonzero(~few)
    if len(type_rows) == 0 or len(scaled_rows) == 0:
        return None
    levels, item_type = np.unique(weights[type_rows].T, axis=0, return_inverse=True)
    item_type = item_type.ravel()
    presence = weights[scaled_rows[0]]
    if np.any(presence <= 0):
        return None
    n_types = len(levels)
    scale = np.zeros((n_types, len(scaled_rows)))
    alpha, beta = np.zeros(n_types), np.zeros(n_types)
    affine = True
    for t in range(n_types):
        members = np.flatnonzero(item_type == t)
        ratio = weights[np.ix_(scaled_rows, members)] / presence[members]
        scale[t] = ratio[:, 0]
        if np.any(np.abs(ratio - ratio[:, :1]) > STRUCTURE_TOLERANCE * ratio[:, :1]):
            return None
        s, v = presence[members], values[members]
        if not affine:
            continue
        if np.ptp(s) > 0:
            design = np.column_stack([np.ones(len(s)), s])
            coef = np.linalg.lstsq(design, v, rcond=None)[0]
            affine = bool(np.abs(design @ coef - v).max() <= STRUCTURE_TOLERANCE * np.abs(v).max()
                          and coef[1] >= 0)
            alpha[t], beta[t] = coef
        elif np.ptp(v) > 0:
            affine = False
        else:
            alpha[t] = v[0]
    return TypedStructure(type_rows, scaled_rows, levels, item_type, presence, scale, alpha,
                          beta, affine)


def solve_typed(values: NDArray[np.float64], weights: NDArray[np.float64],
                capacities: NDArray[np.float64], relative_gap: float, value_tolerance: float,
                pairs: NDArray[np.int64] | None = None) -> NDArray[np.bool_] | None:
    """Maximise ``values @ x`` s.t. ``weights @ x <= capacities`` (and at most one item of each
    of ``pairs``) for a typed instance: with the affine search when the value is affine in
    presence within each type and there are no pairs, with the general search otherwise.

    Returns the selection (optimal to ``relative_gap``), or None when the instance lacks the
    structure, needs more than ``MAX_COUNT_VECTORS`` count vectors or ``NODE_LIMIT`` nodes, or
    the answer fails the original constraints.
    """
    pairs = np.zeros((0, 2), dtype=np.int64) if pairs is None else pairs
    st = detect_structure(values, weights)
    if st is None:
        return None
    order = np.lexsort((-st.presence, st.item_type))
    presence = st.presence[order]
    starts = np.searchsorted(st.item_type[order], np.arange(len(st.levels) + 1))
    counts = _count_vectors(np.diff(starts), st.levels, capacities[st.type_rows])
    if counts is None:
        return None
    risk_caps = capacities[st.scaled_rows]
    # presence sums reachable with each count vector: the k largest or smallest of each type
    prefix = np.concatenate([[0.0], np.cumsum(presence)])
    ends, firsts = starts[1:, None], starts[:-1, None]
    lo = (prefix[ends] - prefix[ends - counts.T]).T
    hi = (prefix[firsts + counts.T] - prefix[firsts]).T
    fits = np.all(lo @ st.scale <= risk_caps, axis=1)  # the smallest presences meet the risk rows
    counts, lo, hi = counts[fits], lo[fits], hi[fits]
    if len(counts) == 0:  # not even the empty selection fits: leave it to HiGHS
        return None
    chosen = np.zeros(len(values), dtype=np.int8)
    if st.affine and len(pairs) == 0:
        finished = _search_affine(st, presence, starts, st.item_type[order], counts, lo, hi,
                                  risk_caps, relative_gap, value_tolerance, chosen)
    else:
        rank = np.empty(len(values), dtype=np.int64)
        rank[order] = np.arange(len(values))
        ranked = rank[pairs]
        partner_ptr, partner_idx = adjacency(len(values), np.concatenate([ranked, ranked[:, ::-1]]))
        kernel = compiled_general_search()
        search = _general_search if kernel is None else kernel
        _, finished = search(values[order], presence, starts, st.scale.ravel(), risk_caps,
                             partner_ptr, partner_idx, counts.ravel(), relative_gap,
                             value_tolerance, NODE_LIMIT, chosen)
    if not finished:
        return None
    selected = np.zeros(len(values), dtype=bool)
    selected[order[chosen.astype(bool)]] = True
    totals = weights[:, selected].cumsum(axis=1)[:, -1] if selected.any() else 0.0
    if np.any(selected[pairs].all(axis=1)) or not np.all(totals <= capacities):
        return None
    return selected


def _search_affine(st: TypedStructure, presence: NDArray[np.float64], starts: NDArray[np.intp],
                   types: NDArray[np.intp], counts: NDArray[np.int64], lo: NDArray[np.float64],
                   hi: NDArray[np.float64], risk_caps: NDArray[np.float64], relative_gap: float,
                   value_tolerance: float, chosen: NDArray[np.int8]) -> bool:
    """The affine case: count vectors by their LP bound, then ``_typed_search``."""
    row_order = np.argsort(-st.beta[None, :] / np.maximum(st.scale.T, 1e-300), axis=1,
                           kind="stable")
    bound = np.full(len(counts), np.inf)
    for r in range(len(risk_caps)):
        bound = np.minimum(bound, _fill_bound(lo, hi, st.beta, st.scale[:, r], risk_caps[r],
                                              row_order[r]))
    base = counts @ st.alpha
    upper = base + bound
    by_bound = np.argsort(-upper, kind="stable")
    kernel = compiled_typed_search()
    search = _typed_search if kernel is None else kernel
    _, finished = search(presence, starts, types, st.scale.ravel(), st.beta, risk_caps,
                         row_order.ravel(), counts[by_bound].ravel(), base[by_bound],
                         upper[by_bound], relative_gap, value_tolerance, NODE_LIMIT, chosen)
    return bool(finished)


def adjacency(n: int, edges: NDArray[np.intp]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Compressed rows (pointer, targets) of the directed ``edges`` (k, 2) over ``n`` nodes (here
    and in ``knapsack``: conflict partners, dominated items)."""
    if len(edges) == 0:
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    edges = edges[np.argsort(edges[:, 0], kind="stable")]
    ptr = np.searchsorted(edges[:, 0], np.arange(n + 1)).astype(np.int64)
    return ptr, edges[:, 1].astype(np.int64)


def _count_vectors(sizes: NDArray[np.intp], levels: NDArray[np.float64],
                   capacities: NDArray[np.float64]) -> NDArray[np.int64] | None:
    """Every (k_t) with 0 <= k_t <= sizes[t] whose capacity rows fit (in lexicographic order),
    or None when too many: compiled (``_count_vectors_with_loops``) with numba, else with
    numpy (``_count_vectors_with_numpy``); the same vectors and the same refusals."""
    kernel = compiled_count_vectors()
    if kernel is None:
        return _count_vectors_with_numpy(sizes, levels, capacities)
    counts, found = kernel(np.asarray(sizes, dtype=np.int64),
                           np.ascontiguousarray(levels, dtype=np.float64),
                           np.asarray(capacities, dtype=np.float64), MAX_COUNT_VECTORS)
    return counts if found else None


def _clipped_size(size: int, levels: Any, capacities: Any) -> int:
    """No more of a type than fit alone (the exact test follows): ``size`` or the count of
    copies of ``levels`` that fit ``capacities`` on its tightest positive row, plus one."""
    fit_alone = np.inf
    for r in range(len(capacities)):
        if levels[r] > 0:
            fit_alone = min(fit_alone, capacities[r] / levels[r])
    return min(size, int(fit_alone) + 1) if fit_alone < size else size


def _count_vectors_with_numpy(sizes: NDArray[np.intp], levels: NDArray[np.float64],
                              capacities: NDArray[np.float64]) -> NDArray[np.int64] | None:
    """``_count_vectors`` with numpy.

    Built type by type: each vector so far is extended by every count of the next type (in that
    order) and kept if it fits. A kept vector is stored as its parent and its last count, and
    the rows are assembled once at the end (copying the growing rows at every type would cost
    more than everything else on the larger instances). The extensions are built a block of
    parents at a time, so an instance with too many vectors is given up as soon as the kept
    ones pass ``MAX_COUNT_VECTORS`` (every kept vector completes with counts of 0), not after
    building all of a type's extensions."""
    used = np.zeros((1, len(capacities)))
    parents: list[NDArray[np.intp]] = []
    last_counts: list[NDArray[np.int64]] = []
    for t, size in enumerate(sizes.tolist()):
        size = _clipped_size(size, levels[t], capacities)
        if len(used) * (size + 1) > EXTENSIONS_PER_VECTOR * MAX_COUNT_VECTORS:
            return None
        k = np.arange(size + 1)
        block = max(1, COUNT_BLOCK_ROWS // (size + 1))  # parents per block
        kept_rows: list[NDArray[np.float64]] = []
        kept_index: list[NDArray[np.intp]] = []
        n_kept = 0
        for first in range(0, len(used), block):
            extended = (used[first:first + block, None, :]
                        + k[None, :, None] * levels[t][None, None, :]).reshape(
                -1, len(capacities))  # vector v with count k of type t is row v * (size + 1) + k
            kept = np.flatnonzero(np.all(extended <= capacities, axis=1))
            kept_rows.append(extended[kept])
            kept_index.append(kept + first * (size + 1))
            n_kept += len(kept)
            if n_kept > MAX_COUNT_VECTORS:
                return None
        used = np.concatenate(kept_rows)
        parent, count = np.divmod(np.concatenate(kept_index), size + 1)
        parents.append(parent)
        last_counts.append(count)
    counts = np.empty((len(used), len(parents)), dtype=np.int64)
    row = np.arange(len(used))
    for t in range(len(parents) - 1, -1, -1):
        counts[:, t] = last_counts[t][row]
        row = parents[t][row]
    return counts


def _count_vectors_with_loops(sizes: Any, levels: Any, capacities: Any, max_vectors: int
                              ) -> tuple[Any, bool]:
    """``_count_vectors_with_numpy`` as a depth-first walk, for numba (compiled only): returns
    (the vectors, True), or (nothing, False) where the numpy version gives up.

    The walk extends a fitting prefix by the counts 0, 1, ... of the next type (the same sums,
    ``used + k * level``, as the numpy version's, so the same tests), which lists the vectors
    in lexicographic order. Every fitting prefix completes with counts of 0, so the prefixes of
    each length are never more than the vectors: the walk stops once these pass
    ``max_vectors``, and the numpy version's other refusal (a type whose extensions would pass
    ``EXTENSIONS_PER_VECTOR * max_vectors``) is checked on the prefix counts afterwards. A
    second walk fills the vectors.
    """
    n_types = levels.shape[0]
    clipped = np.empty(n_types, dtype=np.int64)
    for t in range(n_types):
        clipped[t] = _clipped_size(sizes[t], levels[t], capacities)
    prefixes = np.zeros(n_types, dtype=np.int64)  # fitting prefixes of each length
    n_vectors = _walk_count_vectors(clipped, levels, capacities, max_vectors, prefixes,
                                    np.empty((0, n_types), dtype=np.int64))
    if n_vectors > max_vectors:
        return np.empty((0, n_types), dtype=np.int64), False
    shorter = 1  # prefixes one type shorter (one empty prefix)
    for t in range(n_types):
        if shorter * (clipped[t] + 1) > EXTENSIONS_PER_VECTOR * max_vectors:
            return np.empty((0, n_types), dtype=np.int64), False
        shorter = prefixes[t]
    counts = np.empty((n_vectors, n_types), dtype=np.int64)
    _walk_count_vectors(clipped, levels, capacities, max_vectors, prefixes, counts)
    return counts, True


def _walk_count_vectors(clipped: Any, levels: Any, capacities: Any, max_vectors: int,
                        prefixes: Any, counts: Any) -> int:
    """The walk of ``_count_vectors_with_loops``: the number of fitting vectors (stopping past
    ``max_vectors``), the fitting prefixes of each length added to ``prefixes``, and the
    vectors written to ``counts`` when it has rows for them."""
    n_types, m = levels.shape
    if n_types == 0:
        if len(counts):
            counts[0, :] = 0
        return 1
    used = np.zeros((n_types + 1, m))  # row t: the use of the prefix of length t
    k = np.zeros(n_types, dtype=np.int64)
    n_vectors = 0
    depth = 0
    while True:
        fits = k[depth] <= clipped[depth]
        for r in range(m):
            used[depth + 1, r] = used[depth, r] + k[depth] * levels[depth, r]
            fits = fits and used[depth + 1, r] <= capacities[r]
        if fits:
            prefixes[depth] += 1
            if depth < n_types - 1:
                depth += 1
                k[depth] = 0
                continue
            if n_vectors < len(counts):
                counts[n_vectors, :] = k
            n_vectors += 1
            if n_vectors > max_vectors:
                return n_vectors
            k[depth] += 1
            continue
        # this count and every larger one pass a row (levels are not negative): back up
        if depth == 0:
            return n_vectors
        depth -= 1
        k[depth] += 1


def _fill_bound(lo: NDArray[np.float64], hi: NDArray[np.float64], beta: NDArray[np.float64],
                scale: NDArray[np.float64], cap: float, order: NDArray[np.intp]
                ) -> NDArray[np.float64]:
    """LP bound on ``sum_t beta_t A_t`` s.t. ``sum_t scale_t A_t <= cap``, ``lo <= A <= hi``
    (rows: count vectors whose ``lo`` fits), filling types by decreasing ``beta / scale``.
    ``_typed_search`` computes the same bound in loops."""
    total = lo @ beta
    budget = cap - lo @ scale
    for t in order.tolist():
        span = hi[:, t] - lo[:, t]
        take = span if scale[t] <= 0 else np.clip(budget / scale[t], 0.0, span)
        total = total + beta[t] * take
        budget = budget - scale[t] * take
    return total


def _typed_search(presence: Any, starts: Any, item_type: Any, scale: Any, beta: Any,
                  risk_caps: Any, row_order: Any, counts: Any, base: Any, upper: Any,
                  relative_gap: float, value_tolerance: float, node_limit: int, best: Any
                  ) -> tuple[int, bool]:
    """Depth-first search over the count vectors (best ``upper`` bound first); ``best`` gets the
    selected items (positions in ``presence`` order). Returns (nodes, finished).

    Node ``pos`` decides item ``pos`` of its type (items by type, then decreasing presence):
    include it, then exclude it if the type can still fill its count. A node is pruned when the
    LP bound with the counts fixed (the rows one at a time, the tightest kept) cannot beat the
    incumbent by ``relative_gap``; when the largest-presence completion fits every risk row it
    is the subtree's best and ends it. Plain loops: runs under numba and in CPython alike.
    ``scale`` is type-major (type * rows + row), ``row_order`` and ``counts`` row-major.
    """
    n = len(presence)
    n_types = len(starts) - 1
    n_rows = len(risk_caps)
    prefix = [0.0] * (n + 1)
    for i in range(n):
        prefix[i + 1] = prefix[i] + presence[i]
    need = [0] * n_types
    current = [0.0] * n_types  # presence sums of the items included so far, by type
    lo = [0.0] * n_types
    hi = [0.0] * n_types
    chosen = [0] * n
    node_pos = [0] * (n + 2)
    stage = [0] * (n + 2)
    saved = [0.0] * (n + 2)

    def advance(p: int) -> int:
        """The first position from ``p`` on whose type still needs items (``n`` when none)."""
        while p < n and need[item_type[p]] == 0:
            p = starts[item_type[p] + 1]
        return p

    best_value = 0.0
    nodes = 0
    for v in range(len(base)):
        if upper[v] <= best_value * (1.0 + relative_gap) + value_tolerance:
            break
        for t in range(n_types):
            need[t] = counts[v * n_types + t]
            current[t] = 0.0
        depth = 0
        node_pos[0] = advance(0)
        stage[0] = 0
        while depth >= 0:
            pos = node_pos[depth]
            if stage[depth] == 0:
                nodes += 1
                if nodes > node_limit:
                    return nodes, False
                limit = best_value * (1.0 + relative_gap) + value_tolerance
                this_type = item_type[pos] if pos < n else n_types
                for t in range(n_types):
                    if t < this_type:
                        lo[t] = current[t]
                        hi[t] = current[t]
                    elif t == this_type:
                        end, k = starts[t + 1], need[t]
                        lo[t] = current[t] + prefix[end] - prefix[end - k]
                        hi[t] = current[t] + prefix[pos + k] - prefix[pos]
                    else:
                        k = counts[v * n_types + t]
                        lo[t] = prefix[starts[t + 1]] - prefix[starts[t + 1] - k]
                        hi[t] = prefix[starts[t] + k] - prefix[starts[t]]
                bound = np.inf
                completion_fits = True
                for r in range(n_rows):
                    total = 0.0
                    budget = risk_caps[r]
                    top = 0.0
                    for t in range(n_types):
                        total += beta[t] * lo[t]
                        budget -= scale[t * n_rows + r] * lo[t]
                        top += scale[t * n_rows + r] * hi[t]
                    if budget < 0.0:
                        total = -np.inf
                    else:
                        for e in range(r * n_types, r * n_types + n_types):
                            t = row_order[e]
                            span = hi[t] - lo[t]
                            c = scale[t * n_rows + r]
                            take = span
                            if c > 0.0:
                                take = min(max(budget / c, 0.0), span)
                            total += beta[t] * take
                            budget -= c * take
                    bound = min(bound, total)
                    if bound == -np.inf or base[v] + bound <= limit:
                        break  # pruned, whatever the other rows give
                    if top > risk_caps[r]:
                        completion_fits = False
                value = base[v]
                if completion_fits or pos == n:
                    for t in range(n_types):
                        value += beta[t] * hi[t]
                if bound == -np.inf or base[v] + bound <= limit or (
                        pos == n and not completion_fits):
                    stage[depth] = 3
                elif completion_fits:
                    if value > best_value + value_tolerance:
                        best_value = value
                        for i in range(n):
                            best[i] = chosen[i]
                        if pos < n:
                            for i in range(pos, pos + need[this_type]):
                                best[i] = 1
                            for t in range(this_type + 1, n_types):
                                for i in range(starts[t], starts[t] + counts[v * n_types + t]):
                                    best[i] = 1
                    stage[depth] = 3
                else:  # include item pos
                    t = this_type
                    saved[depth] = current[t]
                    current[t] += presence[pos]
                    need[t] -= 1
                    chosen[pos] = 1
                    stage[depth] = 1
                    depth += 1
                    node_pos[depth] = advance(pos + 1)
                    stage[depth] = 0
                    continue
            if stage[depth] == 1:  # undo the include, then exclude if the count can still fill
                t = item_type[pos]
                current[t] = saved[depth]
                need[t] += 1
                chosen[pos] = 0
                stage[depth] = 3
                if starts[t + 1] - (pos + 1) >= need[t]:
                    stage[depth] = 2
                    depth += 1
                    node_pos[depth] = advance(pos + 1)
                    stage[depth] = 0
                    continue
            depth -= 1
    return nodes, True


def _general_search(values: Any, presence: Any, starts: Any, scale: Any, risk_caps: Any,
                    partner_ptr: Any, partner_idx: Any, counts: Any, relative_gap: float,
                    value_tolerance: float, node_limit: int, best: Any) -> tuple[int, bool]:
    """Typed search for any values (and conflicting pairs): a Lagrangian bound per count vector.

    With the counts k fixed, relaxing risk row r with a multiplier lam >= 0 bounds the vector by
    ``lam * cap_r + sum_t (sum of the k_t largest values - lam * scale[t, r] * presence)`` (valid
    for every lam; bisection finds the best). The vectors are ordered by this bound at one
    multiplier per row (the best for the vector of largest unconstrained value); each vector whose
    bound can still beat the incumbent gets its own multipliers and a depth-first search over its
    items, each type's in decreasing reduced value, with the same bound at every node (undecided
    items only) and a check that the smallest presences left can still meet every risk row.
    Returns (nodes, finished); ``best`` gets the selected items. Plain loops (numba or CPython).
    ``scale`` is type-major (type * rows + row), ``counts`` row-major (vector * types + type).
    """
    n = len(values)
    n_types = len(starts) - 1
    n_rows = len(risk_caps)
    n_vectors = len(counts) // n_types
    keys = np.empty(n)
    item_type = np.empty(n, dtype=np.int64)
    for t in range(n_types):
        for i in range(starts[t], starts[t + 1]):
            item_type[i] = t
    need = np.zeros(n_types, dtype=np.int64)

    def advance(p: int) -> int:
        """The first position from ``p`` on whose type still needs items (``n`` when none)."""
        while p < n and need[item_type[p]] == 0:
            p = starts[item_type[p] + 1]
        return p

    def by_reduced_value(t: int, r: int, lam: float) -> Any:
        """Type t's items (offsets from ``starts[t]``) by decreasing reduced value
        ``values - lam * scale[t, r] * presence`` (ties by position); ``keys`` keeps the negated
        reduced values."""
        c = scale[t * n_rows + r]
        for i in range(starts[t], starts[t + 1]):
            keys[i] = lam * c * presence[i] - values[i]
        return np.argsort(keys[starts[t]:starts[t + 1]], kind="mergesort")

    def relaxed(v: int, r: int, lam: float) -> tuple[float, float]:
        """(Lagrangian bound of vector v on row r at lam, risk used by its top items)."""
        total = lam * risk_caps[r] if lam > 0.0 else 0.0  # an unlimited row has lam = 0
        used = 0.0
        for t in range(n_types):
            k = counts[v * n_types + t]
            if k == 0:
                continue
            c = scale[t * n_rows + r]
            top = by_reduced_value(t, r, lam)
            for e in range(k):
                i = starts[t] + top[e]
                total += values[i] - lam * c * presence[i]
                used += c * presence[i]
        return total, used

    def multiplier(v: int, r: int) -> tuple[float, float]:
        """(lam, bound) for vector v on row r: the bound at the smallest lam found whose top
        items fit the row (bisection; the bound is convex in lam, least where they just fit)."""
        bound, used = relaxed(v, r, 0.0)
        if used <= risk_caps[r]:
            return 0.0, bound
        low, high = 0.0, 1.0
        for _ in range(200):
            bound, used = relaxed(v, r, high)
            if used <= risk_caps[r]:
                break
            low, high = high, high * 4.0
        for _ in range(40):
            middle = 0.5 * (low + high)
            _, used = relaxed(v, r, middle)
            if used <= risk_caps[r]:
                high = middle
            else:
                low = middle
        bound, _ = relaxed(v, r, high)
        return high, bound

    top_sums = np.zeros(n + n_types)  # per type: sums of its 0, 1, ... largest reduced values

    def fill_top_sums(r: int, lam: float) -> None:
        for t in range(n_types):
            top = by_reduced_value(t, r, lam)
            base = starts[t] + t
            for e in range(starts[t + 1] - starts[t]):
                top_sums[base + e + 1] = top_sums[base + e] - keys[starts[t] + top[e]]

    def vector_sum(v: int) -> float:
        total = 0.0
        for t in range(n_types):
            total += top_sums[starts[t] + t + counts[v * n_types + t]]
        return total

    # order the vectors by the bound at one multiplier per row
    fill_top_sums(0, 0.0)
    start_vector = 0
    start_value = -np.inf
    for v in range(n_vectors):
        total = vector_sum(v)
        if total > start_value:
            start_value, start_vector = total, v
    upper = np.full(n_vectors, np.inf)
    for r in range(n_rows):
        lam, _ = multiplier(start_vector, r)
        fill_top_sums(r, lam)
        for v in range(n_vectors):
            upper[v] = min(upper[v], (lam * risk_caps[r] if lam > 0.0 else 0.0) + vector_sum(v))
    by_bound = np.argsort(-upper, kind="mergesort")

    lam_of = np.zeros(n_rows)
    reduced = np.empty(n)
    position = np.empty(n, dtype=np.int64)  # search position -> item
    spot = np.empty(n, dtype=np.int64)  # item -> search position
    ascending = np.empty(n, dtype=np.int64)  # each type's items by increasing presence
    for t in range(n_types):
        for e in range(starts[t], starts[t + 1]):
            ascending[e] = starts[t + 1] - 1 - (e - starts[t])
    forbidden = np.zeros(n, dtype=np.int64)
    chosen = np.zeros(n, dtype=np.int8)
    used = np.zeros(n_rows)
    stage = np.zeros(n + 2, dtype=np.int64)
    node_pos = np.zeros(n + 2, dtype=np.int64)
    best_value = 0.0
    nodes = 0
    for rank in range(n_vectors):
        v = by_bound[rank]
        limit = best_value * (1.0 + relative_gap) + value_tolerance
        if upper[v] <= limit:
            break
        bound_row = 0
        vector_bound = np.inf
        for r in range(n_rows):
            lam_of[r], b = multiplier(v, r)
            if b < vector_bound:
                vector_bound, bound_row = b, r
        if vector_bound <= limit:
            continue
        lam = lam_of[bound_row]
        for t in range(n_types):
            c = scale[t * n_rows + bound_row]
            seg = by_reduced_value(t, bound_row, lam)
            for e in range(starts[t + 1] - starts[t]):
                i = starts[t] + seg[e]
                position[starts[t] + e] = i
                spot[i] = starts[t] + e
                reduced[starts[t] + e] = values[i] - lam * c * presence[i]
            need[t] = counts[v * n_types + t]
        value = 0.0
        reduced_sum = 0.0
        for r in range(n_rows):
            used[r] = 0.0
        depth = 0
        node_pos[0] = advance(0)
        stage[0] = 0
        while depth >= 0:
            pos = node_pos[depth]
            if stage[depth] == 0:
                nodes += 1
                if nodes > node_limit:
                    return nodes, False
                limit = best_value * (1.0 + relative_gap) + value_tolerance
                stage[depth] = 3
                if pos == n:  # every count met: a complete selection
                    fits = True
                    for r in range(n_rows):
                        if used[r] > risk_caps[r]:
                            fits = False
                    if fits and value > best_value + value_tolerance:
                        best_value = value
                        for i in range(n):
                            best[i] = chosen[i]
                    depth -= 1
                    continue
                this_type = item_type[pos]
                bound = reduced_sum + (lam * risk_caps[bound_row] if lam > 0.0 else 0.0)
                possible = True
                for t in range(this_type, n_types):
                    first = pos if t == this_type else starts[t]
                    taken = 0
                    for p in range(first, starts[t + 1]):
                        if taken == need[t]:
                            break
                        if forbidden[position[p]] == 0:
                            bound += reduced[p]
                            taken += 1
                    if taken < need[t]:
                        possible = False
                        break
                if bound <= limit:
                    possible = False  # pruned by the bound: the risk rows cannot reopen it
                for r in range(n_rows):
                    if not possible:
                        break
                    least = used[r]
                    for t in range(this_type, n_types):
                        c = scale[t * n_rows + r]
                        taken = 0
                        for e in range(starts[t], starts[t + 1]):
                            if taken == need[t]:
                                break
                            i = ascending[e]
                            if forbidden[i] == 0 and (t > this_type or spot[i] >= pos):
                                least += c * presence[i]
                                taken += 1
                        if least > risk_caps[r]:
                            break  # the use only grows
                    if least > risk_caps[r]:
                        possible = False
                if possible and bound > limit:
                    item = position[pos]
                    if forbidden[item] == 0:  # include it
                        chosen[item] = 1
                        need[this_type] -= 1
                        value += values[item]
                        reduced_sum += reduced[pos]
                        for r in range(n_rows):
                            used[r] += scale[this_type * n_rows + r] * presence[item]
                        for e in range(partner_ptr[item], partner_ptr[item + 1]):
                            forbidden[partner_idx[e]] += 1
                        stage[depth] = 1
                    elif starts[this_type + 1] - (pos + 1) >= need[this_type]:
                        stage[depth] = 2
                    if stage[depth] != 3:
                        depth += 1
                        node_pos[depth] = advance(pos + 1)
                        stage[depth] = 0
                        continue
            elif stage[depth] == 1:  # undo the include, then exclude if the count can still fill
                item = position[pos]
                this_type = item_type[pos]
                chosen[item] = 0
                need[this_type] += 1
                value -= values[item]
                reduced_sum -= reduced[pos]
                for r in range(n_rows):
                    used[r] -= scale[this_type * n_rows + r] * presence[item]
                for e in range(partner_ptr[item], partner_ptr[item + 1]):
                    forbidden[partner_idx[e]] -= 1
                stage[depth] = 3
                if starts[this_type + 1] - (pos + 1) >= need[this_type]:
                    stage[depth] = 2
                    depth += 1
                    node_pos[depth] = advance(pos + 1)
                    stage[depth] = 0
                    continue
            depth -= 1
    return nodes, True


Search = Callable[..., tuple[int, bool]]
_KERNEL: list[Search | None] = []  # the compiled ``_typed_search``
_GENERAL_KERNEL: list[Search | None] = []  # the compiled ``_general_search``
_COUNT_KERNEL: list[Callable[..., tuple[Any, bool]] | None] = []  # ``_count_vectors_with_loops``


def compiled_typed_search() -> Search | None:
    """The compiled ``_typed_search``, or None without numba."""
    if not compiled_loops_enabled():
        return None
    if not _KERNEL:
        _KERNEL.append(compile_with_example(_typed_search, (
            np.ones(1), np.array([0, 1]), np.zeros(1, dtype=np.int64), np.ones(1), np.ones(1),
            np.ones(1), np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64), np.zeros(1),
            np.ones(1), 1e-6, 1e-9, 10, np.zeros(1, dtype=np.int8)), "typed knapsack search"))
    return _KERNEL[0]


def compiled_count_vectors() -> Callable[..., tuple[Any, bool]] | None:
    """The compiled ``_count_vectors_with_loops``, or None without numba."""
    global _clipped_size, _walk_count_vectors
    if not compiled_loops_enabled():
        return None
    if not _COUNT_KERNEL:
        jit = numba_jit()
        if jit is not None:  # its helpers are called by name: their names hold compiled ones
            _clipped_size = jit(getattr(_clipped_size, "py_func", _clipped_size))
            _walk_count_vectors = jit(getattr(_walk_count_vectors, "py_func",
                                              _walk_count_vectors))
        _COUNT_KERNEL.append(compile_with_example(_count_vectors_with_loops, (
            np.ones(2, dtype=np.int64), np.ones((2, 1)), np.ones(1), 10), "count vectors"))
    return _COUNT_KERNEL[0]


def compiled_general_search() -> Search | None:
    """The compiled ``_general_search``, or None without numba."""
    if not compiled_loops_enabled():
        return None
    if not _GENERAL_KERNEL:
        _GENERAL_KERNEL.append(compile_with_example(_general_search, (
            np.ones(1), np.ones(1), np.array([0, 1]), np.ones(1), np.ones(1),
            np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int64),
            np.ones(1, dtype=np.int64), 1e-6, 1e-9, 10, np.zeros(1, dtype=np.int8)),
            "general typed knapsack search"))
    return _GENERAL_KERNEL[0]

