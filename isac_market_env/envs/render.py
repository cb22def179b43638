"""What the environments draw: a text summary (``ansi``) and a labelled map (``rgb_array``).

The map (matplotlib, the ``plot`` extra) shows at a glance where the market stands: BSs sized
by bandwidth with bars of their booked bandwidth and power against supply, MUs coloured by
what happened to them in the last transaction, the long-term contracts, the sensing
coalitions with their targets, the focal client, and a title line with phase, round,
transaction and the SW so far.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from isac_market_env.market.market import Market

FRAME_SIZE_PX = (760, 540)  # width, height
MU_STATES = {  # state: (colour, legend label)
    "contracted": ("#1f5fbf", "MU served by its contract"),
    "online": ("#f08c00", "MU served online"),
    "volunteer": ("#9c36b5", "MU volunteered (released)"),
    "unserved": ("#e03131", "MU present, unserved"),
    "absent": ("#bdbdbd", "MU absent"),
    "tentative": ("#12b886", "MU tentatively accepted"),
    "no contract": ("#74c0fc", "MU without a contract (yet)"),
}


def render_ansi(market: Market, title: str) -> str:
    """Text summary of the market's state: contracts per BS and the last transaction."""
    sc = market.scenario
    c = market.contracts
    lines = [title, f"  {sc.name}: {sc.n_bss} BSs, {sc.n_mus} MUs, {sc.n_targets} targets; "
                    f"{len(c)} contracts; transaction {len(market.transactions)}/"
                    f"{market.config.n_transactions}"]
    for j in range(sc.n_bss):
        mine = c.bs == j
        lines.append(f"  BS {j}: {int(mine.sum()):3d} contracts, booked "
                     f"{c.bandwidth_hz[mine].sum() / sc.bs_bandwidth_hz[j]:5.2f} B, "
                     f"{c.power_w[mine].sum() / sc.bs_power_w[j]:5.2f} P")
    if market.transactions:
        tx = market.transactions[-1]
        lines.append(f"  last transaction: SW {tx.social_welfare:.2f}, "
                     f"{int(tx.mu_present.sum())} MUs present, {len(tx.contract_absent)} absent "
                     f"contracts, {len(tx.contract_volunteered)} volunteers, "
                     f"{int(tx.alloc_online.sum())} online contracts")
    return "\n".join(lines)


def mu_states(market: Market, tentative_bs: np.ndarray | None = None) -> list[str]:
    """Each MU's state in the last transaction; before any, contracted or not, or tentatively
    accepted by a BS in a matching under way (``tentative_bs``: per client, the BS holding its
    proposal or -1)."""
    n_mus = market.scenario.n_mus
    c = market.contracts
    has_contract = np.zeros(n_mus, dtype=bool)
    comm = c.client[c.client < n_mus]
    has_contract[comm] = True
    if not market.transactions:
        held = (np.zeros(n_mus, dtype=bool) if tentative_bs is None
                else tentative_bs[:n_mus] >= 0)
        return ["contracted" if has else "tentative" if h else "no contract"
                for has, h in zip(has_contract, held, strict=True)]
    tx = market.transactions[-1]
    state = np.where(tx.mu_present, "unserved", "absent").astype(object)
    comm_alloc = tx.alloc_client < n_mus
    state[tx.alloc_client[comm_alloc & ~tx.alloc_online]] = "contracted"
    state[tx.alloc_client[comm_alloc & tx.alloc_online]] = "online"
    volunteered = c.client[tx.contract_volunteered]
    volunteered = volunteered[volunteered < n_mus]
    state[volunteered[~np.isin(volunteered, tx.alloc_client[comm_alloc])]] = "volunteer"
    return [str(s) for s in state]


