"""Speed of the core simulator (issue targets in brackets).

* offline signing, paper-synthetic, 100 MUs: median over seeds        [<= 50 ms]
* one practical transaction (participation, volunteers, onEBW2M)       [<= 5 ms median]
* eua-melbourne episode with 100 transactions                          [<= 1 s]
* growth of the offline matching time with MUs (5 BSs) and BSs (200 MUs)
* what the bid step buys: signing time, rounds and episode SW against ``bid_increment_fraction``
* the search budget ``knapsack_node_limit`` (30,000 by default): signing time, HiGHS calls and
  the SW of signing + 10 transactions at 3,000 / 30,000 / 300,000 nodes (numpy: the first two),
  and the EUA episode at 300,000 (compiled only)

Usage: python benchmarks/bench_core.py [--quick] [--json OUT]
(``ISAC_MARKET_ENV_JIT=0`` measures the numpy code instead of numba's compiled loops.)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import isac_market_env as ime
from isac_market_env.mechanisms.matching import load_compiled_matching

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1e3, out


NODE_LIMITS = (3_000, 30_000, 300_000)  # a smaller budget, the default, a larger one


def signing_ms(n_mus: int, seed: int, n_bss: int = 5) -> tuple[float, int, bool]:
    market = ime.make_market("frbank", n_mus=n_mus, n_transactions=1, seed=seed,
                             scenario_overrides={"n_bss": n_bss})
    ms, signing = timed(market.sign)
    return ms, signing.rounds, signing.converged


def node_limit_run(seed: int, limit: int) -> tuple[float, int, float]:
    """Signing ms, HiGHS calls and SW of signing + 10 transactions (100 MUs) at ``limit``."""
    market = ime.make_market("frbank", n_mus=100, n_transactions=10, seed=seed,
                             market_overrides={"knapsack_node_limit": limit})
    ms, signing = timed(market.sign)
    return ms, signing.milp_calls, market.run().summary()["social_welfare"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer seeds, smaller sweeps")
    parser.add_argument("--json", default=None)
    parser.add_argument("--budget-s", type=float, default=120.0,
                        help="stop a sweep once one point takes longer than this")
    args = parser.parse_args()
    seeds = range(3 if args.quick else 7)
    out: dict[str, object] = {"machine": platform.processor() or platform.machine(),
                              "python": platform.python_version()}
    out["compiled"] = load_compiled_matching()  # numba's loops (``fast`` extra) or numpy
    print(f"compiled loops (numba): {out['compiled']}")

    sign = [signing_ms(100, s) for s in seeds]
    out["signing_100_mus_ms"] = [round(x[0], 1) for x in sign]
    out["signing_100_mus_rounds"] = [x[1] for x in sign]
    print(f"offline signing, 100 MUs, 5 BSs: median {statistics.median(x[0] for x in sign):.0f} ms "
          f"(rounds {[x[1] for x in sign]}, converged {all(x[2] for x in sign)}) [target 50 ms]")

    # a large search budget pays only compiled (in CPython a million nodes take seconds)
    budgets = []
    for limit in NODE_LIMITS if out["compiled"] else NODE_LIMITS[:2]:
        runs = [node_limit_run(s, limit) for s in seeds]
        budgets.append({"knapsack_node_limit": limit,
                        "signing_ms": [round(r[0], 1) for r in runs],
                        "milp_calls": [r[1] for r in runs],
                        "social_welfare_10_tx": [round(r[2], 3) for r in runs]})
        print(f"  knapsack_node_limit {limit:9,}: signing median "
              f"{statistics.median(r[0] for r in runs):5.0f} ms, HiGHS calls "
              f"{sum(r[1] for r in runs)} over {len(runs)} signings, SW (10 transactions) "
              f"{[round(r[2], 1) for r in runs]}")
    out["knapsack_node_limit"] = budgets

    tx_ms = []
    for s in seeds:
        market = ime.make_market("frbank", n_mus=100, n_transactions=10, seed=s)
        market.sign()
        for _ in range(10):
            ms, _tx = timed(market.transact)
            tx_ms.append(ms)
    out["transaction_100_mus_ms"] = [round(x, 2) for x in tx_ms]
    print(f"one transaction, 100 MUs: median {statistics.median(tx_ms):.1f} ms, "
          f"p90 {sorted(tx_ms)[int(0.9 * len(tx_ms))]:.1f} ms [target 5 ms]")

    eua_limits: list[int | None] = [None, NODE_LIMITS[-1]] if out["compiled"] else [None]
    for eua_limit in eua_limits:
        key = "" if eua_limit is None else "_large_node_limit"
        overrides: dict[str, object] = ({} if eua_limit is None
                                        else {"knapsack_node_limit": eua_limit})
        eua_runs = []
        for s in list(seeds)[:2]:
            ms, result = timed(partial(ime.simulate, "frbank", scenario="eua-melbourne",
                                       n_transactions=100, seed=s, market_overrides=overrides))
            eua_runs.append((ms, result.summary()))
        out[f"eua_episode_100_tx_ms{key}"] = [round(x[0]) for x in eua_runs]
        print(f"eua-melbourne episode, 100 transactions {overrides or ''}: "
              f"{[round(x[0]) for x in eua_runs]} ms (signing "
              f"{[round(x[1]['rt_offline_ms']) for x in eua_runs]} ms) [target 1000 ms]")

    sweep_mus = [50, 100, 200, 500] if args.quick else [50, 100, 200, 500, 1000, 2000]
    growth = []
    for n in sweep_mus:
        ms, rounds, conv = signing_ms(n, 0)
        growth.append({"n_mus": n, "n_bss": 5, "ms": round(ms), "rounds": rounds,
                       "converged": conv})
        print(f"  signing {n:5d} MUs, 5 BSs: {ms:9.0f} ms, {rounds} rounds, converged {conv}")
        if ms > args.budget_s * 1e3:
            print("  (stopping the sweep: over the time budget)")
            break
    for b in [5, 10, 20] if args.quick else [5, 10, 20, 50]:
        ms, rounds, conv = signing_ms(200, 0, n_bss=b)
        growth.append({"n_mus": 200, "n_bss": b, "ms": round(ms), "rounds": rounds,
                       "converged": conv})
        print(f"  signing   200 MUs, {b:2d} BSs: {ms:9.0f} ms, {rounds} rounds, converged {conv}")
        if ms > args.budget_s * 1e3:
            print("  (stopping the sweep: over the time budget)")
            break
    out["signing_growth"] = growth

    steps = []
    for fraction in (0.05, 0.1, 0.2, 0.4):
        runs = []
        for s in list(seeds)[:2]:
            market = ime.make_market("frbank", n_mus=100, n_transactions=5, seed=s,
                                     market_overrides={"bid_increment_fraction": fraction})
            ms, signing = timed(market.sign)
            while not market.done:
                market.transact()
            runs.append((ms, signing.rounds, market.result().summary()["social_welfare"]))
        row = {"bid_increment_fraction": fraction,
               "signing_ms": round(statistics.mean(r[0] for r in runs)),
               "rounds": round(statistics.mean(r[1] for r in runs)),
               "social_welfare_5_tx": round(statistics.mean(r[2] for r in runs), 1)}
        steps.append(row)
        print(f"  bid step {fraction:4.2f} x value: signing {row['signing_ms']:6d} ms, "
              f"{row['rounds']} rounds, SW over 5 transactions {row['social_welfare_5_tx']}")
    out["bid_step"] = steps
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
