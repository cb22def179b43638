"""Command line: ``isac-market compare`` (mechanisms side by side) and ``isac-market experiment``.

Runtime errors (unknown scenario or mechanism, missing EUA directory, bad config) print one line
and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from isac_market_env.market import (
    MECHANISMS,
    OPTIMAL_MIP_GAP,
    OPTIMAL_TIME_LIMIT_S,
    get_mechanism,
)
from isac_market_env.market.variants import OTHER_SEED_MECHANISMS
from isac_market_env.runs import mean_ci95, run_tasks, write_atomic, write_csv
from isac_market_env.scenarios.presets import PRESETS

TABLE_METRICS = ("social_welfare", "mu_utility", "bs_utility", "rt_ms", "ni", "dibc_ms",
                 "ecibc_j", "drlc")
# the paper's mechanisms and the welfare bound; the other seeds' by --mechanisms
DEFAULT_MECHANISMS = tuple(m for m in MECHANISMS if m not in OTHER_SEED_MECHANISMS)


def aggregate(summaries: list[dict[str, Any]], mechanisms: Sequence[str]) -> list[dict[str, Any]]:
    """One row per mechanism: means over seeds, CI half-widths, per-seed values, SW / bound."""
    bound = {s["seed"]: s.get("welfare_upper_bound", s["social_welfare"])
             for s in summaries if s["mechanism"] == "optimal"}
    rows = []
    for mech in mechanisms:
        per_seed = sorted((s for s in summaries if s["mechanism"] == mech),
                          key=lambda s: s["seed"])
        row: dict[str, Any] = {"mechanism": mech, "n_seeds": len(per_seed)}
        for key in (*TABLE_METRICS, "ni_online", "rt_online_ms", "rdsl_bandwidth", "rdsl_power"):
            mean, half = mean_ci95([s[key] for s in per_seed])
            row[key] = mean
            row[f"{key}_ci95"] = half
        if not get_mechanism(mech).offline:  # no contracts: no default rate to speak of
            row["drlc"] = row["drlc_ci95"] = None
        ratios = [s["social_welfare"] / bound[s["seed"]] for s in per_seed
                  if bound.get(s["seed"], 0) > 0]
        row["welfare_ratio_to_bound"] = float(np.mean(ratios)) if ratios else None
        row["per_seed"] = per_seed
        rows.append(row)
    return rows


TABLE_LEGEND = """\
SW        social welfare: the value delivered to served clients (money units; = MU + BS utility)
MU, BS    utility of the MUs (their communication and sensing clients) and of the BSs (money units)
RT ms     the mechanism's running time: wall-clock ms to reach its matchings
NI        number of client-BS interactions (proposals answered, displacement notices)
DIBC ms   delay incurred by those interactions, 1-15 ms each
ECIBC J   energy consumed by those interactions (MU 0.2-0.4 W, BS 6-20 W, over their delays)
DRLC      default rate of long-term contracts: executions failed (absent client or volunteered
          BS) / executions due; "–" for a mechanism that signs none
SW/bound  SW over the certified welfare upper bound (HiGHS's proven bound on the optimal row's
          welfare MILP; optimal itself is an allocation, not a market)
Totals over the episode (signing + every transaction), mean over seeds; SW's ± is the half
width of a Student-t 95% confidence interval over the seeds."""


def format_table(rows: list[dict[str, Any]]) -> str:
    """The comparison table as aligned text (columns: ``TABLE_LEGEND``)."""
    header = ["mechanism", "SW (mean ± 95% CI)", "MU utility", "BS utility", "RT ms", "NI",
              "DIBC ms", "ECIBC J", "DRLC", "SW/bound"]
    lines = []
    for r in rows:
        ci = r["social_welfare_ci95"]
        sw = f"{r['social_welfare']:.1f}" + ("" if math.isnan(ci) else f" ± {ci:.1f}")
        ratio = r["welfare_ratio_to_bound"]
        lines.append([r["mechanism"], sw, f"{r['mu_utility']:.1f}", f"{r['bs_utility']:.1f}",
                      f"{r['rt_ms']:.1f}", f"{r['ni']:.0f}", f"{r['dibc_ms']:.0f}",
                      f"{r['ecibc_j']:.2f}", "–" if r["drlc"] is None else f"{r['drlc']:.3f}",
                      "n/a" if ratio is None else f"{ratio:.3f}"])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def optimal_note(rows: list[dict[str, Any]]) -> str | None:
    """A warning when the ``optimal`` row's own allocation is not proven optimal: HiGHS stopped
    at its time limit before its gap, so that row's SW lies below the bound it is divided by
    (a market can then deliver more than that row, never more than the bound)."""
    for r in rows:
        ratio = r["welfare_ratio_to_bound"]
        if r["mechanism"] == "optimal" and ratio is not None and ratio < 1 - 2 * OPTIMAL_MIP_GAP:
            return (f"optimal: its MILP allocation reaches {ratio:.1%} of the proven bound "
                    f"(HiGHS stops at a {OPTIMAL_MIP_GAP:.1%} gap or {OPTIMAL_TIME_LIMIT_S:g} s "
                    "per transaction and hit the time limit, so this row and the bound depend "
                    "on the machine's speed); the bound stays valid.")
    return None


def csv_columns() -> list[str]:
    """The CSV's columns: every table metric with its 95% CI half-width."""
    keys = ["mechanism", "n_seeds"]
    for key in (*TABLE_METRICS, "ni_online", "rt_online_ms"):
        keys += [key, f"{key}_ci95"]
    return [*keys, "welfare_ratio_to_bound"]


