"""``isac-market experiment NAME``: regenerate the evaluation (docs/results.md).

``fig2``, ``fig3``, ``fig5``, ``table1``: the paper's figures and Table I; ``bound``: SW over
the certified welfare bound; ``coalitions``: Prop. 5 and FRBank's margin under both readings of
a coalition's value; ``stability``: blocking pairs against the bid step. The other seeds'
claims (``cdna``, ``dfront``) are in ``seed_experiments``, which builds on this module.

Every run (mechanism, scenario, MUs, seed, overrides) is cached as one JSON file under
``OUT/runs/`` written atomically, so an interrupted experiment resumes from the runs already done
and fig2/fig3 share their runs. Each experiment writes ``OUT/<name>.csv`` (means and 95% CIs over
seeds) and ``OUT/<name>.png`` (needs matplotlib: ``pip install isac-market-env[plot]``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from isac_market_env.runs import (
    add_backend_arguments,
    mean_ci95,
    replace_atomic,
    run_one,
    run_tasks,
    write_atomic,
    write_csv,
)

PAPER_MECHANISMS = ["frbank", "cononline", "conoffline", "hybrid", "hybrido", "greedy"]
# Fig. 2 adds the strongest greedy we could make of the paper's (rejected clients retry)
FIG2_MECHANISMS = [*PAPER_MECHANISMS, "greedy-retry"]
RISK_PAIRS = [("frbank", "frbank-nor"), ("hybrido", "hybrido-nor"),
              ("conoffline", "conoffline-nor")]
LABELS = {"frbank": "FRBank", "cononline": "ConOnline", "conoffline": "ConOffline",
          "hybrid": "Hybrid", "hybrido": "HybridO", "greedy": "Greedy",
          "frbank-nor": "FRBankNoR", "hybrido-nor": "HybridONoR",
          "conoffline-nor": "ConOfflineNoR", "optimal": "Optimal",
          "greedy-retry": "GreedyRetry"}
# Paper, Table I (EUA Melbourne CBD): Alg. 1-6
PAPER_TABLE1: dict[str, list[float | None]] = {
    "social_welfare": [5025.82, 3108.15, 2867.33, 3304.16, 3084.43, 1940.89],
    "rt_ms": [6705.7, 389286.8, 0.7, 27832.5, 11712.7, 1505.6],
    "ni": [2878, 37820, None, 11803, 8207, 280],
    "dibc_ms": [23291, 302678, None, 94909, 64740, 2231],
    "ecibc_j": [304.53, 3972.40, None, 1251.95, 868.92, 29.89],
}


# the small markets whose matchings brute force can check: 2 BSs of 10-20 MHz, 8-12 dBW
SMALL_MARKET = {"n_bss": 2, "n_targets": 2, "bs_bandwidth_range_mhz": (10.0, 20.0),
                "bs_power_range_dbw": (8.0, 12.0)}
STABILITY_MECHANISMS = ["hybrid", "conoffline-nor", "frbank-nor", "frbank"]
BID_STEP_FRACTIONS = [0.2, 0.1, 0.05, 0.025, 0.0125]

# where a run's files are, not what it computes: left out of its cache key
LOCATION_KEYS = ("cache_dir", "eua_directory")


def task_key(task: dict[str, Any]) -> str:
    """The cache key of a run: a hash of what it computes (mechanism, scenario, MUs, seed,
    overrides), not of where its files are, so a moved or relatively named results folder
    resumes."""
    text = json.dumps({k: task[k] for k in sorted(task) if k not in LOCATION_KEYS},
                      sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def read_cached(path: Path, task: dict[str, Any]) -> dict[str, Any] | None:
    """The cached summary of ``task`` at ``path``, or None (with a warning naming the file)
    when it is missing, unreadable, truncated or not this run's: it is then recomputed."""
    if not path.is_file():
        return None
    try:
        cached = json.loads(path.read_text())
        if not isinstance(cached, dict) or any(cached.get(k) != task[k] for k in
                                               ("mechanism", "seed")) \
                or not isinstance(cached.get("social_welfare"), int | float):
            raise ValueError("not a run summary of this task")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        print(f"warning: cache entry {path} is unreadable ({error}); recomputing it",
              file=sys.stderr)
        return None
    return cached


