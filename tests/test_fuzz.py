"""The bad-input fuzz (tests/fuzzing.py): for every public entry point, every hypothesis-drawn
bad or edge value either gets a ValueError/TypeError/FileNotFoundError naming the argument, or
runs to a finite, invariant-respecting result; never another exception, never a hang."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import EUA_DIR
from fuzzing import (
    ACTIONS,
    ANY_VALUE,
    ENV_BASE,
    MEMORY_LIMIT_GIB,
    TOP_LEVEL,
    Case,
    action_call,
    classify,
    config_cases,
    env_arguments,
    env_call,
    eua_call,
    eua_mutations,
    iscc_call,
    simulate_call,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isac_market_env.config import IsccConfig, MarketConfig, PhysicsConfig, ScenarioConfig
from isac_market_env.scenarios.eua import SITES_FILE

FUZZ = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def memory_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 GiB cap: a config that needs more must be refused by name, not attempted."""
    monkeypatch.setenv("ISAC_MARKET_MEMORY_LIMIT_GIB", MEMORY_LIMIT_GIB)


def expect_no_finding(outcome: tuple[str, str], what: str) -> None:
    assert outcome[0] in ("ok", "clear"), f"{outcome[0]} for {what}: {outcome[1]}"


@pytest.mark.parametrize(("target", "cls"), [("scenario", ScenarioConfig),
                                             ("market", MarketConfig),
                                             ("physics", PhysicsConfig)])
def test_config_fields(target: str, cls: type) -> None:
    @FUZZ
    @given(case=config_cases(cls))
    def check(case: Case) -> None:
        expect_no_finding(classify(case, simulate_call(case, target)),
                          f"{target}_overrides {case.argument}={case.value!r}")

    check()


@FUZZ
@given(case=config_cases(IsccConfig))
def test_iscc_config_fields(case: Case) -> None:
    expect_no_finding(classify(case, iscc_call(case)),
                      f"iscc-perception scenario_overrides {case.argument}={case.value!r}")


@FUZZ
@given(case=TOP_LEVEL)
def test_simulate_arguments(case: Case) -> None:
    expect_no_finding(classify(case, simulate_call(case, "top"),
                               ("scenario_overrides", "market_overrides")),
                      f"{case.argument}={case.value!r}")


@pytest.mark.parametrize("env_id", list(ENV_BASE))
def test_env_arguments(env_id: str) -> None:
    @FUZZ
    @given(argument=st.sampled_from(env_arguments(env_id)), value=ANY_VALUE)
    def check(argument: str, value: Any) -> None:
        case = Case(argument, value, invalid=argument == "bogus_argument")
        expect_no_finding(classify(case, env_call(env_id, case)), f"{argument}={value!r}")

    check()


@pytest.mark.parametrize("env_id", list(ENV_BASE))
def test_env_actions(env_id: str) -> None:
    @FUZZ
    @given(action=ACTIONS)
    def check(action: Any) -> None:
        expect_no_finding(classify(Case("action", action), action_call(env_id, action)),
                          repr(action))

    check()


@pytest.mark.skipif(not (EUA_DIR / SITES_FILE).is_file(), reason="EUA data not found")
@FUZZ
@given(mutation=eua_mutations())
def test_mutated_eua_directory(mutation: tuple[str, str, Any]) -> None:
    expect_no_finding(classify(Case(mutation[0], mutation), eua_call(*mutation),
                               ("eua", str(EUA_DIR))), repr(mutation))


def test_the_oracle_catches_each_kind_of_finding() -> None:
    """The oracle is not vacuous: each kind of bad behaviour is classified as a finding."""
    def raise_(error: BaseException) -> Any:
        def call() -> None:
            raise error
        return call

    case = Case("n_mus", 2.5, invalid=True)
    assert classify(case, raise_(ValueError("n_mus must be an integer")))[0] == "clear"
    assert classify(case, raise_(ValueError("could not convert")))[0] == "unclear"
    assert classify(case, raise_(ZeroDivisionError("x")))[0] == "crash"
    assert classify(case, raise_(AssertionError("IR broken")))[0] == "silent"
    assert classify(case, lambda: None)[0] == "silent"  # an invalid value accepted
    valid = Case("n_mus", 3, valid=True)
    assert classify(valid, raise_(ValueError("n_mus refused")))[0] == "refused"
    import fuzzing

    fuzzing_limit, fuzzing.TIME_LIMIT_S = fuzzing.TIME_LIMIT_S, 1
    try:
        import time
        assert classify(valid, lambda: time.sleep(3))[0] == "hang"
    finally:
        fuzzing.TIME_LIMIT_S = fuzzing_limit
    # and a broken market is caught by the invariants: a negative-value solution accepted
    from fuzzing import all_finite
    assert all_finite({"a": [1.0, float("nan")]}) == ".a[1]"
