"""Volunteer selection (paper Sec. IV) and its expectation E[v] (App. B, eq. 66-68).

When the present contracted demand of a BS exceeds its real supply, the BS volunteers contracts
greedily: lowest PelS per unit of the overloaded resources first (each resource normalised by the
BS's supply), until the remaining demand fits both supplies. Volunteers receive PelS.

E[v] runs the rule on every participation case of a BS's tentative contracts, hundreds of times
per signing; a transaction runs it once per BS. With numba installed (the ``fast`` extra) both
run compiled (``_volunteer_cases_with_loops``, and ``_expected_volunteers_with_loops`` for the
exact E[v], which skips the cases that cannot overload the BS) with the same floating-point
operations in the same order as the numpy version, so E[v] and the volunteers are the same to
the last bit on both paths (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from isac_market_env.mechanisms._jit import (
    compile_or_warn,
    compiled_loops_enabled,
    cut,
    numba_jit,
    sequential_sums,
    shared_kernel,
    stable_argsort,
)

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]
# the exact E[v] first walks its participation cases with room for this many (most contract
# sets have fewer that can overload the BS), and again with room for all when there are more
FIRST_CASES = 64


def select_volunteers(present: BoolArray, bandwidth_hz: FloatArray, power_w: FloatArray,
                      compensation: FloatArray, supply_bandwidth_hz: float,
                      supply_power_w: float) -> BoolArray:
    """Volunteer mask for one transaction at one BS (greedy rule above)."""
    present = np.asarray(present, dtype=bool)
    if (np.sum(bandwidth_hz, where=present) <= supply_bandwidth_hz
            and np.sum(power_w, where=present) <= supply_power_w):
        # within both supplies nobody volunteers (the rule's own test, on sums added in
        # another order, has a margin of 1e-9 of the supply)
        return np.zeros(len(present), dtype=bool)
    kernels = compiled_volunteer_kernels()
    if kernels is None:
        return select_volunteers_batch(present[None, :], bandwidth_hz, power_w, compensation,
                                       supply_bandwidth_hz, supply_power_w)[0]
    # the one case as a Monte Carlo draw: uniform 0 is below presence 1, not below 0
    n = len(present)
    volunteers = np.zeros((1, n), dtype=bool)
    kernels.cases(present.astype(np.float64), np.asarray(bandwidth_hz, dtype=np.float64),
                  np.asarray(power_w, dtype=np.float64), np.asarray(compensation, dtype=np.float64),
                  float(supply_bandwidth_hz), float(supply_power_w), False, np.zeros((1, n)),
                  volunteers)
    return volunteers[0]


def select_volunteers_batch(present: BoolArray, bandwidth_hz: FloatArray, power_w: FloatArray,
                            compensation: FloatArray, supply_bandwidth_hz: float,
                            supply_power_w: float) -> BoolArray:
    """The greedy rule applied to many participation cases at once: ``present`` is (cases, n)."""
    n = present.shape[1]
    volunteers = np.zeros_like(present, dtype=bool)
    if n == 0:
        return volunteers
    # summed left to right (``@`` may add in another order) so the compiled twin matches bit for bit
    demand_b = np.cumsum(present * bandwidth_hz, axis=1)[:, -1]
    demand_p = np.cumsum(present * power_w, axis=1)[:, -1]
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


@dataclass(frozen=True, eq=False)
class VolunteerModel:
    """What a BS needs to publish E[v] for its tentative contracts (App. B).

    Its real supply per BS, the contract count up to which every participation case is
    enumerated, and the common uniforms (samples x clients) of the Monte Carlo estimate above
    it. The contracts' presences, bundles and PelS come from the matching.
    """

    supply_bandwidth_hz: FloatArray
    supply_power_w: FloatArray
    exact_max_contracts: int
    uniforms: FloatArray

    def rates(self, bs: int, clients: NDArray[np.int64], presence_prob: FloatArray,
              bandwidth_hz: FloatArray, power_w: FloatArray, compensation: FloatArray
              ) -> tuple[float, FloatArray]:
        """BS ``bs``'s E[v] for contracts with ``clients``, and each contract's own
        (``expected_volunteer_rates``)."""
        return expected_volunteer_rates(presence_prob, bandwidth_hz, power_w, compensation,
                                        float(self.supply_bandwidth_hz[bs]),
                                        float(self.supply_power_w[bs]),
                                        self.exact_max_contracts, self.uniforms[:, clients])


def expected_volunteer_rate(presence_prob: FloatArray, bandwidth_hz: FloatArray,
                            power_w: FloatArray, compensation: FloatArray,
                            supply_bandwidth_hz: float, supply_power_w: float,
                            exact_max_contracts: int,
                            uniforms: FloatArray | None) -> float:
    """E[#volunteers] / E[#present contracts] of one BS's contract set: the published E[v]
    (``expected_volunteer_rates``' first value)."""
    return expected_volunteer_rates(presence_prob, bandwidth_hz, power_w, compensation,
                                    supply_bandwidth_hz, supply_power_w, exact_max_contracts,
                                    uniforms)[0]


def expected_volunteer_rates(presence_prob: FloatArray, bandwidth_hz: FloatArray,
                             power_w: FloatArray, compensation: FloatArray,
                             supply_bandwidth_hz: float, supply_power_w: float,
                             exact_max_contracts: int,
                             uniforms: FloatArray | None) -> tuple[float, FloatArray]:
    """One BS's contract set: E[#volunteers] / E[#present contracts], and per contract its own
    E[v], Pr(volunteered) / Pr(present) (eq. 66-67 over the same cases).

    Contracts are present independently with ``presence_prob``. Up to ``exact_max_contracts``
    contracts every participation case is enumerated and weighted by its probability (eq. 66);
    above, ``uniforms`` (samples x contracts, common random numbers) give a Monte Carlo estimate.
    Sums run left to right, as in the matching's compiled twin (``_volunteer_rate_with_loops``).
    """
    n = len(presence_prob)
    none = np.zeros(n)
    if n == 0:
        return 0.0, none
    if (sequential_sums(bandwidth_hz) <= supply_bandwidth_hz
            and sequential_sums(power_w) <= supply_power_w):
        return 0.0, none
    expected_present = float(sequential_sums(presence_prob))
    if expected_present <= 0:
        return 0.0, none
    exact = n <= exact_max_contracts
    if not exact and (uniforms is None or uniforms.shape[1] != n):
        raise ValueError("Monte Carlo volunteer estimate needs one uniform column per contract")
    draws = np.zeros((0, n)) if uniforms is None or exact else np.ascontiguousarray(uniforms)
    kernels = compiled_volunteer_kernels()
    per_contract = np.zeros(n)
    if kernels is None:
        weights, counts, per_contract = _volunteer_cases_with_numpy(
            presence_prob, bandwidth_hz, power_w, compensation, supply_bandwidth_hz,
            supply_power_w, exact, draws)
        total = float(sequential_sums(weights * counts))
    elif exact:
        total = float(kernels.expected(presence_prob, bandwidth_hz, power_w, compensation,
                                       supply_bandwidth_hz, supply_power_w, per_contract))
    else:
        marks = np.zeros((len(draws), n), dtype=bool)
        weights, counts = kernels.cases(presence_prob, bandwidth_hz, power_w, compensation,
                                        supply_bandwidth_hz, supply_power_w, False, draws,
                                        marks)
        total = float(sequential_sums(weights * counts))
        per_contract = _marked_sums(weights, marks)
    return total / expected_present, _per_present(per_contract, presence_prob)


def _marked_sums(weights: FloatArray, marks: BoolArray) -> FloatArray:
    """Per contract, the probabilities of the cases that volunteer it, added in case order."""
    if len(weights) == 0:
        return np.zeros(marks.shape[1])
    return np.asarray(np.cumsum(weights[:, None] * marks, axis=0)[-1], dtype=np.float64)


def _per_present(volunteered: FloatArray, presence_prob: FloatArray) -> FloatArray:
    """Pr(volunteered) / Pr(present) per contract (0 for a contract that is never present)."""
    return np.divide(volunteered, presence_prob, out=np.zeros(len(volunteered)),
                     where=presence_prob > 0)


def _volunteer_cases_with_numpy(presence_prob: FloatArray, bandwidth_hz: FloatArray,
                                power_w: FloatArray, compensation: FloatArray,
                                supply_bandwidth_hz: float, supply_power_w: float, exact: bool,
                                uniforms: FloatArray
                                ) -> tuple[FloatArray, NDArray[np.int64], FloatArray]:
    """(probability, volunteer count) of every participation case, all 2^n when ``exact``,
    else one equally likely case per row of ``uniforms``; and per contract the probability of
    being volunteered."""
    n = len(presence_prob)
    if exact:
        cases = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
        # multiplied left to right, as the compiled twin does (and contiguous, as its result is:
        # ``weights @ counts`` may add in another order for a strided array)
        weights = np.ascontiguousarray(
            np.cumprod(np.where(cases, presence_prob, 1.0 - presence_prob), axis=1)[:, -1],
            dtype=np.float64)
    else:
        cases = uniforms < presence_prob[None, :]
        weights = np.full(len(cases), 1.0 / len(cases))
    volunteers = select_volunteers_batch(cases, bandwidth_hz, power_w, compensation,
                                         supply_bandwidth_hz, supply_power_w)
    return weights, volunteers.sum(axis=1, dtype=np.int64), _marked_sums(weights, volunteers)


def _volunteer_cases_with_loops(presence_prob: Any, bandwidth_hz: Any, power_w: Any,
                                compensation: Any, supply_bandwidth_hz: float,
                                supply_power_w: float, exact: bool, uniforms: Any,
                                volunteers: Any) -> tuple[Any, Any]:
    """``_volunteer_cases_with_numpy`` case by case in loops, for numba (compiled only).

    The same floating-point operations in the same order (products and sums left to right, the
    greedy order a stable sort of the same scores), so the same probabilities and counts.
    ``volunteers`` (cases x n, or 0 x n for none) receives each case's volunteer mask.
    """
    n = len(presence_prob)
    n_cases = 2**n if exact else uniforms.shape[0]
    tol_b = 1e-9 * max(supply_bandwidth_hz, 1.0)
    tol_p = 1e-9 * max(supply_power_w, 1.0)
    floats = np.empty(n_cases + n)  # the arrays cut from one buffer per type (``cut``)
    weights, at = _cut_kernel(floats, 0, n_cases)
    score, at = _cut_kernel(floats, at, n)
    ints = np.zeros(n_cases + 4 * n + 3, dtype=np.int64)
    counts, at = _cut_kernel(ints, 0, n_cases)
    # the greedy order (n each) for an overload of bandwidth only, power only, both: each
    # sorted when a case first needs it
    orders, at = _cut_kernel(ints, at, 3 * n)
    present, at = _cut_kernel(ints, at, n)  # 1: present in the case
    sorted_, at = _cut_kernel(ints, at, 3)
    marks = len(volunteers) > 0
    for c in range(n_cases):
        for i in range(n):
            present[i] = ((c >> i) & 1) == 1 if exact else uniforms[c, i] < presence_prob[i]
        if exact:
            weight = presence_prob[0] if present[0] else 1.0 - presence_prob[0]
            for i in range(1, n):
                weight *= presence_prob[i] if present[i] else 1.0 - presence_prob[i]
            weights[c] = weight
        else:
            weights[c] = 1.0 / n_cases
        demand_b = 0.0
        demand_p = 0.0
        for i in range(n):
            demand_b += bandwidth_hz[i] if present[i] else 0.0
            demand_p += power_w[i] if present[i] else 0.0
        over_b = demand_b > supply_bandwidth_hz + tol_b
        over_p = demand_p > supply_power_w + tol_p
        if not (over_b or over_p):
            continue
        k = 0 if not over_p else (1 if not over_b else 2)
        if not sorted_[k]:
            for i in range(n):
                size = ((bandwidth_hz[i] / supply_bandwidth_hz if k != 1 else 0.0)
                        + (power_w[i] / supply_power_w if k != 0 else 0.0))
                score[i] = compensation[i] / max(size, 1e-300)
            _argsort_kernel(score, orders[k * n:(k + 1) * n])
            sorted_[k] = 1
        freed_b = 0.0
        freed_p = 0.0
        for position in range(n):
            i = orders[k * n + position]
            if present[i]:
                freed_b += bandwidth_hz[i]
                freed_p += power_w[i]
                counts[c] += 1
                if marks:
                    volunteers[c, i] = True
            if (demand_b - freed_b <= supply_bandwidth_hz + tol_b
                    and demand_p - freed_p <= supply_power_w + tol_p):
                break
    return weights, counts


def _expected_volunteers_with_loops(presence_prob: Any, bandwidth_hz: Any, power_w: Any,
                                    compensation: Any, supply_bandwidth_hz: float,
                                    supply_power_w: float, per_contract: Any) -> float:
    """E[#volunteers] over all 2^n participation cases, for numba (compiled only): the sum of
    probability x count that the exact ``_volunteer_cases_with_numpy`` gives, to the last bit;
    ``per_contract`` (n, zeros) receives each contract's probability of being volunteered, the
    same sums in the same case order.

    Only the cases that may overload the BS are weighed and counted (``_overloadable_cases``;
    the others have no volunteers, and leaving out their zero terms changes no bit of the sum),
    with the same products and by ``_volunteer_cases_with_loops``, in the same order. With 20%
    overbooking most cases fit, so few are left.
    """
    n = len(presence_prob)
    # the rule's overload test, 1e-12 lower: the walk adds the demand in another order than the
    # rule, which can move a sum of n <= 64 terms by ~1e-14 of itself, never by 1e-12
    safe_b = (supply_bandwidth_hz + 1e-9 * max(supply_bandwidth_hz, 1.0)) * (1.0 - 1e-12)
    safe_p = (supply_power_w + 1e-9 * max(supply_power_w, 1.0)) * (1.0 - 1e-12)
    # fill arrays of a few cases while counting them, and walk again with arrays of the count
    # only if they were too small (arrays grown inside the walk would cost reference counting
    # on every step of it)
    first = np.empty(FIRST_CASES * (n + 1))  # one buffer for both
    draws = first[:FIRST_CASES * n].reshape((FIRST_CASES, n))
    weights = first[FIRST_CASES * n:]
    n_left = _overloadable_kernel(presence_prob, bandwidth_hz, power_w, safe_b, safe_p, draws,
                                  weights)
    if n_left == 0:
        return 0.0
    if n_left > FIRST_CASES:
        draws = np.empty((n_left, n))
        weights = np.empty(n_left)
        _overloadable_kernel(presence_prob, bandwidth_hz, power_w, safe_b, safe_p, draws,
                             weights)
    draws = draws[:n_left]
    weights = weights[:n_left]
    marks = np.zeros((n_left, n), dtype=np.bool_)
    _, counts = _cases_kernel(presence_prob, bandwidth_hz, power_w, compensation,
                              supply_bandwidth_hz, supply_power_w, False, draws, marks)
    total = 0.0
    for c in range(n_left):
        if counts[c] > 0:
            total += weights[c] * counts[c]
            for i in range(n):
                if marks[c, i]:
                    per_contract[i] += weights[c]
    return total


def _overloadable_cases(presence_prob: Any, bandwidth_hz: Any, power_w: Any, safe_b: float,
                        safe_p: float, draws: Any, weights: Any) -> int:
    """The participation cases whose demand may exceed ``safe_b`` or ``safe_p``, in case order
    (case c has contract i present when bit i of c is set), for numba (compiled only).

    Returns their number; fills ``draws`` (-1 present, 2 absent: below and above any presence)
    and ``weights`` (the case probabilities, multiplied left to right as in
    ``_volunteer_cases_with_loops``) for as many cases as they have room for. A depth-first
    walk decides the highest bit first, absent before present, and skips every subtree in which
    even all undecided contracts present keep the demand within both limits (the caller's
    limits lie far enough below the supplies that no rounding can put such a case over).
    """
    n = len(presence_prob)
    floats = np.zeros(4 * (n + 1))  # one buffer (``cut``)
    all_low_b, at = _cut_kernel(floats, 0, n + 1)  # demand of contracts 0..k-1, all present
    all_low_p, at = _cut_kernel(floats, at, n + 1)
    decided_b, at = _cut_kernel(floats, at, n + 1)  # of the present contracts n-d..n-1 at depth d
    decided_p, at = _cut_kernel(floats, at, n + 1)
    for i in range(n):
        all_low_b[i + 1] = all_low_b[i] + bandwidth_hz[i]
        all_low_p[i + 1] = all_low_p[i] + power_w[i]
    ints = np.zeros(2 * n + 1, dtype=np.int64)
    visited, at = _cut_kernel(ints, 0, n + 1)  # children of the node at depth d visited so far
    present, at = _cut_kernel(ints, at, n)  # 1: contract present
    n_cases = 0
    d = 0
    while True:
        if visited[d] == 0:
            if (decided_b[d] + all_low_b[n - d] <= safe_b
                    and decided_p[d] + all_low_p[n - d] <= safe_p):
                visited[d] = 2  # no case below can overload the BS
            elif d == n:
                if n_cases < len(weights):
                    weight = presence_prob[0] if present[0] else 1.0 - presence_prob[0]
                    for i in range(1, n):
                        weight *= presence_prob[i] if present[i] else 1.0 - presence_prob[i]
                    weights[n_cases] = weight
                    for i in range(n):
                        draws[n_cases, i] = -1.0 if present[i] else 2.0
                n_cases += 1
                visited[d] = 2
        if visited[d] < 2:  # contract n-1-d absent first (the smaller cases), then present
            i = n - 1 - d
            present[i] = visited[d] == 1
            decided_b[d + 1] = decided_b[d] + bandwidth_hz[i] if present[i] else decided_b[d]
            decided_p[d + 1] = decided_p[d] + power_w[i] if present[i] else decided_p[d]
            visited[d] += 1
            d += 1
            visited[d] = 0
            continue
        if d == 0:
            return n_cases
        d -= 1


@dataclass(frozen=True)
class VolunteerKernels:
    """The compiled volunteer rule: every case's probability and count (``cases``), and the
    exact E[#volunteers] alone (``expected``)."""

    cases: Callable[..., tuple[FloatArray, NDArray[np.int64]]]
    expected: Callable[..., float]


# compiled functions that compiled callers reach as globals (set by ``_compile``)
_cases_kernel: Any = None
_overloadable_kernel: Any = None
_argsort_kernel: Any = None
_cut_kernel: Any = None
_KERNEL: list[VolunteerKernels | None] = []


def compiled_volunteer_kernels() -> VolunteerKernels | None:
    """The compiled volunteer rule (compiled or loaded from numba's cache on the first call), or
    None without numba (the numpy versions run; same results)."""
    if not compiled_loops_enabled():
        return None
    if not _KERNEL:
        jit = numba_jit()
        _KERNEL.append(None if jit is None else compile_or_warn(lambda: _compile(jit),
                                                                "volunteer rule"))
    return _KERNEL[0]


def _compile(jit: Any) -> VolunteerKernels:
    global _cases_kernel, _overloadable_kernel, _argsort_kernel, _cut_kernel
    _argsort_kernel = shared_kernel(stable_argsort, jit)
    _cut_kernel = shared_kernel(cut, jit)
    cases = _cases_kernel = jit(_volunteer_cases_with_loops)
    _overloadable_kernel = jit(_overloadable_cases)
    expected = jit(_expected_volunteers_with_loops)
    one = np.ones(1)  # compile for the argument types of the calls
    cases(one / 2, one, one, one, 1.0, 1.0, True, np.zeros((0, 1)), np.zeros((0, 1), np.bool_))
    expected(one / 2, one, one, one, 0.5, 0.5, np.zeros(1))
    return VolunteerKernels(cast(Callable[..., tuple[FloatArray, NDArray[np.int64]]], cases),
                            cast(Callable[..., float], expected))