def cached_run(task: dict[str, Any]) -> dict[str, Any]:
    """Worker: run one task unless its result file holds it; write it atomically."""
    path = Path(task["cache_dir"]) / f"{task_key(task)}.json"
    cached = read_cached(path, task)
    if cached is not None:
        return cached
    inner = {k: v for k, v in task.items() if k != "cache_dir"}
    summary = run_one(inner)
    summary.update({k: v for k, v in inner.items() if k not in summary})
    write_atomic(path, json.dumps(summary, default=float))
    return summary


def run_all(tasks: list[dict[str, Any]], out: Path, workers: int, label: str
            ) -> list[dict[str, Any]]:
    cache = out / "runs"
    cache.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        task["cache_dir"] = str(cache)
    # (a count of the files present; cached_run reads each and recomputes a corrupt one)
    done = sum((cache / f"{task_key(t)}.json").is_file() for t in tasks)
    if done:
        print(f"{label}: {done}/{len(tasks)} runs already done, resuming")
    return run_tasks(tasks, workers, label, worker=cached_run)


def _sort_key(values: tuple[Any, ...]) -> tuple[tuple[int, float, str], ...]:
    """Numbers in numeric order (20, 40, 100, not "100", "20", "40"), then text."""
    return tuple((0, float(v), "") if isinstance(v, int | float) and not isinstance(v, bool)
                 else (1, 0.0, str(v)) for v in values)


