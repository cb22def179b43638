"""Speed of every online mechanism on the markets of bench_core's FRBank rows.

For each mechanism: the median and p90 of its running time per practical transaction (the RT
it reports: the mechanism's own code, ``TransactionRecord.runtime_ms``) on paper-synthetic with
100 MUs and on the EUA market, and FRBank's signing for reference; seed 004's ISCC mechanisms
per round on ``iscc-perception`` (50 clients, sufficient resources) at the default demand (20
gain per round) and at 10. All mechanisms run back to back in one process on the same
seeds, so their ratios are same-run numbers.

Usage: python benchmarks/bench_mechanisms.py [--quick] [--json OUT] [--eua-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import isac_market_env as ime
from isac_market_env.market.iscc_market import ISCC_MECHANISMS, IsccResult
from isac_market_env.mechanisms.matching import load_compiled_matching

MECHANISMS = ["frbank", "cononline", "greedy", "greedy-retry", "pricing-matching",
              "centralized", "bargaining", "nearest", "random", "dfront", "gale-shapley",
              "cfront", "cooperative"]


def per_transaction_ms(mechanism: str, scenario: str, n_mus: int | None, seeds: list[int],
                       n_transactions: int, eua_dir: str | None,
                       scenario_overrides: dict[str, object]) -> dict[str, float]:
    times, signing = [], []
    started = time.perf_counter()
    for seed in seeds:
        result = ime.simulate(mechanism, scenario=scenario, n_mus=n_mus,
                              n_transactions=n_transactions, seed=seed,
                              eua_directory=None if scenario == "iscc-perception" else eua_dir,
                              scenario_overrides=scenario_overrides)
        if isinstance(result, IsccResult):  # seed 004: a round is its transaction
            times += [r.runtime_ms for r in result.rounds]
            signing.append(0.0)
            continue
        times += [tx.runtime_ms for tx in result.transactions]
        signing.append(result.signing.runtime_ms if result.signing else 0.0)
    return {"transaction_median_ms": statistics.median(times),
            "transaction_p90_ms": float(np.percentile(times, 90)),
            "signing_median_ms": statistics.median(signing),
            "wall_s": time.perf_counter() - started, "n_transactions": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one seed, two transactions")
    parser.add_argument("--json", default=None)
    parser.add_argument("--eua-dir", default=None)
    args = parser.parse_args()
    load_compiled_matching()
    seeds = [0] if args.quick else [0, 1, 2]
    n_tx = 2 if args.quick else 3
    out: dict[str, object] = {"machine": platform.processor() or platform.machine(),
                              "python": platform.python_version(), "seeds": seeds,
                              "transactions_per_seed": n_tx}
    markets: list[tuple[str, str, int | None, list[int], list[str], dict[str, object]]] = [
        ("paper-synthetic, 100 MUs", "paper-synthetic", 100, seeds, MECHANISMS, {}),
        ("eua-melbourne", "eua-melbourne", None, seeds[:1], MECHANISMS, {}),
        ("iscc-perception", "iscc-perception", None, seeds, list(ISCC_MECHANISMS), {}),
        ("iscc-perception, demand 10", "iscc-perception", None, seeds, list(ISCC_MECHANISMS),
         {"gain_demand": 10.0})]
    for label, scenario, n_mus, run_seeds, mechanisms, overrides in markets:
        rows = {}
        for mech in mechanisms:
            rows[mech] = per_transaction_ms(mech, scenario, n_mus, run_seeds, n_tx, args.eua_dir,
                                            overrides)
            r = rows[mech]
            print(f"{label:26s} {mech:16s} transaction median {r['transaction_median_ms']:9.1f}"
                  f" ms  p90 {r['transaction_p90_ms']:9.1f}  signing {r['signing_median_ms']:7.1f}"
                  f" ms", flush=True)
        out[label] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
