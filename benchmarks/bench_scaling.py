"""How FRBank's episode scales: signing and transaction time and rounds over MUs x BSs.

* the grid: paper-synthetic (same area, BSs placed and sized by the preset), seed 0 by
  default, every pair of ``--mus`` and ``--bss``: signing ms, signing rounds, the selections
  that got HiGHS's selection (``milp_calls``: from HiGHS or from the proof that it is the only
  one HiGHS may return), and the median ms and mean online rounds of ``--transactions``
  practical transactions
* fitted exponents: the least-squares slope of log time against log MUs (per BS count) and
  against log BSs (per MU count)
* ``--hard``: every BS selection of one signing (default: the 1,000-MU, 5-BS market) that the
  compiled branch and bound leaves to the typed searches or HiGHS: its candidates, types,
  count vectors, why a typed search declined it, whether the proof of HiGHS's selection took
  it, and how long each solver took

Usage: python benchmarks/bench_scaling.py [--quick] [--json OUT] [--plot PNG] [--hard]
A cell is skipped (and the larger MU counts of its row with it) once one takes longer than
``--budget-s``. With ``--json`` an interrupted run resumes: cells already in the file are kept.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

import isac_market_env as ime
from isac_market_env.mechanisms import knapsack, typed_knapsack
from isac_market_env.mechanisms.matching import load_compiled_matching


def cell(n_mus: int, n_bss: int, seed: int, n_transactions: int) -> dict[str, Any]:
    """One market of the grid: its signing and ``n_transactions`` transactions, timed."""
    market = ime.make_market("frbank", n_mus=n_mus, n_transactions=n_transactions, seed=seed,
                             scenario_overrides={"n_bss": n_bss})
    start = time.perf_counter()
    signing = market.sign()
    signing_ms = (time.perf_counter() - start) * 1e3
    tx_ms = []
    for _ in range(n_transactions):
        start = time.perf_counter()
        market.transact()
        tx_ms.append((time.perf_counter() - start) * 1e3)
    return {"n_mus": n_mus, "n_bss": n_bss, "seed": seed, "signing_ms": round(signing_ms, 1),
            "signing_rounds": signing.rounds, "signing_converged": signing.converged,
            "milp_calls": signing.milp_calls, "contracts": len(signing.contracts),
            "n_solutions": len(market.book.sol_client),
            "transaction_ms_median": round(statistics.median(tx_ms), 2),
            "online_rounds_mean": round(statistics.mean(t.online_rounds
                                                        for t in market.transactions), 1)}


def fitted_exponent(x: list[float], y: list[float]) -> float | None:
    """Slope of log y against log x (least squares); None with fewer than two points."""
    if len(x) < 2:
        return None
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def exponents(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, float | None]]:
    """``key``'s exponent in MUs per BS count and in BSs per MU count (medians over seeds)."""
    def median_of(n_mus: int, n_bss: int) -> float:
        return statistics.median(r[key] for r in rows
                                 if r["n_mus"] == n_mus and r["n_bss"] == n_bss)

    pairs = sorted({(r["n_mus"], r["n_bss"]) for r in rows})
    out: dict[str, dict[str, float | None]] = {"in_mus": {}, "in_bss": {}}
    for b in sorted({p[1] for p in pairs}):
        mus = [m for m, bb in pairs if bb == b]
        out["in_mus"][f"{b}_bss"] = fitted_exponent(mus, [median_of(m, b) for m in mus])
    for m in sorted({p[0] for p in pairs}):
        bss = [bb for mm, bb in pairs if mm == m]
        out["in_bss"][f"{m}_mus"] = fitted_exponent(bss, [median_of(m, b) for b in bss])
    return out