def grouped(rows: list[dict[str, Any]], keys: tuple[str, ...], metrics: tuple[str, ...]
            ) -> list[dict[str, Any]]:
    """Mean and 95% CI half-width of ``metrics`` over seeds, per distinct ``keys`` value."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, members in sorted(groups.items(), key=lambda kv: _sort_key(kv[0])):
        entry: dict[str, Any] = dict(zip(keys, key, strict=True))
        entry["n_seeds"] = len(members)
        for metric in metrics:
            mean, half = mean_ci95([m[metric] for m in members])
            entry[metric], entry[f"{metric}_ci95"] = mean, half
        out.append(entry)
    return out


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ValueError("plots need matplotlib: pip install 'isac-market-env[plot]'") from error
    return plt


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    replace_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"))


def _curves(ax: Any, table: list[dict[str, Any]], x: str, metric: str,
            mechanisms: list[str], log: bool = False, **filters: Any) -> None:
    for mech in mechanisms:
        pts = [r for r in table if r["mechanism"] == mech
               and all(r[k] == v for k, v in filters.items())]
        if not pts:
            continue
        pts.sort(key=lambda r: r[x])
        xs = [r[x] for r in pts]
        ys = np.array([r[metric] for r in pts])
        err = np.nan_to_num(np.array([r[f"{metric}_ci95"] for r in pts]))
        ax.errorbar(xs, ys, yerr=err, marker="o", ms=3, capsize=2, label=LABELS.get(mech, mech))
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)


def fig2_tasks(args: argparse.Namespace, mechanisms: list[str]) -> list[dict[str, Any]]:
    return [{"mechanism": mech, "scenario": scenario, "n_mus": n, "seed": args.seed + k,
             "n_transactions": args.transactions}
            for scenario in ("paper-synthetic", "paper-synthetic-7bs")
            for n in args.mus for mech in mechanisms for k in range(args.seeds)]


def experiment_fig2(args: argparse.Namespace, out: Path) -> None:
    rows = run_all(fig2_tasks(args, FIG2_MECHANISMS), out, args.workers, "fig2")
    metrics = ("social_welfare", "bs_utility", "mu_utility")
    table = grouped(rows, ("scenario", "n_mus", "mechanism"), metrics)
    write_csv(out / "fig2.csv", table)
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for r, scenario in enumerate(("paper-synthetic", "paper-synthetic-7bs")):
        for c, (metric, title) in enumerate(zip(metrics, ("Social welfare", "Utility of BSs",
                                                          "Utility of MUs"), strict=True)):
            ax = axes[r, c]
            _curves(ax, table, "n_mus", metric, FIG2_MECHANISMS, scenario=scenario)
            ax.set_title(f"{title} ({'5' if r == 0 else '7'} BSs)")
            ax.set_xlabel("number of MUs")
            ax.set_ylabel(f"{title.lower()} (money units)")
    axes[0, 0].legend(fontsize=8)
    _save(fig, out / "fig2.png")


def experiment_fig3(args: argparse.Namespace, out: Path) -> None:
    mechanisms = [m for m in FIG2_MECHANISMS if m != "conoffline"]
    rows = run_all(fig2_tasks(args, FIG2_MECHANISMS), out, args.workers, "fig3")
    metrics = ("rt_ms", "ni", "dibc_ms", "ecibc_j", "rt_online_ms", "ni_online",
               "dibc_online_ms", "ecibc_online_j")
    table = grouped(rows, ("scenario", "n_mus", "mechanism"), metrics)
    write_csv(out / "fig3.csv", table)
    plt = _pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    titles = ("RT (ms)", "NI (interactions)", "DIBC (ms)", "ECIBC (J)")
    for r, scenario in enumerate(("paper-synthetic", "paper-synthetic-7bs")):
        for c, (metric, title) in enumerate(zip(metrics[:4], titles, strict=True)):
            ax = axes[r, c]
            _curves(ax, table, "n_mus", metric, mechanisms, log=True, scenario=scenario)
            ax.set_title(f"{title.split()[0]}, {'5' if r == 0 else '7'} BSs")
            ax.set_xlabel("number of MUs")
            ax.set_ylabel(f"{title}, log scale")
    axes[0, 0].legend(fontsize=8)
    _save(fig, out / "fig3.png")


def _overbooking(rate: float) -> dict[str, float]:
    return {"overbooking_bandwidth": rate, "overbooking_power": rate}


def experiment_fig5(args: argparse.Namespace, out: Path) -> None:
    """Fig. 5(a) RDSL against the overbooking rate; Fig. 5(b) DRLC with and without risk
    control against the number of MUs, and (c) against the overbooking rate, with the default
    channel and with Rayleigh fading (the realised values that let strategic breach act)."""
    rates = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    drlc_rates = [0.1, 0.2, 0.3, 0.4]
    base = {"scenario": "paper-synthetic", "n_transactions": args.transactions}
    tasks = [{**base, "mechanism": mech, "n_mus": args.fig5_mus, "seed": args.seed + k,
              "market_overrides": _overbooking(rate)}
             for rate in rates for mech in ("hybrido", "frbank") for k in range(args.seeds)]
    risk_mechs = [mech for pair in RISK_PAIRS for mech in pair]
    tasks += [{**base, "mechanism": mech, "n_mus": n, "seed": args.seed + k}
              for n in args.mus for mech in risk_mechs for k in range(args.seeds)]
    for fading in (False, True):
        tasks += [{**base, "mechanism": mech, "n_mus": args.fig5_mus, "seed": args.seed + k,
                   "market_overrides": _overbooking(rate),
                   **({"physics_overrides": {"rayleigh_fading": True}} if fading else {})}
                  for rate in drlc_rates for mech in risk_mechs[:4] for k in range(args.seeds)
                  # without fading, FRBank's and HybridO's runs at these rates are RDSL's
                  if fading or mech.endswith("-nor")]
    rows = run_all(tasks, out, args.workers, "fig5")
    for row in rows:
        over = row.get("market_overrides") or {}
        row["overbooking_rate"] = over.get("overbooking_bandwidth", None)
        row["fading"] = bool((row.get("physics_overrides") or {}).get("rayleigh_fading"))
    rdsl = grouped([r for r in rows if r["overbooking_rate"] is not None and not r["fading"]
                    and r["mechanism"] in ("hybrido", "frbank")],
                   ("overbooking_rate", "mechanism"), ("rdsl_bandwidth", "rdsl_power"))
    drlc = grouped([r for r in rows if r["overbooking_rate"] is None],
                   ("n_mus", "mechanism"), ("drlc",))
    drlc_by_rate = grouped([r for r in rows if r["overbooking_rate"] in drlc_rates
                            and r["mechanism"] in risk_mechs[:4]],
                           ("fading", "overbooking_rate", "mechanism"), ("drlc",))
    write_csv(out / "fig5a.csv", rdsl)
    write_csv(out / "fig5b.csv", drlc)
    write_csv(out / "fig5c.csv", drlc_by_rate)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    for mech in ("hybrido", "frbank"):
        for metric, style in (("rdsl_bandwidth", "-"), ("rdsl_power", "--")):
            pts = sorted((r for r in rdsl if r["mechanism"] == mech),
                         key=lambda r: r["overbooking_rate"])
            axes[0].plot([r["overbooking_rate"] for r in pts], [r[metric] for r in pts], style,
                         marker="o", ms=3,
                         label=f"{LABELS[mech]} {metric.split('_')[1]}")
    axes[0].axhline(1.0, color="grey", lw=0.8)
    axes[0].set_xlabel("overbooking rate (fraction of supply)")
    axes[0].set_ylabel("RDSL (demand / supply)")
    axes[0].set_title("RDSL (present contracted demand / supply)")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    _curves(axes[1], drlc, "n_mus", "drlc", risk_mechs)
    axes[1].set_title("DRLC (failed / due contract executions)")
    axes[1].set_xlabel("number of MUs")
    for ax, fading in ((axes[2], False), (axes[3], True)):
        _curves(ax, drlc_by_rate, "overbooking_rate", "drlc", risk_mechs[:4], fading=fading)
        ax.set_title(f"DRLC, {args.fig5_mus} MUs, {'Rayleigh fading' if fading else 'no fading'}")
        ax.set_xlabel("overbooking rate (fraction of supply)")
    for ax in axes[1:]:
        ax.set_ylabel("DRLC (fraction of executions)")
        ax.legend(fontsize=8)
    _save(fig, out / "fig5.png")


def experiment_table1(args: argparse.Namespace, out: Path) -> None:
    tasks = [{"mechanism": mech, "scenario": "eua-melbourne", "n_mus": 140,
              "seed": args.seed + k, "n_transactions": args.transactions,
              "eua_directory": args.eua_dir}
             for mech in PAPER_MECHANISMS for k in range(args.seeds)]
    rows = run_all(tasks, out, args.workers, "table1")
    metrics = ("social_welfare", "rt_ms", "ni", "dibc_ms", "ecibc_j", "rt_online_ms",
               "ni_online", "dibc_online_ms", "ecibc_online_j", "mu_utility", "bs_utility",
               "drlc")
    table = grouped(rows, ("mechanism",), metrics)
    order = {m: i for i, m in enumerate(PAPER_MECHANISMS)}
    table.sort(key=lambda r: order[r["mechanism"]])
    for r in table:
        i = order[r["mechanism"]]
        for metric, values in PAPER_TABLE1.items():
            r[f"paper_{metric}"] = values[i]
    write_csv(out / "table1.csv", table)
    lines = ["| metric | " + " | ".join(LABELS[r["mechanism"]] for r in table) + " |",
             "|---|" + "---|" * len(table)]
    for metric in ("social_welfare", "rt_ms", "ni", "dibc_ms", "ecibc_j", "ni_online"):
        ours = " | ".join(f"{r[metric]:.1f}" for r in table)
        lines.append(f"| {metric} (ours) | {ours} |")
        if metric in PAPER_TABLE1:
            paper = " | ".join("N/A" if v is None else f"{v}" for v in PAPER_TABLE1[metric])
            lines.append(f"| {metric} (paper) | {paper} |")
    write_atomic(out / "table1.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = [LABELS[r["mechanism"]] for r in table]
    axes[0].bar(names, [r["social_welfare"] for r in table],
                yerr=np.nan_to_num([r["social_welfare_ci95"] for r in table]))
    axes[0].set_title("EUA Melbourne CBD: social welfare")
    axes[0].set_ylabel("social welfare (money units)")
    axes[1].bar(names, [max(r["ni"], 1e-9) for r in table])
    axes[1].set_yscale("log")
    axes[1].set_title("EUA Melbourne CBD: NI (log)")
    axes[1].set_ylabel("NI (interactions)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    _save(fig, out / "table1.png")


def experiment_bound(args: argparse.Namespace, out: Path) -> None:
    """Each mechanism's SW over the certified welfare bound (the optimal row's proven MILP
    bound, the same seeds and participation draws), paper-synthetic with 5 BSs; reuses Fig. 2's
    runs."""
    tasks = [t for t in fig2_tasks(args, [*FIG2_MECHANISMS, "optimal"])
             if t["scenario"] == "paper-synthetic"]
    rows = run_all(tasks, out, args.workers, "bound")
    bound = {(r["n_mus"], r["seed"]): r["welfare_upper_bound"] for r in rows
             if r["mechanism"] == "optimal"}
    for row in rows:  # (the optimal row: how far HiGHS's allocation is from its own bound)
        row["sw_over_bound"] = row["social_welfare"] / bound[row["n_mus"], row["seed"]]
    table = grouped(rows, ("n_mus", "mechanism"), ("sw_over_bound", "social_welfare"))
    write_csv(out / "bound.csv", table)
    mechanisms = [*FIG2_MECHANISMS, "optimal"]
    sizes = sorted({r["n_mus"] for r in table})
    lines = ["| SW / bound | " + " | ".join(f"{n} MUs" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for mech in mechanisms:
        cells = []
        for n in sizes:
            r = next(r for r in table if r["mechanism"] == mech and r["n_mus"] == n)
            cells.append(f"{r['sw_over_bound']:.3f} ± {np.nan_to_num(r['sw_over_bound_ci95']):.3f}")
        lines.append(f"| {LABELS[mech]} | " + " | ".join(cells) + " |")
    write_atomic(out / "bound.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def coalition_run(task: dict[str, Any]) -> dict[str, Any]:
    """Worker: Prop. 5 on one FRBank signing (``coalition_stability``)."""
    from isac_market_env.market.coalitions import coalition_stability
    from isac_market_env.simulate import make_market

    market = make_market("frbank", n_mus=task["n_mus"], n_transactions=1, seed=task["seed"])
    market.sign()
    check = coalition_stability(market)
    return {**task, "members": float(len(check.mu)),
            "above_threshold": float(check.above_threshold.mean()),
            "better_than_alone": float(check.better_than_alone.mean()),
            "better_than_alone_at_reserve": float(check.better_than_alone_at_reserve.mean()),
            "stable": float(check.stable),
            "share_minus_alone": float(np.mean(check.share - check.alone))}


def experiment_coalitions(args: argparse.Namespace, out: Path) -> None:
    """Sensing coalitions: Prop. 5 (members above u_min and better off than alone) per size,
    and FRBank's SW margin over the best other mechanism under both readings of a coalition's
    value (``coalition_value_members``); reuses Fig. 2's runs."""
    present = {"physics_overrides": {"coalition_value_members": "present"}}
    tasks = [t for t in fig2_tasks(args, FIG2_MECHANISMS) if t["scenario"] == "paper-synthetic"]
    tasks += [{**t, **present} for t in tasks if t["mechanism"] == "frbank"]
    rows = run_all(tasks, out, args.workers, "coalitions")
    best_other: dict[tuple[int, int], float] = {}
    for r in rows:
        if r["mechanism"] != "frbank":
            key = (r["n_mus"], r["seed"])
            best_other[key] = max(best_other.get(key, -np.inf), r["social_welfare"])
    margins = []
    for r in rows:
        if r["mechanism"] == "frbank":
            reading = (r.get("physics_overrides") or {}).get("coalition_value_members", "all")
            margins.append({"n_mus": r["n_mus"], "seed": r["seed"], "reading": reading,
                            "social_welfare": r["social_welfare"],
                            "margin": r["social_welfare"] / best_other[r["n_mus"], r["seed"]]})
    margin_table = grouped(margins, ("reading", "n_mus"), ("social_welfare", "margin"))
    checks = run_tasks([{"mechanism": "frbank", "n_mus": n, "seed": args.seed + k}
                        for n in args.mus for k in range(args.seeds)], args.workers,
                       "coalition stability", worker=coalition_run)
    stability_table = grouped(checks, ("n_mus",), ("above_threshold", "better_than_alone",
                                                   "better_than_alone_at_reserve", "stable",
                                                   "share_minus_alone"))
    write_csv(out / "coalitions_margin.csv", margin_table)
    write_csv(out / "coalitions_stability.csv", stability_table)


