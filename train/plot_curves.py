"""Plot learning curves (EvalCallback's evaluations.npz) of one or more runs into a PNG.

    python -m train.plot_curves runs/overbooking-ppo [runs/other ...] --out curve.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.plot_curves")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", required=True)
    parser.add_argument("--title", default="evaluation return (mean ± std over episodes)")
    parser.add_argument("--hline", action="append", default=[],
                        help="label=value reference line, e.g. fixed=3.1")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for run in args.runs:
        data = np.load(Path(run) / "eval" / "evaluations.npz")
        steps, results = data["timesteps"], data["results"]
        mean, std = results.mean(axis=1), results.std(axis=1)
        ax.plot(steps, mean, marker="o", ms=3, label=Path(run).name)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    for spec in args.hline:
        label, value = spec.split("=")
        ax.axhline(float(value), ls="--", lw=1, color="grey")
        ax.text(ax.get_xlim()[0], float(value), f" {label}", va="bottom", fontsize=8)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