def parse_mechanisms(text: str | None) -> list[str]:
    if not text:
        return list(DEFAULT_MECHANISMS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        get_mechanism(name)
    return names


def parse_market_overrides(items: Sequence[str] | None) -> dict[str, Any]:
    """``--market KEY=VALUE`` options as ``MarketConfig`` overrides (VALUE read as JSON)."""
    overrides: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--market expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"--market {key}: {value!r} is not a JSON value") from None
    return overrides


def cmd_compare(args: argparse.Namespace) -> int:
    mechanisms = parse_mechanisms(args.mechanisms)
    market_overrides = parse_market_overrides(args.market)
    if args.scenario not in PRESETS:
        raise ValueError(f"unknown scenario {args.scenario!r}; choose one of {', '.join(PRESETS)}")
    if args.seeds < 1:
        raise ValueError("--seeds must be >= 1")
    tasks = [{"mechanism": mech, "seed": args.seed + k, "scenario": args.scenario,
              "n_mus": args.n_mus, "n_transactions": args.transactions,
              "eua_directory": args.eua_dir, "market_overrides": market_overrides}
             for k in range(args.seeds) for mech in mechanisms]
    # fail fast on configuration errors before starting the pool
    from isac_market_env.simulate import make_market
    make_market(mechanisms[0], args.scenario, args.n_mus, args.transactions, args.seed,
                eua_directory=args.eua_dir, market_overrides=market_overrides)
    started = time.perf_counter()
    summaries = run_tasks(tasks, args.workers, "compare")
    rows = aggregate(summaries, mechanisms)
    print(f"{args.scenario}: {args.n_mus or PRESETS[args.scenario].config.n_mus} MUs, "
          f"{args.transactions} transactions, {args.seeds} seed(s) from {args.seed} "
          f"(same participation draws for every mechanism); "
          f"wall {time.perf_counter() - started:.1f} s")
    print(format_table(rows))
    print(TABLE_LEGEND)
    note = optimal_note(rows)
    if note:
        print(note)
    if args.json:
        write_atomic(Path(args.json), json.dumps(rows, indent=2, default=float))
    if args.csv:
        write_csv(Path(args.csv), rows, csv_columns())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isac-market", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    compare = sub.add_parser("compare", help="run mechanisms on the same seeded markets",
                             description="Run mechanisms on the same seeded markets and print "
                             "one row per mechanism.", epilog="columns:\n" + TABLE_LEGEND,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_argument("--scenario", default="paper-synthetic", help=", ".join(PRESETS))
    compare.add_argument("--n-mus", type=int, default=None,
                         help="number of MUs (default: the preset's own, 50 synthetic, "
                              "140 EUA)")
    compare.add_argument("--transactions", type=int, default=5)
    compare.add_argument("--seeds", type=int, default=2)
    compare.add_argument("--seed", type=int, default=0, help="first seed")
    compare.add_argument("--mechanisms", default=None,
                         help="comma-separated (default: all): " + ",".join(MECHANISMS))
    compare.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    compare.add_argument("--eua-dir", default=None, help="directory of the EUA CSV files")
    compare.add_argument("--json", default=None, help="write rows as JSON here")
    compare.add_argument("--csv", default=None, help="write rows as CSV here")
    compare.add_argument("--market", action="append", metavar="KEY=VALUE",
                         help="a MarketConfig field for every mechanism (VALUE as JSON, "
                              "repeatable), e.g. knapsack_node_limit=1000000")
    compare.set_defaults(func=cmd_compare)
    try:
        from isac_market_env.experiments import add_experiment_parser
        from isac_market_env.seed_experiments import ALL_EXPERIMENTS
    except ImportError:  # pragma: no cover - optional plotting extras missing
        pass
    else:
        add_experiment_parser(sub, ALL_EXPERIMENTS)
    from isac_market_env.evaluate import add_evaluate_parser

    add_evaluate_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError) as error:
        print(f"isac-market: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("isac-market: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