def stability_run(task: dict[str, Any]) -> dict[str, Any]:
    """Worker: one small market's signing (fixed preferences: E[v] held at 0, or the live
    estimate for ``live``), brute-forced for blocking pairs at every price (Def. 7/8)."""
    from isac_market_env.mechanisms.matching import run_matching
    from isac_market_env.metrics.stability import find_blocking_pairs
    from isac_market_env.simulate import make_market

    fraction = task["bid_increment_fraction"]
    market = make_market(task["mechanism"], n_mus=3 + task["seed"] % 7, n_transactions=1,
                         seed=task["seed"], scenario_overrides=SMALL_MARKET,
                         market_overrides={"bid_increment_fraction": fraction,
                                           "bid_increment": 2.5 * fraction})
    problem = market.offline_problem()
    result = run_matching(problem, market.volunteer_model() if task["live"] else None)
    step = problem.bid_steps()
    grid = find_blocking_pairs(problem, result, prices="grid")
    every = find_blocking_pairs(problem, result, prices="any")
    return {**task, "rounds": result.rounds, "grid_blocked": float(bool(grid)),
            "blocked": float(bool(every)),
            "largest_discount": max((p.discount for p in every), default=0.0),
            "largest_discount_in_steps": max((p.discount * problem.sol_value[p.solution]
                                              / step[p.solution] for p in every), default=0.0)}


