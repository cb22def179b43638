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
from isac_market_env.market.iscc_market import ISCC_MECHANISMS
from isac_market_env.market.variants import OTHER_SEED_MECHANISMS
from isac_market_env.runs import (
    add_backend_arguments,
    execution_backend,
    mean_ci95,
    run_tasks,
    write_atomic,
    write_csv,
)
from isac_market_env.scenarios.iscc import ISCC_PRESET
from isac_market_env.scenarios.presets import PRESETS

SCENARIOS = (*PRESETS, ISCC_PRESET)

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
        if mech in ISCC_MECHANISMS or not get_mechanism(mech).offline:  # no contracts
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


ISCC_LEGEND = """\
SW        social welfare of seed 004's ISCC market: the value of the learning gain the
          application pays for (at most its demand) less the resources consumed (money units)
MU, BS    the working clients' profit (sample payments less resource costs) and the platform's,
          the edge server's (gain payments less sample payments)
RT ms     the mechanism's running time: scheduling every workload level and selecting
NI        cost reports of the active clients and notices to the working ones
DIBC ms   delay incurred by those interactions, 1-15 ms each
ECIBC J   energy consumed by those interactions (MU 0.2-0.4 W, BS 6-20 W, over their delays)
DRLC      "–": nothing is signed
Totals over the episode (every round), mean over seeds; SW's ± is the half width of a Student-t
95% confidence interval over the seeds."""


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


def parse_mechanisms(text: str | None, scenario: str = "paper-synthetic") -> list[str]:
    """The mechanisms named (default: the paper's and the bound, or on ``iscc-perception``
    seed 004's); a name of the other market is an error that says which go together."""
    iscc = scenario == ISCC_PRESET
    if not text:
        return list(ISCC_MECHANISMS) if iscc else list(DEFAULT_MECHANISMS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if iscc and name not in ISCC_MECHANISMS:
            raise ValueError(f"scenario {ISCC_PRESET} runs seed 004's mechanisms only "
                             f"({', '.join(ISCC_MECHANISMS)}), not {name!r}")
        if not iscc:
            if name in ISCC_MECHANISMS:
                raise ValueError(f"{name!r} is a mechanism of seed 004's ISCC market: use "
                                 f"--scenario {ISCC_PRESET}")
            get_mechanism(name)
    return names


def parse_market_overrides(items: Sequence[str] | None,
                           option: str = "--market") -> dict[str, Any]:
    """``KEY=VALUE`` options (``--market``: ``MarketConfig`` fields; ``--set``: scenario
    fields) as an override dict, VALUE read as JSON."""
    overrides: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{option} {key}: {value!r} is not a JSON value") from None
    return overrides


def cmd_compare(args: argparse.Namespace) -> int:
    if args.scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {args.scenario!r}; choose one of "
                         f"{', '.join(SCENARIOS)}")
    mechanisms = parse_mechanisms(args.mechanisms, args.scenario)
    market_overrides = parse_market_overrides(args.market)
    scenario_overrides = parse_market_overrides(args.set, "--set")
    if args.seeds < 1:
        raise ValueError("--seeds must be >= 1")
    if args.episode_workers < 1:
        raise ValueError("--episode-workers must be >= 1")
    tasks = [{"mechanism": mech, "seed": args.seed + k, "scenario": args.scenario,
              "n_mus": args.n_mus, "n_transactions": args.transactions,
              "eua_directory": args.eua_dir, "market_overrides": market_overrides,
              "scenario_overrides": scenario_overrides,
              "episode_workers": args.episode_workers}
             for k in range(args.seeds) for mech in mechanisms]
    # fail fast on configuration errors before starting the pool
    from isac_market_env.simulate import make_iscc_market, make_market
    if args.scenario == ISCC_PRESET:
        n_mus = make_iscc_market(mechanisms[0], args.n_mus, args.transactions, args.seed,
                                 market_overrides=market_overrides,
                                 scenario_overrides=scenario_overrides).config.n_clients
    else:
        n_mus = make_market(mechanisms[0], args.scenario, args.n_mus, args.transactions,
                            args.seed, eua_directory=args.eua_dir,
                            market_overrides=market_overrides,
                            scenario_overrides=scenario_overrides).book.n_mus
    started = time.perf_counter()
    summaries = run_tasks(tasks, args.workers, "compare")
    rows = aggregate(summaries, mechanisms)
    unit = "clients" if args.scenario == ISCC_PRESET else "MUs"
    print(f"{args.scenario}: {n_mus} {unit}, "
          f"{args.transactions} transactions, {args.seeds} seed(s) from {args.seed} "
          f"(same participation draws for every mechanism); "
          f"wall {time.perf_counter() - started:.1f} s")
    print(format_table(rows))
    print(ISCC_LEGEND if args.scenario == ISCC_PRESET else TABLE_LEGEND)
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
    compare.add_argument("--scenario", default="paper-synthetic", help=", ".join(SCENARIOS))
    compare.add_argument("--n-mus", type=int, default=None,
                         help="number of MUs (default: the preset's own, 50 synthetic, "
                              "140 EUA)")
    compare.add_argument("--transactions", type=int, default=5)
    compare.add_argument("--seeds", type=int, default=2)
    compare.add_argument("--seed", type=int, default=0, help="first seed")
    compare.add_argument("--mechanisms", default=None,
                         help="comma-separated (default: the paper's and the bound; on "
                              "iscc-perception seed 004's): "
                              + ",".join([*MECHANISMS, *ISCC_MECHANISMS]))
    compare.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    compare.add_argument("--episode-workers", type=int, default=1,
                         help="threads for each episode's transactions and its signing's "
                              "proposals and selections (simulate's workers; "
                              "the same rows but for the wall-clock RT; random, cooperative "
                              "and the ISCC market run theirs one after the other): for a few "
                              "long episodes, e.g. --workers 1 --episode-workers 2")
    add_backend_arguments(compare)
    compare.add_argument("--eua-dir", default=None, help="directory of the EUA CSV files")
    compare.add_argument("--json", default=None, help="write rows as JSON here")
    compare.add_argument("--csv", default=None, help="write rows as CSV here")
    compare.add_argument("--market", action="append", metavar="KEY=VALUE",
                         help="a MarketConfig field for every mechanism (VALUE as JSON, "
                              "repeatable), e.g. knapsack_node_limit=1000000")
    compare.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="a scenario field for every mechanism (ScenarioConfig, or "
                              "IsccConfig on iscc-perception; VALUE as JSON, repeatable), "
                              "e.g. time_factor=0.25")
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
        with execution_backend(getattr(args, "backend", "process"),
                               getattr(args, "address", None)):
            return int(args.func(args))
    except (ValueError, FileNotFoundError) as error:
        print(f"isac-market: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("isac-market: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