def plot(rows: list[dict[str, Any]], fits: dict[str, Any], path: Path) -> None:
    """Log-log panels: signing and transaction time against MUs, one line per BS count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    panels = (("signing_ms", "signing time (ms)"),
              ("transaction_ms_median", "one transaction, median (ms)"),
              ("signing_rounds", "signing rounds"))
    for ax, (key, label) in zip(axes, panels, strict=True):
        for b in sorted({r["n_bss"] for r in rows}):
            mine = sorted((r["n_mus"], r[key]) for r in rows if r["n_bss"] == b)
            slope = fits[key]["in_mus"].get(f"{b}_bss")
            tag = f"{b} BSs" + ("" if slope is None else f" (slope {slope:.2f})")
            ax.plot([m for m, _ in mine], [v for _, v in mine], "o-", label=tag)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("MUs")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("FRBank on paper-synthetic: how signing and transactions scale (seed 0)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def hard_instances(n_mus: int, n_bss: int, seed: int) -> dict[str, Any]:
    """Every selection of one signing that goes past the compiled branch and bound."""
    records: list[dict[str, Any]] = []
    typed_solve, milp = knapsack.solve_typed, knapsack._milp

    def watched_typed(values: Any, weights: Any, capacities: Any, *args: Any) -> Any:
        start = time.perf_counter()
        answer = typed_solve(values, weights, capacities, *args)
        row: dict[str, Any] = {"candidates": len(values),
                               "typed_ms": round((time.perf_counter() - start) * 1e3, 1),
                               "typed_finished": answer is not None}
        structure = typed_knapsack.detect_structure(values, weights)
        if structure is None:
            row["declined"] = "no typed structure"
        else:
            sizes = np.bincount(structure.item_type, minlength=len(structure.levels))
            row["types"] = len(structure.levels)
            row["affine"] = bool(structure.affine)
            row["count_vector_bound"] = math.prod(int(s) + 1 for s in sizes)
            vectors = typed_knapsack._count_vectors(sizes, structure.levels,
                                                    capacities[structure.type_rows])
            row["count_vectors"] = None if vectors is None else len(vectors)
            if answer is None:
                row["declined"] = ("over MAX_COUNT_VECTORS" if vectors is None
                                   else "over NODE_LIMIT")
        records.append(row)
        return answer

    def watched_proof(values: Any, *args: Any) -> Any:
        start = time.perf_counter()
        chosen = proof(values, *args)
        records[-1]["proof_ms"] = round((time.perf_counter() - start) * 1e3, 1)
        records[-1]["proven"] = chosen is not None
        return chosen

    def watched_milp(values: Any, *args: Any) -> Any:
        start = time.perf_counter()
        chosen = milp(values, *args)
        records[-1]["highs_ms"] = round((time.perf_counter() - start) * 1e3, 1)
        return chosen

    proof = knapsack._highs_selection
    knapsack.solve_typed, knapsack._milp = watched_typed, watched_milp  # type: ignore[assignment]
    knapsack._highs_selection = watched_proof  # type: ignore[assignment]
    try:
        out = cell(n_mus, n_bss, seed, 1)
    finally:
        knapsack.solve_typed, knapsack._milp = typed_solve, milp
        knapsack._highs_selection = proof
    out["selections"] = records
    typed_ms = sum(r["typed_ms"] for r in records)
    proof_ms = sum(r.get("proof_ms", 0.0) for r in records)
    highs_ms = sum(r.get("highs_ms", 0.0) for r in records)
    proven = sum(r.get("proven", False) for r in records)
    print(f"{n_mus} MUs, {n_bss} BSs, seed {seed}: signing {out['signing_ms']:.0f} ms, "
          f"{len(records)} selections past the branch and bound: typed searches "
          f"{typed_ms:.0f} ms; {out['milp_calls']} got HiGHS's selection, {proven} of them "
          f"proven (proofs {proof_ms:.0f} ms, failed ones included), HiGHS {highs_ms:.0f} ms "
          f"on the rest")
    for reason in sorted({r.get("declined", "") for r in records} - {""}):
        mine = [r for r in records if r.get("declined") == reason]
        print(f"  declined ({reason}): {len(mine)}; candidates "
              f"{min(r['candidates'] for r in mine)}-{max(r['candidates'] for r in mine)}, "
              f"proven {sum(r.get('proven', False) for r in mine)}, "
              f"HiGHS {sum(r.get('highs_ms', 0.0) for r in mine):.0f} ms")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="MUs up to 200, BSs up to 10")
    parser.add_argument("--mus", default="50,100,200,500,1000,2000")
    parser.add_argument("--bss", default="5,10,20,50")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--transactions", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=600.0,
                        help="skip the larger MU counts of a BS count once a cell takes longer")
    parser.add_argument("--json", default=None)
    parser.add_argument("--plot", default=None, help="write the log-log plot here (matplotlib)")
    parser.add_argument("--hard", action="store_true",
                        help="also dissect the selections of the 1,000-MU, 5-BS signing")
    args = parser.parse_args()
    mus = [50, 100, 200] if args.quick else [int(x) for x in args.mus.split(",")]
    bss = [5, 10] if args.quick else [int(x) for x in args.bss.split(",")]
    path = Path(args.json) if args.json else None
    out: dict[str, Any] = (json.loads(path.read_text()) if path and path.exists() else {})
    out.update({"machine": platform.processor() or platform.machine(),
                "python": platform.python_version(), "compiled": load_compiled_matching(),
                "date": time.strftime("%Y-%m-%d")})
    rows: list[dict[str, Any]] = out.get("grid", [])
    done = {(r["n_mus"], r["n_bss"], r["seed"]) for r in rows}
    for b in bss:
        for n in mus:
            over_budget = False
            for seed in range(args.seeds):
                if (n, b, seed) in done:
                    continue
                row = cell(n, b, seed, args.transactions)
                rows.append(row)
                print(f"{n:5d} MUs {b:3d} BSs seed {seed}: signing {row['signing_ms']:9.0f} ms "
                      f"({row['signing_rounds']} rounds, HiGHS's selection {row['milp_calls']}), "
                      f"transaction {row['transaction_ms_median']:7.1f} ms "
                      f"({row['online_rounds_mean']} rounds)", flush=True)
                out["grid"] = rows
                if path:
                    path.write_text(json.dumps(out, indent=1))
                over_budget |= row["signing_ms"] > args.budget_s * 1e3
            if over_budget:
                print(f"  (skipping more MUs at {b} BSs: over {args.budget_s:.0f} s)")
                break
    fits = {key: exponents(rows, key)
            for key in ("signing_ms", "transaction_ms_median", "signing_rounds")}
    out["exponents"] = fits
    for key, fit in fits.items():
        print(f"{key}: exponent in MUs {fit['in_mus']}, in BSs {fit['in_bss']}")
    if args.hard:
        out["hard_1000_mus"] = hard_instances(1000, 5, 0)
    if path:
        path.write_text(json.dumps(out, indent=1))
    if args.plot:
        plot(rows, fits, Path(args.plot))


if __name__ == "__main__":
    main()
