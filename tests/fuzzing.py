"""The bad-input harness: strategies of bad and edge values for every public entry point, and
the oracle that classifies what a call did with one.

Oracle: the call raises ValueError / TypeError / FileNotFoundError whose message names the
offending argument ("clear"), or it succeeds and every number it produced is finite and the
episode invariants hold ("ok"). Anything else is a finding: an error that does not name the
argument ("unclear"), another exception ("crash"), a call that outlives its time limit
("hang"), a success with a non-finite number or a broken invariant, or a value of a kind that
can never be valid accepted ("silent"), and a value that is valid by construction refused
("refused").

``tests/test_fuzz.py`` asserts there are no findings; ``python tests/fuzzing.py`` counts the
outcomes over many examples (the figures docs/model.md reports).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import math
import os
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import EUA_DIR, SMALL, check_episode

import isac_market_env as ime
from isac_market_env.config import IsccConfig, MarketConfig, PhysicsConfig, ScenarioConfig
from isac_market_env.scenarios.eua import SITES_FILE, USERS_FILE

CLEAR_ERRORS = (ValueError, TypeError, FileNotFoundError)
TIME_LIMIT_S = 60
MEMORY_LIMIT_GIB = "1"  # the harness runs with this cap: a config above it must be refused
OUTCOMES = ("ok", "clear", "unclear", "crash", "hang", "silent", "refused")


@dataclasses.dataclass(frozen=True)
class Case:
    """One input: the argument it sets, the value, and what is known about it up front
    (``invalid``: can never be accepted; ``valid``: must be accepted)."""

    argument: str
    value: Any
    invalid: bool = False
    valid: bool = False


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer in {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------- values
WRONG_KINDS = st.one_of(st.text(max_size=4), st.complex_numbers(allow_nan=False, max_magnitude=10),
                        st.just(None), st.just([]), st.just({}), st.just(object()))
EXTREME_INTS = st.sampled_from([0, -1, 1, 2, 3, 2**31, 10**7, 10**9, 10**12, 10**30, -10**9])
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
EDGE_FLOATS = st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e300, -1e300, 1e6, -1e6, 0.5, 1.0,
                               float("nan"), float("inf"), -float("inf")])


def _not_finite_number(value: Any) -> bool:
    return isinstance(value, float | np.floating) and not math.isfinite(float(value))


def field_cases(name: str, default: Any) -> st.SearchStrategy[Case]:
    """Bad and edge values for a config field of the default's kind."""
    if isinstance(default, bool):
        return st.one_of(st.booleans().map(lambda v: Case(name, v, valid=True)),
                         st.sampled_from([0, 1, "False", "true", None]).map(
                             lambda v: Case(name, v, invalid=True)))
    if isinstance(default, int):
        return st.one_of(
            st.integers(-3, 12).map(lambda v: Case(name, v)),
            EXTREME_INTS.map(lambda v: Case(name, v)),
            st.just(Case(name, np.int64(default), valid=True)),
            st.just(Case(name, np.int32(default), valid=True)),
            st.sampled_from([2.5, float(default), float("nan"), True]).map(
                lambda v: Case(name, v, invalid=True)),
            WRONG_KINDS.map(lambda v: Case(name, v, invalid=True)))
    if isinstance(default, float):
        return st.one_of(
            ANY_FLOAT.map(lambda v: Case(name, v, invalid=not math.isfinite(v))),
            EDGE_FLOATS.map(lambda v: Case(name, v, invalid=not math.isfinite(v))),
            EXTREME_INTS.map(lambda v: Case(name, v)),
            st.just(Case(name, np.float64(default), valid=True)),
            st.just(Case(name, np.float32(default), valid=True)),
            st.sampled_from([True, False]).map(lambda v: Case(name, v, invalid=True)),
            WRONG_KINDS.map(lambda v: Case(name, v, invalid=True)))
    if isinstance(default, tuple):
        element = st.one_of(EDGE_FLOATS, EXTREME_INTS, st.integers(-2, 100),
                            st.floats(-100, 1000))
        return st.one_of(
            st.tuples(element, element).map(lambda v: Case(name, v, invalid=any(
                _not_finite_number(x) for x in v))),
            st.just(Case(name, list(default), valid=True)),
            st.just(Case(name, tuple(default[::-1]), invalid=default[0] != default[1])),
            st.lists(element, max_size=4).filter(lambda v: len(v) != 2).map(
                lambda v: Case(name, tuple(v), invalid=True)),
            st.sampled_from(["(1, 2)", 5, None]).map(lambda v: Case(name, v, invalid=True)))
    # overbooking_per_bs (None by default): tuples of pairs
    pair = st.tuples(EDGE_FLOATS, EDGE_FLOATS)
    return st.one_of(st.lists(pair, max_size=4).map(lambda v: Case(name, tuple(v))),
                     st.sampled_from(["x", 3, ((0.1,),)]).map(
                         lambda v: Case(name, v, invalid=True)))