def experiment_stability(args: argparse.Namespace, out: Path) -> None:
    """Blocking pairs of small markets against the bid step (docs/model.md, Stability): on the
    grid (at or above the final bids) and at any price from the reserve price, with the largest
    discount below the final bid at which a pair still blocks."""
    tasks = [{"mechanism": mech, "seed": args.seed + k, "bid_increment_fraction": fraction,
              "live": False}
             for fraction in BID_STEP_FRACTIONS for mech in STABILITY_MECHANISMS
             for k in range(args.seeds)]
    tasks += [{"mechanism": "frbank", "seed": args.seed + k, "bid_increment_fraction": 0.1,
               "live": True} for k in range(args.seeds)]
    rows = run_tasks(tasks, args.workers, "stability", worker=stability_run)
    table = grouped(rows, ("live", "bid_increment_fraction", "mechanism"),
                    ("grid_blocked", "blocked", "largest_discount", "rounds"))
    for entry in table:
        members = [r for r in rows if all(r[k] == entry[k] for k in
                                          ("live", "bid_increment_fraction", "mechanism"))]
        entry["largest_discount_max"] = max(r["largest_discount"] for r in members)
        entry["largest_discount_in_steps_max"] = max(r["largest_discount_in_steps"]
                                                     for r in members)
    write_csv(out / "stability.csv", table)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    fixed = [r for r in table if not r["live"]]
    for mech in STABILITY_MECHANISMS:
        pts = sorted((r for r in fixed if r["mechanism"] == mech),
                     key=lambda r: r["bid_increment_fraction"])
        xs = [r["bid_increment_fraction"] for r in pts]
        axes[0].plot(xs, [r["largest_discount_max"] for r in pts], marker="o", ms=3,
                     label=LABELS[mech])
        axes[1].plot(xs, [r["blocked"] for r in pts], marker="o", ms=3, label=LABELS[mech])
    axes[0].plot(BID_STEP_FRACTIONS, BID_STEP_FRACTIONS, color="grey", lw=0.8, ls="--",
                 label="one bid step")
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_title("Largest blocking discount below the final bid")
    axes[0].set_ylabel("(final bid - blocking price) / value, max over markets")
    axes[1].set_title("Markets with a blocking pair below the final bids")
    axes[1].set_xscale("log")
    axes[1].set_ylabel("fraction of markets (none on the bid grid)")
    for ax in axes:
        ax.set_xlabel("bid step (fraction of the value, bid_increment_fraction)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, out / "stability.png")


EXPERIMENTS: dict[str, Callable[[argparse.Namespace, Path], None]] = {
    "fig2": experiment_fig2, "fig3": experiment_fig3, "fig5": experiment_fig5,
    "table1": experiment_table1, "stability": experiment_stability, "bound": experiment_bound,
    "coalitions": experiment_coalitions
}


def cmd_experiment(args: argparse.Namespace) -> int:
    if args.seeds < 1 or args.transactions < 1:
        raise ValueError("--seeds and --transactions must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.registry[args.name](args, out)
    print(f"{args.name}: written to {out}")
    return 0


def add_experiment_parser(sub: Any,
                          registry: dict[str, Callable[[argparse.Namespace, Path], None]]
                          | None = None) -> None:
    """The ``experiment`` subcommand over ``registry`` (default: this module's experiments;
    the command line adds the other seeds', ``seed_experiments.ALL_EXPERIMENTS``)."""
    registry = registry or EXPERIMENTS
    parser = sub.add_parser("experiment", help="regenerate the paper's figures and Table I, "
                            "and the other seeds' claims")
    parser.add_argument("name", choices=sorted(registry))
    parser.add_argument("--out", default="results")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--transactions", type=int, default=5)
    parser.add_argument("--mus", type=lambda s: [int(x) for x in s.split(",")],
                        default=[20, 40, 60, 80, 100], help="MU counts for the sweeps")
    parser.add_argument("--fig5-mus", type=int, default=60)
    parser.add_argument("--trust-mus", type=int, default=30,
                        help="MUs of the cdna experiment's contract periods with trust")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--eua-dir", default=None)
    add_backend_arguments(parser)
    parser.set_defaults(func=cmd_experiment, registry=registry)
