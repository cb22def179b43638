"""Exact multi-constraint 0-1 knapsack: the BS's client selection of Alg. 1 line 15 (eq. 37c-37f).

A BS keeps the subset of its held and newly proposed clients that maximises its (expected) utility
subject to linear capacity constraints: booked bandwidth and power within the overbooked supply
(37c, 37d) and, with risk control, expected demand within rho * supply (69, 70). The paper solves
this by DP; we solve it exactly by depth-first branch and bound (include-first in a fixed order, an
incumbent replaced only by a strictly better set, so ties are broken deterministically). Instances
that exceed ``node_limit`` search nodes or ``MAX_SEARCH_DEPTH`` items are handed to HiGHS
(``scipy.optimize.milp``). The answer is optimal to a relative ``RELATIVE_GAP`` = 1e-6 of the BS's
utility.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp

from isac_market_env.mechanisms._highs import quiet_stdout

VALUE_TOLERANCE = 1e-9
# A branch is pruned when it cannot beat the incumbent by more than this fraction: the selection
# is optimal to 1e-6 of the BS's utility (money values differ far above that; exact ties below it
# are broken by the fixed search order).
RELATIVE_GAP = 1e-6
CAPACITY_TOLERANCE = 1e-9
# The branch and bound recurses once per item; larger instances (a BS facing ~1,000 proposals in a
# market of thousands of MUs) go straight to HiGHS, well inside Python's default recursion limit.
MAX_SEARCH_DEPTH = 800


@dataclass(frozen=True)
class KnapsackResult:
    """Selected items (boolean mask over the input), their total value, and how it was solved."""

    selected: NDArray[np.bool_]
    value: float
    nodes: int
    solver: str


def solve_knapsack(values: NDArray[np.float64], weights: NDArray[np.float64],
                   capacities: NDArray[np.float64], node_limit: int = 3_000,
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
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    capacities = np.asarray(capacities, dtype=np.float64)
    n = len(values)
    if weights.shape != (len(capacities), n):
        raise ValueError(f"weights must have shape ({len(capacities)}, {n}), got {weights.shape}")
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError("knapsack weights must be finite and non-negative")
    slack = capacities + CAPACITY_TOLERANCE * np.maximum(1.0, np.abs(capacities))
    candidate = (values > VALUE_TOLERANCE) & np.all(weights <= slack[:, None], axis=0)
    selected = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(candidate)
    if idx.size == 0:
        return KnapsackResult(selected, 0.0, 0, "trivial")
    pairs = np.empty((0, 2), dtype=np.intp)
    if conflicts is not None and len(conflicts):
        position = np.full(n, -1, dtype=np.intp)
        position[idx] = np.arange(idx.size)
        pairs = position[np.asarray(conflicts, dtype=np.intp).reshape(-1, 2)]
        pairs = pairs[np.all(pairs >= 0, axis=1)]
    if len(pairs) == 0 and np.all(weights[:, idx].sum(axis=1) <= slack):
        selected[idx] = True
        return KnapsackResult(selected, float(values[idx].sum()), 0, "all-fit")
    start = None if incumbent is None else np.asarray(incumbent, dtype=bool)[idx]
    chosen: NDArray[np.intp] | None = None
    nodes, solver = 0, "branch-and-bound"
    if idx.size <= MAX_SEARCH_DEPTH:
        chosen, nodes = _branch_and_bound(values[idx], weights[:, idx], slack, node_limit, start,
                                          pairs)
    if chosen is None:
        chosen = _milp(values[idx], weights[:, idx], slack, pairs)
        solver = "milp"
    selected[idx[chosen]] = True
    return KnapsackResult(selected, float(values[selected].sum()), nodes, solver)


def _branch_and_bound(values: NDArray[np.float64], weights: NDArray[np.float64],
                      capacities: NDArray[np.float64], node_limit: int,
                      incumbent: NDArray[np.bool_] | None = None,
                      conflicts: NDArray[np.intp] | None = None
                      ) -> tuple[NDArray[np.intp] | None, int]:
    """DFS branch and bound; returns (chosen item positions, nodes) or (None, nodes) at the limit.

    Constraints that all candidates together satisfy can never bind and are dropped. Items are
    visited by decreasing value per unit of the surrogate constraint (sum of the binding
    constraints, each normalised by its capacity), so the surrogate's fractional (Dantzig) bound
    over the undecided items is a prefix-sum look-up. When it does not prune, the node also tries
    the Dantzig bound of every binding constraint alone; each is a valid relaxation. Dominated
    items are excluded with the item that dominates them (a symmetry cut that keeps an optimum).
    Including an item excludes its ``conflicts`` partners; the bounds ignore conflicts (still
    valid relaxations), and an item with a partner dominates nothing (the swap could clash).
    """
    binding = weights.sum(axis=1) > capacities
    weights, capacities = weights[binding], capacities[binding]
    n_constraints = len(capacities)
    scale = 1.0 / np.maximum(capacities, 1e-300)
    surrogate = (weights * scale[:, None]).sum(axis=0)
    order = np.lexsort((np.arange(len(values)), -values / np.maximum(surrogate, 1e-300)))
    vals = values[order].tolist()
    wts = [row.tolist() for row in weights[:, order].T]
    sur = surrogate[order].tolist()
    n, m = len(vals), n_constraints
    prefix_w = [0.0] * (n + 1)
    prefix_v = [0.0] * (n + 1)
    for i in range(n):
        prefix_w[i + 1] = prefix_w[i] + sur[i]
        prefix_v[i + 1] = prefix_v[i] + vals[i]
    rel = (weights * scale[:, None])[:, order]
    per_constraint = []
    if m > 1:
        for r in range(m):
            dens = np.where(rel[r] > 0, np.asarray(vals) / np.maximum(rel[r], 1e-300), np.inf)
            pos = np.lexsort((np.arange(n), -dens)).tolist()
            per_constraint.append([(p, float(rel[r, p]), vals[p]) for p in pos])
    rel_w = rel.T.tolist()
    # dominance: j (after i) needs at least i's resources for at most i's value, so an optimal
    # set that leaves i out can leave j out too (swap j for i)
    w_sorted = weights[:, order]
    v_sorted = values[order]
    rank = np.empty(n, dtype=np.intp)
    rank[order] = np.arange(n)
    partners: list[list[int]] = [[] for _ in range(n)]
    for a, b in ([] if conflicts is None else rank[conflicts].tolist()):
        partners[a].append(b)
        partners[b].append(a)
    dominates = (np.all(w_sorted[:, None, :] >= w_sorted[:, :, None], axis=0)
                 & (v_sorted[None, :] <= v_sorted[:, None])
                 & (np.arange(n)[None, :] > np.arange(n)[:, None]))
    dominates[[i for i in range(n) if partners[i]]] = False
    dominated = [np.flatnonzero(row).tolist() for row in dominates]
    forbidden = [0] * n

    remaining = list(capacities.tolist())
    rel_remaining = [1.0] * m
    sur_remaining = float(m)
    current: list[int] = []
    nodes = 0
    best_set: list[int] = []
    greedy_left = list(remaining)
    best_value = 0.0
    for i in range(n):
        if (all(wts[i][r] <= greedy_left[r] for r in range(m))
                and not any(q in best_set for q in partners[i])):
            for r in range(m):
                greedy_left[r] -= wts[i][r]
            best_set.append(i)
            best_value += vals[i]
    if (incumbent is not None and np.all(weights[:, incumbent].sum(axis=1) <= capacities)
            and (conflicts is None or not np.any(np.all(incumbent[conflicts], axis=1)))):
        incumbent_value = float(values[incumbent].sum())
        if incumbent_value > best_value + VALUE_TOLERANCE:
            best_set = sorted(rank[np.flatnonzero(incumbent)].tolist())
            best_value = incumbent_value

    def surrogate_bound(start: int, value: float) -> float:
        target = prefix_w[start] + sur_remaining
        k = bisect_right(prefix_w, target, start, n + 1) - 1  # items start..k-1 fit whole
        total = value + prefix_v[k] - prefix_v[start]
        if k < n and sur[k] > 0:
            total += vals[k] * (target - prefix_w[k]) / sur[k]
        return total

    def constraint_bound(start: int, value: float, limit: float) -> float:
        tightest = np.inf
        for r, entries in enumerate(per_constraint):
            cap = rel_remaining[r]
            total = value
            for p, w, v in entries:
                if p < start:
                    continue
                if w <= cap:
                    cap -= w
                    total += v
                else:
                    total += v * cap / w
                    break
            if total < tightest:
                tightest = total
                if tightest <= limit:
                    break
        return float(tightest)

    def visit(start: int, value: float) -> bool:
        nonlocal best_value, best_set, nodes, sur_remaining
        nodes += 1
        if nodes > node_limit:
            return False
        if value > best_value + VALUE_TOLERANCE:
            best_value, best_set = value, list(current)
        limit = best_value * (1.0 + RELATIVE_GAP) + VALUE_TOLERANCE
        if start == n or value + prefix_v[n] - prefix_v[start] <= limit:
            return True
        if surrogate_bound(start, value) <= limit:
            return True
        if per_constraint and constraint_bound(start, value, limit) <= limit:
            return True
        w = wts[start]
        if forbidden[start] == 0 and all(w[r] <= remaining[r] for r in range(m)):
            rw = rel_w[start]
            for r in range(m):
                remaining[r] -= w[r]
                rel_remaining[r] -= rw[r]
            sur_remaining -= sur[start]
            current.append(start)
            for q in partners[start]:
                forbidden[q] += 1
            ok = visit(start + 1, value + vals[start])
            for q in partners[start]:
                forbidden[q] -= 1
            current.pop()
            for r in range(m):
                remaining[r] += w[r]
                rel_remaining[r] += rw[r]
            sur_remaining += sur[start]
            if not ok:
                return False
        for j in dominated[start]:
            forbidden[j] += 1
        ok = visit(start + 1, value)
        for j in dominated[start]:
            forbidden[j] -= 1
        return ok

    if not visit(0, 0.0):
        return None, nodes
    return order[np.array(best_set, dtype=np.intp)], nodes


def _milp(values: NDArray[np.float64], weights: NDArray[np.float64],
          capacities: NDArray[np.float64],
          conflicts: NDArray[np.intp] | None = None) -> NDArray[np.intp]:
    """MILP (HiGHS, gap ``RELATIVE_GAP``) for instances too large for the branch and bound."""
    if conflicts is not None and len(conflicts):
        rows = np.zeros((len(conflicts), len(values)))
        rows[np.arange(len(conflicts))[:, None], conflicts] = 1.0
        weights = np.vstack([weights, rows])
        capacities = np.concatenate([capacities, np.ones(len(conflicts))])
    with quiet_stdout():
        res = milp(-values, constraints=LinearConstraint(weights, -np.inf, capacities),
                   integrality=np.ones(len(values)), bounds=Bounds(0, 1),
                   options={"mip_rel_gap": RELATIVE_GAP})
    if res.x is None:  # pragma: no cover - the empty set is always feasible
        raise RuntimeError(f"knapsack MILP failed: {res.message}")
    return np.flatnonzero(res.x > 0.5)