# number fields where None is valid (no cap), with the kind of number they take
OPTIONAL_NUMBERS = {"gain_demand": 1.0, "max_working_clients": 1}


def config_cases(cls: type) -> st.SearchStrategy[Case]:
    defaults = cls()

    def cases(name: str) -> st.SearchStrategy[Case]:
        if name not in OPTIONAL_NUMBERS:
            return field_cases(name, getattr(defaults, name))
        return field_cases(name, OPTIONAL_NUMBERS[name]).map(
            lambda case: Case(name, None, valid=True) if case.value is None else case)

    return st.one_of(*(cases(f.name) for f in dataclasses.fields(cls)
                       if f.name != "eua_max_extent_km"))


ANY_VALUE = st.one_of(WRONG_KINDS, ANY_FLOAT, EXTREME_INTS, st.booleans(),
                      st.sampled_from(["frbank", "paper-synthetic", "utility", "ansi", 0.5]))


# ---------------------------------------------------------------------------- the oracle
def all_finite(tree: Any, where: str = "") -> str | None:
    """The path of the first non-finite number in a nested structure, or None."""
    if isinstance(tree, dict):
        return next((bad for k, v in tree.items() if (bad := all_finite(v, f"{where}.{k}"))),
                    None)
    if isinstance(tree, list | tuple):
        return next((bad for i, v in enumerate(tree) if (bad := all_finite(v, f"{where}[{i}]"))),
                    None)
    if isinstance(tree, np.ndarray):
        if tree.dtype.kind in "fc" and not np.all(np.isfinite(tree)):
            return where
        return None
    if isinstance(tree, float | np.floating) and not math.isfinite(float(tree)):
        return where
    return None


def classify(case: Case, call: Callable[[], None], names: tuple[str, ...] = ()) -> tuple[str, str]:
    """Run ``call`` under the time limit and say what it did: (outcome, detail)."""
    named = (case.argument, *names)
    try:
        with time_limit(TIME_LIMIT_S):
            call()
    except Hang as error:
        return "hang", str(error)
    except CLEAR_ERRORS as error:
        if case.valid:
            return "refused", f"{type(error).__name__}: {error}"
        if any(name in str(error) for name in named):
            return "clear", ""
        return "unclear", f"{type(error).__name__}: {error}"
    except AssertionError as error:
        return "silent", f"invariant broken: {error}\n{traceback.format_exc(limit=-3)}"
    except Exception as error:
        return "crash", f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=-4)}"
    if case.invalid:
        return "silent", f"accepted {case.value!r} for {case.argument}"
    return "ok", ""


def run_market(mechanism: str = "frbank", n_mus: int | None = 4, n_transactions: int = 2,
               seed: Any = 0, **overrides: Any) -> None:
    """One episode, then the invariants and the finiteness of everything it reports."""
    overrides.setdefault("scenario_overrides", SMALL)
    market = ime.make_market(mechanism, n_mus=n_mus, n_transactions=n_transactions, seed=seed,
                             **overrides)
    market.run()
    check_episode(market)
    result = market.result()
    bad = all_finite(result.to_dict()) or all_finite(result.summary())
    assert bad is None, f"non-finite number at {bad}"


def simulate_call(case: Case, target: str) -> Callable[[], None]:
    """A call of ``simulate`` with ``case`` set: a config field (target ``scenario`` /
    ``market`` / ``physics``) or a top-level argument (target ``top``)."""
    if target == "top":
        return lambda: run_market(**{case.argument: case.value})
    base = dict(SMALL) if target == "scenario" else {}
    base[case.argument] = case.value
    n_mus = None if case.argument == "n_mus" else 4  # not given twice
    return lambda: run_market(n_mus=n_mus, **{f"{target}_overrides": base})


