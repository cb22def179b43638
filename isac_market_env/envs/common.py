"""Shared pieces of the environments: kwarg checking, action validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces


def check_reset_options(name: str, options: Mapping[str, Any] | None) -> None:
    """The envs take no ``reset`` options (the seed picks the market): refuse any given, rather
    than ignore them silently."""
    if options:
        raise ValueError(f"{name}.reset: unknown option(s) {', '.join(sorted(map(str, options)))}"
                         "; it takes none (reset(seed=s) picks the market)")


def bid_level_price(reserve: Any, value: Any, level: Any, n_levels: int) -> Any:
    """The price of bid level ``level`` >= 1 of ``n_levels``: ``reserve + (value - reserve)
    level / (n_levels - 1)`` (scalars or arrays; level 0, the rule's bid, is the caller's)."""
    return reserve + (value - reserve) * level / (n_levels - 1)


def step_error(never_reset: bool) -> str:
    """The message of a ``step()`` without an episode under way."""
    if never_reset:
        return "step() called before reset(); call reset() first"
    return "step() called on a finished episode; call reset() first"


def numeric_array(action: Any, what: str = "action") -> np.ndarray:
    """``action`` as a real-valued array, or a ValueError: strings, objects, bools
    and complex numbers (whose imaginary part would be dropped) are refused."""
    try:
        arr = np.asarray(action)
    except (TypeError, ValueError) as error:  # ragged lists
        raise ValueError(f"{what} must be numeric, got {action!r}") from error
    if arr.dtype.kind not in "iuf":
        kind = "complex" if arr.dtype.kind == "c" else arr.dtype.name
        raise ValueError(f"{what} must be real numbers, got {action!r} ({kind})")
    return arr


def validate_action(action: Any, space: spaces.Space[Any]) -> np.ndarray:
    """Return the action as an array or raise ValueError saying what is wrong with it."""
    arr = numeric_array(action)
    if arr.shape != space.shape:
        raise ValueError(f"action must have shape {space.shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr.astype(np.float64))):
        raise ValueError(f"action must be finite, got {arr.tolist()}")
    if isinstance(space, spaces.MultiDiscrete):
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"action must be integers, got {arr.tolist()}")
        if np.any(arr < 0) or np.any(arr >= space.nvec):  # before a cast could overflow
            raise ValueError(f"action {arr.tolist()} is outside the action space {space}")
        arr = arr.astype(np.int64)
    elif isinstance(space, spaces.Box) and (np.any(arr < space.low) or np.any(arr > space.high)):
        raise ValueError(f"action {arr.tolist()} is outside the action space {space}")
    if not space.contains(arr.astype(space.dtype)):
        raise ValueError(f"action {arr.tolist()} is outside the action space {space}")
    return arr
