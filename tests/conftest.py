"""Shared fixtures: small markets that run in milliseconds, and the EUA data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

import isac_market_env as ime
from isac_market_env.mechanisms import knapsack, matching, typed_knapsack, volunteers

SMALL = {"n_bss": 2, "n_targets": 2, "bs_bandwidth_range_mhz": (10.0, 20.0),
         "bs_power_range_dbw": (8.0, 12.0)}
EUA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "eua"


def small_market(mechanism: str = "frbank", seed: int = 0, n_mus: int = 6,
                 n_transactions: int = 4, **market: object) -> ime.Market:
    return ime.make_market(mechanism, n_mus=n_mus, n_transactions=n_transactions, seed=seed,
                           scenario_overrides=SMALL, market_overrides=market)


def without_runtimes(tree: object) -> object:
    """A result's ``to_dict()`` without its wall-clock fields (everything else is deterministic)."""
    if isinstance(tree, dict):
        return {k: without_runtimes(v) for k, v in tree.items()
                if "runtime" not in k and "rt_" not in k}
    if isinstance(tree, list):
        return [without_runtimes(v) for v in tree]
    return tree


def numpy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this test use the numpy versions of the compiled loops (the ``fast`` extra)."""
    monkeypatch.setenv("ISAC_MARKET_ENV_JIT", "0")  # the package's one switch, read at use
    assert not matching.load_compiled_matching() and not knapsack.load_compiled_solver()
    assert volunteers.compiled_volunteer_kernels() is None
    assert typed_knapsack.compiled_typed_search() is None
    assert typed_knapsack.compiled_general_search() is None


@pytest.fixture(scope="session")
def eua_dir() -> Path:
    if not (EUA_DIR / "site-optus-melbCBD.csv").is_file():
        pytest.skip("EUA data set not found beside the checkout (../shared/data/eua)")
    return EUA_DIR