TOP_LEVEL = st.one_of(
    st.one_of(st.sampled_from(["frbank", "greedy", "optimal", "hybrido-nor", "FRBank", ""]),
              WRONG_KINDS).map(lambda v: Case("mechanism", v, invalid=not isinstance(v, str))),
    st.one_of(st.integers(-3, 8), EXTREME_INTS, st.just(np.int64(3)), ANY_FLOAT,
              WRONG_KINDS).map(lambda v: Case("n_mus", v, invalid=isinstance(v, float | str))),
    st.one_of(st.integers(-3, 4), EXTREME_INTS, st.just(np.int64(2)), ANY_FLOAT,
              WRONG_KINDS).map(lambda v: Case("n_transactions", v, invalid=isinstance(v, float))),
    st.one_of(st.integers(-5, 2**64), st.just(np.int64(7)), st.just(np.uint32(3)), ANY_FLOAT,
              WRONG_KINDS).map(lambda v: Case("seed", v, invalid=isinstance(v, float | str))),
    st.one_of(WRONG_KINDS, st.just({"n_muss": 3})).map(
        lambda v: Case("scenario_overrides", v, invalid=v not in (None, {}))),
    st.one_of(WRONG_KINDS, st.just({"bandwith": 1})).map(
        lambda v: Case("market_overrides", v, invalid=v not in (None, {}))),
)


# ---------------------------------------------------------------------------- ISCC market
ISCC_SMALL = {"n_clients": 6, "n_targets": 20, "workload_levels": 4}


def check_iscc_round(r: Any, config: IsccConfig) -> None:
    """IR of the clients and the platform, the three pools, the demand, SW identity."""
    working = r.server >= 0
    assert (r.active | ~working).all(), "an inactive client works"
    assert (r.payment[working] >= r.cost[working] - 1e-9 * (1 + r.cost[working])).all(), \
        "a client works at a loss"
    assert r.bs_utility >= -1e-9 * (1 + abs(r.delivered_value)), "the platform loses"
    assert (r.pool_used <= r.pool_capacity * (1 + 1e-9)).all(), "a pool is exceeded"
    if config.gain_demand is not None:
        assert r.paid_gain <= config.gain_demand * (1 + 1e-12), "gain paid beyond the demand"
    assert math.isclose(r.social_welfare, r.mu_utility + r.bs_utility, rel_tol=1e-9,
                        abs_tol=1e-6), "SW != MU + BS utility"


def run_iscc(**changes: Any) -> None:
    """One ISCC episode with ``changes`` to the small config, then its invariants and the
    finiteness of everything it reports."""
    result = ime.simulate("iscc", "iscc-perception", n_transactions=2, seed=0,
                          scenario_overrides={**ISCC_SMALL, **changes})
    for r in result.rounds:  # type: ignore[union-attr]
        check_iscc_round(r, result.config)  # type: ignore[union-attr]
    bad = all_finite(result.to_dict()) or all_finite(result.summary())
    assert bad is None, f"non-finite number at {bad}"


def iscc_call(case: Case) -> Callable[[], None]:
    return lambda: run_iscc(**{case.argument: case.value})


# ---------------------------------------------------------------------------- envs
ENV_BASE: dict[str, dict[str, Any]] = {
    "ISACMarket-Bidding-v0": {"n_mus": 4, "n_transactions": 2,
                              "scenario_overrides": SMALL},
    "ISACMarket-Overbooking-v0": {"n_mus": 4, "n_periods": 2, "transactions_per_period": 2,
                                  "scenario_overrides": SMALL},
    "isac_market_v0": {"n_mus": 4, "n_transactions": 2, "scenario_overrides": SMALL},
}


def make_env(env_id: str, **kwargs: Any) -> Any:
    if env_id == "isac_market_v0":
        from isac_market_env.envs.multiagent import parallel_env

        return parallel_env(**kwargs)
    import gymnasium as gym

    return gym.make(env_id, **kwargs)


def env_arguments(env_id: str) -> list[str]:
    """The env's keyword arguments (but the scenario, the data directory and rendering),
    and one that does not exist."""
    from isac_market_env.envs import ISACMarketBiddingEnv, ISACMarketOverbookingEnv
    from isac_market_env.envs.multiagent import ISACMarketParallelEnv

    env_class = {"ISACMarket-Bidding-v0": ISACMarketBiddingEnv,
                 "ISACMarket-Overbooking-v0": ISACMarketOverbookingEnv,
                 "isac_market_v0": ISACMarketParallelEnv}[env_id]
    skipped = {"eua_directory", "render_mode", "scenario"}
    return [*sorted(set(env_class.ARGUMENTS) - skipped), "bogus_argument"]


