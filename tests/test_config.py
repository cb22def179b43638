"""Bad configuration raises a ValueError that names the field; nothing half-built returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import isac_market_env as ime
from isac_market_env.config import MarketConfig, PhysicsConfig, ScenarioConfig
from isac_market_env.mechanisms.knapsack import DEFAULT_NODE_LIMIT
from isac_market_env.scenarios import synthetic_scenario


@pytest.mark.parametrize(("cls", "field", "value"), [
    (ScenarioConfig, "bs_bandwidth_range_mhz", (-10.0, 20.0)),
    (ScenarioConfig, "participation_range", (0.5, 1.5)),
    (ScenarioConfig, "participation_range", (-0.1, 0.5)),
    (ScenarioConfig, "n_mus", 0),
    (ScenarioConfig, "n_bss", 0),
    (ScenarioConfig, "area_side_m", float("nan")),
    (ScenarioConfig, "n_mus", 2.5),
    (MarketConfig, "overbooking_bandwidth", -0.1),
    (MarketConfig, "risk_bs_power", 0.0),
    (MarketConfig, "bid_increment", float("inf")),
    (MarketConfig, "penalty_client_ratio", float("nan")),
    (MarketConfig, "knapsack_node_limit", 0),
    (MarketConfig, "knapsack_node_limit", 2.5),
    (MarketConfig, "knapsack_node_limit", 10**30),
    (PhysicsConfig, "subchannel_bandwidth_hz", 0.0),
    (PhysicsConfig, "sensing_power_exponent", 1.5),
])
def test_bad_field_is_named(cls: type, field: str, value: object) -> None:
    with pytest.raises((ValueError, TypeError), match=field):
        cls(**{field: value})


def test_knapsack_node_limit_default_is_the_solvers() -> None:
    assert MarketConfig().knapsack_node_limit == DEFAULT_NODE_LIMIT


def test_unknown_key_is_named() -> None:
    with pytest.raises(ValueError, match="bandwith"):
        ime.simulate("frbank", n_mus=4, n_transactions=1, market_overrides={"bandwith": 1})
    with pytest.raises(ValueError, match="scenario must be one of"):
        ime.simulate("frbank", scenario="mars")
    with pytest.raises(ValueError, match="unknown mechanism"):
        ime.simulate("frbnk")


def test_scenario_arrays_are_validated() -> None:
    scenario = synthetic_scenario(ScenarioConfig(n_mus=3), np.random.default_rng(0))
    with pytest.raises(ValueError, match="mu_participation"):
        scenario.with_participation(np.array([0.5, 1.2, 0.3]))
    with pytest.raises(ValueError, match="finite"):
        scenario.with_participation(np.array([0.5, np.nan, 0.3]))


def test_overbooking_per_bs_must_match_bs_count() -> None:
    with pytest.raises(ValueError, match="overbooking_per_bs"):
        ime.simulate("frbank", n_mus=4, n_transactions=1,
                     market_overrides={"overbooking_per_bs": [[0.1, 0.1]]})


def test_missing_eua_directory_names_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match=r"site-optus-melbCBD\.csv"):
        ime.simulate("frbank", scenario="eua-melbourne", eua_directory=tmp_path)


def test_unknown_simulate_argument_names_simulate_and_the_valid_ones() -> None:
    with pytest.raises(TypeError, match=r"simulate\(\) got an unexpected keyword argument "
                                        r"'n_transaction' \(did you mean 'n_transactions'\?\)"
                                        r".*valid arguments: mechanism, scenario, n_mus"):
        ime.simulate("frbank", n_transaction=3)
    with pytest.raises(TypeError, match=r"make_market\(\).*'seeds'"):
        ime.make_market("frbank", seeds=3)


def test_missing_eua_data_says_how_to_point_at_it(tmp_path: Path) -> None:
    for directory in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(FileNotFoundError, match=r"--eua-dir.*ISAC_MARKET_EUA_DIR"):
            ime.simulate("frbank", scenario="eua-melbourne", n_transactions=1,
                         eua_directory=directory)
