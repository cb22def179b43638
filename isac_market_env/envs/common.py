"""Shared pieces of the environments: kwarg checking, action validation, rendering."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from isac_market_env.config import EpisodeConfig
from isac_market_env.market.market import Market
from isac_market_env.simulate import make_episode_config

REWARDS = ("social_welfare", "utility")


def check_kwargs(name: str, given: Mapping[str, Any], allowed: set[str]) -> None:
    """Unknown keyword arguments are a ValueError that names them (gym.make boundary)."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(f"{name}: unknown argument(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(sorted(allowed))}")


def check_reset_options(name: str, options: Mapping[str, Any] | None) -> None:
    """The envs take no ``reset`` options (the seed picks the market): refuse any given, rather
    than ignore them silently."""
    if options:
        raise ValueError(f"{name}.reset: unknown option(s) {', '.join(sorted(map(str, options)))}"
                         "; it takes none (reset(seed=s) picks the market)")


def episode_config(scenario: str, n_mus: int | None, n_transactions: int,
                   overrides: Mapping[str, Any]) -> EpisodeConfig:
    """EpisodeConfig from the env's scenario name and its override dicts (validated)."""
    return make_episode_config(
        scenario, n_mus, n_transactions,
        scenario_overrides=dict(overrides.get("scenario_overrides") or {}),
        market_overrides=dict(overrides.get("market_overrides") or {}),
        physics_overrides=dict(overrides.get("physics_overrides") or {}))


def validate_action(action: Any, space: spaces.Space[Any]) -> np.ndarray:
    """Return the action as an array or raise ValueError saying what is wrong with it."""
    arr = np.asarray(action)
    if arr.dtype == object:
        raise ValueError(f"action must be numeric, got {action!r}")
    if arr.shape != space.shape:
        raise ValueError(f"action must have shape {space.shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr.astype(np.float64))):
        raise ValueError(f"action must be finite, got {arr.tolist()}")
    if isinstance(space, spaces.MultiDiscrete):
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"action must be integers, got {arr.tolist()}")
        arr = arr.astype(np.int64)
    if not space.contains(arr.astype(space.dtype)):
        raise ValueError(f"action {arr.tolist()} is outside the action space {space}")
    return arr


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


def _disc(img: np.ndarray, x: float, y: float, r: int, color: tuple[int, int, int]) -> None:
    h, w, _ = img.shape
    yy, xx = np.ogrid[:h, :w]
    img[(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = color


def _line(img: np.ndarray, p: tuple[float, float], q: tuple[float, float],
          color: tuple[int, int, int]) -> None:
    n = int(max(abs(q[0] - p[0]), abs(q[1] - p[1]))) + 1
    xs = np.clip(np.round(np.linspace(p[0], q[0], n)).astype(int), 0, img.shape[1] - 1)
    ys = np.clip(np.round(np.linspace(p[1], q[1], n)).astype(int), 0, img.shape[0] - 1)
    img[ys, xs] = color


def render_map(market: Market, size: int = 400) -> np.ndarray:
    """RGB map: BSs (red), MUs (blue, grey when absent), targets (green), contracts (lines)."""
    sc, book = market.scenario, market.book
    pts = np.vstack([sc.bs_xy_m, sc.mu_xy_m, sc.target_xy_m])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0))
    margin = 12

    def to_px(xy: np.ndarray) -> tuple[float, float]:
        u = (xy - lo) / span * (size - 2 * margin) + margin
        return float(u[0]), float(size - u[1])

    img = np.full((size, size, 3), 255, dtype=np.uint8)
    for client, bs in zip(market.contracts.client, market.contracts.bs, strict=True):
        members = book.members(int(client))
        color = (170, 170, 240) if len(members) == 1 and client < book.n_mus else (150, 220, 150)
        anchor = (sc.mu_xy_m[members[0]] if client < book.n_mus
                  else sc.target_xy_m[sc.mu_target[members[0]]])
        _line(img, to_px(anchor), to_px(sc.bs_xy_m[bs]), color)
    present = (market.transactions[-1].mu_present if market.transactions
               else np.ones(sc.n_mus, dtype=bool))
    for i, xy in enumerate(sc.mu_xy_m):
        _disc(img, *to_px(xy), 3, (40, 80, 220) if present[i] else (180, 180, 180))
    for xy in sc.target_xy_m:
        _disc(img, *to_px(xy), 4, (30, 160, 60))
    for xy in sc.bs_xy_m:
        x, y = to_px(xy)
        img[int(max(y - 6, 0)):int(y + 6), int(max(x - 6, 0)):int(x + 6)] = (210, 40, 40)
    return img
