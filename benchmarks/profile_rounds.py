"""Where a compiled matching round's time goes, counted in CPU cycles inside the compiled code.

Timing the compiled pieces from Python costs ~8 us per call, more than a 50-MU round's pieces
take, so this script compiles instrumented copies of the round loops instead: the source of
``_rounds_with_loops``, ``_play_with_loops``, ``_answer_with_loops``,
``_volunteer_rate_with_loops``, ``knapsack._solve_with_loops`` and
``knapsack._prepare_and_search`` with the CPU's cycle counter (``llvm.readcyclecounter``) read
around each piece, into an array passed down as a first argument. The copies make the same
calls and decisions as the package's loops (the script checks the rounds and contracts
against an uninstrumented run); selections that need the typed search or HiGHS are finished
in Python, as the package does, and are not counted. A marker missing from a function's
source (the package changed) stops the script.

Pieces: the rule proposals; the BSs' answers, of which the selection (its preamble in
``_solve_with_loops``, its set-up in ``_prepare_and_search`` and the branch and bound search);
the E[v] estimates, of which the exact expectation; the raised bids. x86-64 only (elsewhere
the cycle counter may not be readable from user space).

Usage: python benchmarks/profile_rounds.py [--n-mus 50] [--seeds 12] [--phase signing|online]
       [--eua-dir ../shared/data/eua] [--json OUT]
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

import isac_market_env as ime
from isac_market_env.mechanisms import knapsack, matching

PIECES = ("proposals", "answers", "selection", "selection_preamble", "selection_search",
          "estimates", "exact_expectation", "raises")
PROPOSALS, ANSWERS, SELECTION, PREAMBLE, SEARCH, ESTIMATES, EXACT, RAISES = range(len(PIECES))
ROUNDS, SELECTIONS, ITEMS, NODES, SEARCHES = range(len(PIECES), len(PIECES) + 5)


@intrinsic
def cycles(typingctx: Any) -> Any:
    """The CPU's cycle counter (compiled code only)."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        counter = cgutils.get_or_insert_function(builder.module,
                                                 ir.FunctionType(ir.IntType(64), []),
                                                 "llvm.readcyclecounter")
        return builder.call(counter, [])
    return types.int64(), codegen


def instrumented(function: Callable[..., Any], module: Any, name: str,
                 edits: list[tuple[str, str]], names: dict[str, Any]) -> Any:
    """``function`` compiled as ``name`` with the counters array as its first argument, after
    the source ``edits`` (each marker must occur exactly once)."""
    source = inspect.getsource(function).replace(f"def {function.__name__}(",
                                                 f"def {name}(acc, ", 1)
    for marker, replacement in edits:
        if source.count(marker) != 1:
            raise SystemExit(f"{function.__name__} changed: {marker!r} not found once; update "
                             "benchmarks/profile_rounds.py")
        source = source.replace(marker, replacement)
    scope = {**vars(module), **names, "cycles": cycles}
    exec(compile(source, f"<instrumented {function.__name__}>", "exec"), scope)
    return numba.njit(error_model="numpy")(scope[name])  # as the package compiles