def play(env: Any, env_id: str, steps: int = 40, actions: Any = None) -> None:
    """Reset and step (random valid actions, or ``actions`` first); every observation and
    reward must be finite and inside its space, and the market played so far must keep the
    episode invariants."""
    _play(env, env_id, steps, actions)
    market = getattr(env.unwrapped if hasattr(env, "unwrapped") else env, "market", None)
    if market is not None:
        check_episode(market)


def _play(env: Any, env_id: str, steps: int, actions: Any) -> None:
    if env_id == "isac_market_v0":
        observations, _ = env.reset(seed=0)
        for _ in range(steps):
            if not env.agents:
                break
            for agent, obs in observations.items():
                assert env.observation_space(agent).contains(obs), agent
            chosen = actions if actions is not None else {
                a: env.action_space(a).sample() for a in env.agents}
            actions = None
            observations, rewards, *_ = env.step(chosen)
            assert all(math.isfinite(r) for r in rewards.values()), rewards
        return
    obs, _ = env.reset(seed=0)
    for _ in range(steps):
        assert env.observation_space.contains(obs) and np.all(np.isfinite(obs))
        action = actions if actions is not None else env.action_space.sample()
        actions = None
        obs, reward, terminated, truncated, info = env.step(action)
        assert math.isfinite(reward) and all_finite(info) is None, info
        if terminated or truncated:
            break


def env_call(env_id: str, case: Case) -> Callable[[], None]:
    def call() -> None:
        env = make_env(env_id, **{**ENV_BASE[env_id], case.argument: case.value})
        play(env, env_id)

    return call


def action_call(env_id: str, action: Any) -> Callable[[], None]:
    def call() -> None:
        env = make_env(env_id, **ENV_BASE[env_id])
        play(env, env_id, steps=3, actions={"mu_0": action} if env_id == "isac_market_v0"
             else action)

    return call


ACTIONS = st.one_of(
    st.lists(st.one_of(st.integers(-3, 200), EDGE_FLOATS), min_size=0, max_size=5),
    st.integers(-5, 500), ANY_FLOAT, WRONG_KINDS,
    st.lists(st.text(max_size=2), min_size=2, max_size=2),
    st.lists(st.complex_numbers(max_magnitude=3, allow_nan=False), min_size=1, max_size=10),
    st.just([[1, 2], [3]]), st.just(np.zeros((2, 2))), st.booleans())


# ---------------------------------------------------------------------------- EUA files
CELLS = st.one_of(st.sampled_from(["", "abc", "nan", "inf", "-inf", "1e400", "95", "-91", "400",
                                   "-37.81", "144.96", "0", " 1 ", "1,2", "\x00", "−37.8"]),
                  st.floats(-1000, 1000).map(repr), st.text(max_size=5))


@st.composite
def eua_mutations(draw: Any) -> tuple[str, str, Any]:
    """(file, operation, argument): a cell replaced, a column renamed, lines truncated,
    bytes cut, the file emptied, replaced by binary garbage or deleted."""
    name = draw(st.sampled_from([SITES_FILE, USERS_FILE]))
    operation = draw(st.sampled_from(["cell", "cell", "cell", "rename_column", "keep_lines",
                                      "cut_bytes", "empty", "garbage", "delete", "swap"]))
    argument: Any = None
    if operation == "cell":
        argument = (draw(st.integers(1, 120)), draw(st.integers(0, 1)), draw(CELLS))
    elif operation in ("keep_lines", "cut_bytes"):
        argument = draw(st.integers(0, 3000))
    return name, operation, argument


def mutate_eua(root: Path, name: str, operation: str, argument: Any) -> None:
    path = root / name
    lat, lon = ("LATITUDE", "LONGITUDE") if name == SITES_FILE else ("Latitude", "Longitude")
    text = path.read_text()
    lines = text.splitlines()
    header = lines[0].split(",")
    if operation == "cell":
        row, which, cell = argument
        column = header.index((lat, lon)[which])
        row = min(row, len(lines) - 1)
        cells = lines[row].split(",")
        cells[column] = cell
        lines[row] = ",".join(cells)
        path.write_text("\n".join(lines) + "\n")
    elif operation == "rename_column":
        path.write_text(text.replace(lat, "LAT", 1))
    elif operation == "swap":
        path.write_text(text.replace(lat, "TMP", 1).replace(lon, lat, 1).replace("TMP", lon, 1))
    elif operation == "keep_lines":
        path.write_text("\n".join(lines[:argument]) + ("\n" if argument else ""))
    elif operation == "cut_bytes":
        path.write_bytes(path.read_bytes()[:argument])
    elif operation == "empty":
        path.write_text("")
    elif operation == "garbage":
        path.write_bytes(bytes(range(256)) * 4)
    elif operation == "delete":
        path.unlink()


