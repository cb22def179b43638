"""One set of checks for every value that crosses a public boundary (configs, ``simulate``,
``gym.make`` kwargs, the command line).

Each check raises ``ValueError`` (a bad value) or ``TypeError`` (a value of the wrong kind) whose
message names the argument and says what is allowed, and returns the value normalised to a plain
Python type: numpy integers and floats are accepted wherever Python numbers are (sweeps built
with ``np.arange`` work), bools never count as numbers, and an integer given for a float field
becomes a float (so equal configs serialise equally).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

# the largest seed SeedSequence and the envs' seed draws agree on (64-bit)
MAX_SEED = 2**63 - 1
# integers of configs and options end up in int64 arrays and samplers: at most this
MAX_INTEGER = 2**62


def check_integer(name: str, value: Any, low: int | None = None,
                  high: int | None = None) -> int:
    """``value`` as an ``int`` in [low, high]; numpy integers pass, bools and floats do not."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    number = int(value)
    high = MAX_INTEGER if high is None else min(high, MAX_INTEGER)
    if low is not None and number < low:
        raise ValueError(f"{name} must be >= {low}, got {number}")
    if high is not None and number > high:
        raise ValueError(f"{name} must be <= {high}, got {number}")
    return number


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite ``float`` in the bounds; ints and numpy numbers pass, bools,
    strings and complex numbers do not."""
    if isinstance(value, bool | np.bool_) or not isinstance(
            value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    number = float(value) + 0.0  # -0.0 becomes 0.0 (numpy's samplers tell them apart)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (number < low or (low_open and number == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {number!r}")
    if high is not None and (number > high or (high_open and number == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {number!r}")
    return number


def check_bool(name: str, value: Any) -> bool:
    """``value`` must be True or False (not a string such as ``"False"``, not 0/1)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` must be one of the strings ``choices``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {', '.join(choices)} (a string), got {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_mapping(name: str, value: Any) -> dict[str, Any]:
    """None or a mapping with string keys, returned as a new dict."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of field names to values, got {value!r} "
                        f"({type(value).__name__})")
    bad = [key for key in value if not isinstance(key, str)]
    if bad:
        raise TypeError(f"{name} keys must be field names (strings), got {bad[0]!r}")
    return dict(value)


def check_seed(name: str, value: Any) -> int | None:
    """None (fresh entropy) or an integer in [0, 2**63 - 1]."""
    if value is None:
        return None
    return check_integer(name, value, 0, MAX_SEED)


def check_path(name: str, value: Any) -> Path | None:
    """None or a path (str or os.PathLike)."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or (isinstance(value, str) and not value):
        raise TypeError(f"{name} must be a directory path, got {value!r}")
    return Path(value)


def check_number_range(name: str, pair: Any, low: float | None = None,
                       high: float | None = None, low_open: bool = False,
                       integer: bool = False, ordered: bool = True) -> tuple[Any, Any]:
    """A ``(min, max)`` pair (tuple or list) of numbers in the bounds with min <= max (any two
    numbers when not ``ordered``)."""
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        kind = "(min, max) pair" if ordered else "pair of numbers"
        raise TypeError(f"{name} must be a {kind}, got {pair!r}")
    if integer:
        bounds: tuple[Any, Any] = tuple(  # type: ignore[assignment]
            check_integer(name, bound, None if low is None else math.ceil(low),
                          None if high is None else math.floor(high)) for bound in pair)
        if low_open and low is not None and bounds[0] == low:
            raise ValueError(f"{name} must be > {low}, got {pair!r}")
    else:
        bounds = tuple(check_float(name, bound, low, high, low_open)  # type: ignore[assignment]
                       for bound in pair)
    if ordered and bounds[0] > bounds[1]:
        raise ValueError(f"{name} must have min <= max, got {pair!r}")
    return bounds