def build() -> Any:
    """The instrumented copy of ``_rounds_with_loops`` (and of what it calls)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise SystemExit("the cycle counter is read with x86-64's rdtsc; on "
                         f"{platform.machine()} it may not be readable from user space")
    if not matching.load_compiled_matching():
        raise SystemExit("the compiled loops are off or numba is missing: nothing to profile")
    names: dict[str, Any] = {}
    names["prepare_p"] = instrumented(knapsack._prepare_and_search, knapsack, "prepare_p", [
        ("    nodes, finished = _search_kernel(",
         "    t0 = cycles()\n    nodes, finished = _search_kernel("),
        ("    selected = np.empty(n, dtype=np.int8)\n    for i in range(n):\n"
         "        selected[order",
         f"    acc[{SEARCH}] += cycles() - t0\n    acc[{NODES}] += nodes\n"
         f"    acc[{SEARCHES}] += 1\n    selected = np.empty(n, dtype=np.int8)\n"
         "    for i in range(n):\n        selected[order"),
    ], names)
    names["solve_p"] = instrumented(knapsack._solve_with_loops, knapsack, "solve_p", [
        ("    m, n = weights.shape\n", "    t_start = cycles()\n    m, n = weights.shape\n"),
        ("    chosen, nodes, finished = _prepare_kernel(",
         f"    acc[{PREAMBLE}] += cycles() - t_start\n"
         "    chosen, nodes, finished = prepare_p(acc, "),
    ], names)
    names["answer_p"] = instrumented(matching._answer_with_loops, matching, "answer_p", [
        ("        keep, _, outcome = _solve_kernel(",
         "        t0 = cycles()\n        keep, _, outcome = solve_p(acc, "),
        ("pair_b[:n_pairs], start, True, node_limit)\n",
         "pair_b[:n_pairs], start, True, node_limit)\n"
         f"        acc[{SELECTION}] += cycles() - t0\n        acc[{SELECTIONS}] += 1\n"
         f"        acc[{ITEMS}] += n\n"),
    ], names)
    names["estimate_p"] = instrumented(matching._volunteer_rate_with_loops, matching,
                                       "estimate_p", [
        ("        rate = _expected_volunteers_kernel(",
         "        t0 = cycles()\n        rate = _expected_volunteers_kernel("),
        ("                                           volunteered) / expected_present\n",
         "                                           volunteered) / expected_present\n"
         f"        acc[{EXACT}] += cycles() - t0\n"),
    ], names)
    names["play_p"] = instrumented(matching._play_with_loops, matching, "play_p", [
        ("            outcome, rej, n_displaced = _answer_kernel(j, ",
         "            t0 = cycles()\n            outcome, rej, n_displaced = answer_p(acc, j, "),
        ("            if outcome == TOO_HARD:\n                return INTERRUPTED",
         f"            acc[{ANSWERS}] += cycles() - t0\n"
         "            if outcome == TOO_HARD:\n                return INTERRUPTED"),
        ("    if terms.estimate:\n", "    t0 = cycles()\n    if terms.estimate:\n"),
        ("_volunteer_rate_kernel(j, state,", "estimate_p(acc, j, state,"),
        ("    _raise_kernel(rejected, state, sols, terms)\n",
         f"    acc[{ESTIMATES}] += cycles() - t0\n    t0 = cycles()\n"
         f"    _raise_kernel(rejected, state, sols, terms)\n    acc[{RAISES}] += cycles() - t0\n"),
    ], names)
    return instrumented(matching._rounds_with_loops, matching, "rounds_p", [
        ("                     else _proposals_kernel(state, sols, terms))\n",
         "                     else _proposals_kernel(state, sols, terms))\n"
         f"        acc[{PROPOSALS}] += cycles() - t0\n"),
        ("        proposals = (_threaded_proposals_kernel(",
         "        t0 = cycles()\n        proposals = (_threaded_proposals_kernel("),
        ("_play_kernel(proposals, pays,", "play_p(acc, proposals, pays,"),
        ("        if status != PLAYED:",
         f"        acc[{ROUNDS}] += 1\n        if status != PLAYED:"),
    ], names)


def run(rounds_p: Any, problem: Any, volunteers: Any, acc: Any) -> tuple[float, Any]:
    """One matching with the instrumented rounds: (seconds, result)."""
    m = matching.AscendingMatching(problem, volunteers)
    started = time.perf_counter()
    while not m.finished:
        counters = m._counters()
        status, proposals, position, rejected = rounds_p(
            acc, m.state(counters), m.solutions, m.bs_table, m.terms, -1, -1)
        m._take_counters(counters)
        if status == matching.CONVERGED:
            m.converged = m.finished = True
        elif status == matching.INTERRUPTED:  # typed search or HiGHS: in Python, not counted
            m._finish_interrupted(proposals, m.bids[proposals],
                                  np.ones(len(proposals), dtype=bool), position, rejected)
        if m.rounds >= problem.max_rounds:
            m.finished = True
    return time.perf_counter() - started, m.result()


def matchings(phase: str, n_mus: int, seeds: int, eua_dir: str | None = None
              ) -> list[tuple[Any, Any]]:
    """The (problem, volunteer model) of every matching to profile (``eua_dir``: the EUA
    Melbourne market's instead of ``n_mus`` synthetic MUs)."""
    out: list[tuple[Any, Any]] = []
    for seed in range(seeds):
        market = (ime.make_market("frbank", "eua-melbourne", n_transactions=10, seed=seed,
                                  eua_directory=eua_dir) if eua_dir else
                  ime.make_market("frbank", n_mus=n_mus, n_transactions=10, seed=seed))
        if phase == "signing":
            out.append((market.offline_problem(), market.volunteer_model()))
            continue
        market.sign()
        for _ in range(10):
            pending = market.prepare_transaction()
            if pending.online_problem is not None and len(pending.online_problem.sol_client):
                out.append((pending.online_problem, None))
            market.complete_transaction(pending, market.run_online(pending))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-mus", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--phase", choices=("signing", "online"), default="signing")
    parser.add_argument("--eua-dir", default=None,
                        help="profile the EUA Melbourne market (its data directory) instead")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rounds_p = build()
    problems = matchings(args.phase, args.n_mus, args.seeds, args.eua_dir)
    if not problems:
        raise SystemExit(f"no {args.phase} matching to profile: try more MUs or seeds")
    acc = np.zeros(len(PIECES) + 5, dtype=np.int64)
    run(rounds_p, *problems[0], acc)  # compile
    acc[:] = 0
    seconds = 0.0
    for problem, volunteers in problems:
        took, result = run(rounds_p, problem, volunteers, acc)
        reference = matching.run_matching(problem, volunteers)
        assert (result.rounds == reference.rounds
                and np.array_equal(result.client_solution, reference.client_solution)
                and np.array_equal(result.client_payment, reference.client_payment))
        seconds += took
    total = int(acc[PROPOSALS] + acc[ANSWERS] + acc[ESTIMATES] + acc[RAISES])
    if total == 0:
        raise SystemExit(f"the {args.phase} matchings played no round: try more MUs or seeds")
    share = {piece: float(acc[i] / total) for i, piece in enumerate(PIECES)}
    share["selection_set_up"] = (share["selection"] - share["selection_preamble"]
                                 - share["selection_search"])
    rounds = int(acc[ROUNDS])
    row = {"phase": args.phase, "market": "eua-melbourne" if args.eua_dir else "synthetic",
           "n_mus": args.n_mus, "seeds": args.seeds,
           "matchings": len(problems), "seconds": seconds, "rounds": rounds,
           "cycles_per_round": total / max(rounds, 1), "share": share,
           "selections": int(acc[SELECTIONS]),
           "items_per_selection": float(acc[ITEMS] / max(acc[SELECTIONS], 1)),
           "searches": int(acc[SEARCHES]),
           "nodes_per_search": float(acc[NODES] / max(acc[SEARCHES], 1)),
           "machine": platform.processor() or platform.machine(),
           "date": time.strftime("%Y-%m-%d")}
    market = "EUA" if args.eua_dir else f"{args.n_mus} MUs"
    print(f"{args.phase}, {market}, {len(problems)} matchings: {rounds} rounds in "
          f"{seconds:.3f} s, {row['cycles_per_round']:.0f} cycles per round")
    for piece in ("proposals", "answers", "selection", "selection_preamble",
                  "selection_set_up", "selection_search", "estimates", "exact_expectation",
                  "raises"):
        indent = "    " + "  " * piece.startswith("selection_") if piece.startswith(
            ("selection", "exact")) else "  "
        print(f"{indent}{piece:<22}{100 * share[piece]:5.1f} %")
    print(f"  {row['selections']} selections of {row['items_per_selection']:.1f} items, "
          f"{row['searches']} searched, {row['nodes_per_search']:.1f} nodes each")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(row, out, indent=1)


if __name__ == "__main__":
    main()