def eua_call(name: str, operation: str, argument: Any) -> Callable[[], None]:
    def call() -> None:
        root = Path(tempfile.mkdtemp(prefix="eua-fuzz-"))
        try:
            for source in (SITES_FILE, USERS_FILE):
                shutil.copy(EUA_DIR / source, root / source)
            mutate_eua(root, name, operation, argument)
            run_market(scenario="eua-melbourne", n_mus=5, n_transactions=1,
                       eua_directory=root,
                       scenario_overrides={"n_bss": 2, "n_targets": 2})
        finally:
            shutil.rmtree(root, ignore_errors=True)

    return call


# ---------------------------------------------------------------------------- counting
def count(examples: int) -> dict[str, collections.Counter[str]]:
    """Run every family ``examples`` times and count the outcomes (hypothesis drives the
    values; nothing is asserted)."""
    from hypothesis import HealthCheck, given, settings

    os.environ["ISAC_MARKET_MEMORY_LIMIT_GIB"] = MEMORY_LIMIT_GIB
    tally: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    findings: list[str] = []
    run = settings(max_examples=examples, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck))

    def note(family: str, outcome: tuple[str, str], what: str) -> None:
        tally[family][outcome[0]] += 1
        if outcome[0] not in ("ok", "clear"):
            findings.append(f"[{family}] {outcome[0]}: {what}: {outcome[1][:300]}")

    for target, cls in (("scenario", ScenarioConfig), ("market", MarketConfig),
                        ("physics", PhysicsConfig)):
        @run
        @given(case=config_cases(cls), target=st.just(target))
        def fuzz(case: Case, target: str) -> None:
            note(f"simulate {target}_overrides", classify(case, simulate_call(case, target)),
                 f"{case.argument}={case.value!r}")
        fuzz()

    @run
    @given(case=config_cases(IsccConfig))
    def fuzz_iscc(case: Case) -> None:
        note("simulate iscc-perception scenario_overrides", classify(case, iscc_call(case)),
             f"{case.argument}={case.value!r}")
    fuzz_iscc()

    @run
    @given(case=TOP_LEVEL)
    def fuzz_top(case: Case) -> None:
        note("simulate arguments", classify(case, simulate_call(case, "top"),
                                            ("scenario_overrides", "market_overrides")),
             f"{case.argument}={case.value!r}")
    fuzz_top()

    for env_id in ENV_BASE:
        @run
        @given(argument=st.sampled_from(env_arguments(env_id)), value=ANY_VALUE,
               env_id=st.just(env_id))
        def fuzz_env(argument: str, value: Any, env_id: str) -> None:
            case = Case(argument, value, invalid=argument == "bogus_argument")
            note(f"make {env_id}", classify(case, env_call(env_id, case)), f"{argument}={value!r}")
        fuzz_env()

        @run
        @given(action=ACTIONS, env_id=st.just(env_id))
        def fuzz_action(action: Any, env_id: str) -> None:
            note(f"actions {env_id}", classify(Case("action", action),
                                               action_call(env_id, action)), repr(action))
        fuzz_action()

    if (EUA_DIR / SITES_FILE).is_file():
        @run
        @given(mutation=eua_mutations())
        def fuzz_eua(mutation: tuple[str, str, Any]) -> None:
            case = Case(mutation[0], mutation)
            note("EUA files", classify(case, eua_call(*mutation), ("eua", str(EUA_DIR))),
                 repr(mutation))
        fuzz_eua()
    for line in findings:
        print(line)
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="count the outcomes of the bad-input fuzz")
    parser.add_argument("--examples", type=int, default=60, help="examples per family")
    args = parser.parse_args(argv)
    tally = count(args.examples)
    print(f"\n{'family':40s} " + " ".join(f"{o:>8s}" for o in OUTCOMES))
    total: collections.Counter[str] = collections.Counter()
    for family, counts in tally.items():
        total.update(counts)
        print(f"{family:40s} " + " ".join(f"{counts[o]:8d}" for o in OUTCOMES))
    print(f"{'all (' + str(sum(total.values())) + ' inputs)':40s} "
          + " ".join(f"{total[o]:8d}" for o in OUTCOMES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