def render_frame(market: Market, title: str, focal_mu: int | None = None,
                 tentative_bs: np.ndarray | None = None) -> np.ndarray:
    """The market as an RGB array of ``FRAME_SIZE_PX`` (see the module docstring);
    ``tentative_bs`` (per client, the BS tentatively holding it or -1) draws a matching under
    way as dashed lines."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("render_mode='rgb_array' draws with matplotlib: pip install "
                          "'isac-market-env[plot]'") from error
    sc, book, c = market.scenario, market.book, market.contracts
    width, height = FRAME_SIZE_PX
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.08, 0.09, 0.6, 0.84))
    pts = np.vstack([sc.bs_xy_m, sc.mu_xy_m, sc.target_xy_m])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = float(max(*(hi - lo), 1.0))
    pad = 0.06 * span
    ax.set_xlim(lo[0] - pad, hi[0] + 2 * pad)  # room for the load bars on the right
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal", adjustable="box")  # the map's own bounding box, to scale
    ax.set_xlabel("x (m)", fontsize=8)
    ax.set_ylabel("y (m)", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.text(0.01, 0.975, title, fontsize=8.5, ha="left", va="top")

    # contracts: MU to BS (communication), target to BS (sensing coalitions)
    for client, bs in zip(c.client, c.bs, strict=True):
        members = book.members(int(client))
        sensing = client >= book.n_mus
        a = sc.target_xy_m[sc.mu_target[members[0]]] if sensing else sc.mu_xy_m[members[0]]
        ax.plot(*np.c_[a, sc.bs_xy_m[bs]], color="#2f9e44" if sensing else "#74a9e8",
                lw=1.4 if sensing else 0.8, zorder=1, alpha=0.8)
    if tentative_bs is not None:
        for client in np.flatnonzero(tentative_bs >= 0):
            members = book.members(int(client))
            a = (sc.mu_xy_m[members[0]] if client < book.n_mus
                 else sc.target_xy_m[sc.mu_target[members[0]]])
            ax.plot(*np.c_[a, sc.bs_xy_m[tentative_bs[client]]], color="#12b886", lw=0.8,
                    ls="--", zorder=1)
    # sensing coalitions: members to their target (only coalitions of two or more)
    for client in range(book.n_mus, book.n_clients):
        members = book.members(client)
        if len(members) < 2:
            continue
        target = sc.target_xy_m[sc.mu_target[members[0]]]
        for mu in members:
            ax.plot(*np.c_[sc.mu_xy_m[mu], target], color="#2f9e44", lw=0.5, ls=":",
                    alpha=0.5, zorder=1)
    states = mu_states(market, tentative_bs)
    colours = [MU_STATES[s][0] for s in states]
    ax.scatter(sc.mu_xy_m[:, 0], sc.mu_xy_m[:, 1], s=18, c=colours, edgecolors="white",
               linewidths=0.4, zorder=3)
    if focal_mu is not None:
        ax.scatter(sc.mu_xy_m[focal_mu, 0], sc.mu_xy_m[focal_mu, 1], s=150,
                   facecolors="none", edgecolors="black", linewidths=1.6, zorder=4)
    ax.scatter(sc.target_xy_m[:, 0], sc.target_xy_m[:, 1], marker="*", s=90, c="#2f9e44",
               edgecolors="black", linewidths=0.4, zorder=3)
    size = 40 + 160 * sc.bs_bandwidth_hz / sc.bs_bandwidth_hz.max()
    ax.scatter(sc.bs_xy_m[:, 0], sc.bs_xy_m[:, 1], marker="s", s=size, c="#c92a2a",
               edgecolors="black", linewidths=0.6, zorder=5)
    booked_b = np.bincount(c.bs, c.bandwidth_hz, minlength=sc.n_bss) / sc.bs_bandwidth_hz
    booked_p = np.bincount(c.bs, c.power_w, minlength=sc.n_bss) / sc.bs_power_w
    bar_h, bar_w = 0.06 * span, 0.014 * span
    for j, (x, y) in enumerate(sc.bs_xy_m):
        ax.annotate(f"BS {j}", (x, y), xytext=(-8, -14), textcoords="offset points",
                    fontsize=7, zorder=6)
        for k, (load, colour) in enumerate(((booked_b[j], "#1c7ed6"), (booked_p[j], "#e8590c"))):
            x0 = x + 0.03 * span + k * 1.3 * bar_w
            ax.add_patch(_rectangle((x0, y), bar_w, bar_h, fill=False, lw=0.6))
            ax.add_patch(_rectangle((x0, y), bar_w, bar_h * min(load, 1.5), color=colour,
                                    alpha=0.85))
    handles = [Line2D([], [], marker="s", ls="", color="#c92a2a", mec="black",
                      label="BS (size: bandwidth)"),
               Line2D([], [], marker="s", ls="", color="#1c7ed6", label="booked bandwidth"),
               Line2D([], [], marker="s", ls="", color="#e8590c", label="booked power"),
               Line2D([], [], marker="s", ls="", mfc="none", mec="black",
                      label="  (box = supply)"),
               Line2D([], [], marker="*", ls="", color="#2f9e44", mec="black", ms=10,
                      label="sensing target")]
    shown = [s for s in MU_STATES if s in states]
    handles += [Line2D([], [], marker="o", ls="", color=MU_STATES[s][0], label=MU_STATES[s][1])
                for s in shown]
    if focal_mu is not None:
        handles.append(Line2D([], [], marker="o", ls="", mfc="none", mec="black", ms=10,
                              label=f"focal MU {focal_mu}"))
    handles += [Line2D([], [], color="#74a9e8", label="communication contract"),
                Line2D([], [], color="#2f9e44", lw=1.4, label="coalition's sensing contract"),
                Line2D([], [], color="#2f9e44", lw=0.6, ls=":", label="coalition member")]
    if tentative_bs is not None and np.any(tentative_bs >= 0):
        handles.append(Line2D([], [], color="#12b886", ls="--", label="tentative acceptance"))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(0.70, 0.5), fontsize=7,
               frameon=False)
    canvas.draw()
    frame = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return frame


def _rectangle(xy: tuple[float, float], width: float, height: float, **style: Any) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(xy, width, height, zorder=6, **style)


def sw_so_far(market: Market) -> float:
    """The social welfare of the transactions completed so far."""
    return float(sum(tx.social_welfare for tx in market.transactions))
