"""Properties of whole episodes: IR, capacity and risk limits, SW identity, determinism."""

from __future__ import annotations

import dataclasses
import sys
import warnings

import numpy as np
import pytest
from conftest import check_episode, numpy_only, small_market, without_runtimes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import isac_market_env as ime
from isac_market_env.mechanisms import knapsack, matching, typed_knapsack, volunteers
from isac_market_env.mechanisms._jit import numba_jit
from isac_market_env.mechanisms.knapsack import DEFAULT_NODE_LIMIT
from isac_market_env.mechanisms.matching import (
    AscendingMatching,
    load_compiled_matching,
    run_matching,
)
from isac_market_env.metrics.stability import find_blocking_pairs, largest_blocking_discount

MARKET_MECHANISMS = ["frbank", "cononline", "conoffline", "hybrid", "hybrido", "greedy",
                     "frbank-nor", "hybrido-nor", "conoffline-nor"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_mus=st.integers(1, 9),
       mechanism=st.sampled_from(MARKET_MECHANISMS),
       overbooking=st.floats(0.0, 0.6), risk=st.floats(0.3, 1.0))
def test_random_small_markets(seed: int, n_mus: int, mechanism: str, overbooking: float,
                              risk: float) -> None:
    market = small_market(mechanism, seed, n_mus, n_transactions=3,
                          overbooking_bandwidth=overbooking, overbooking_power=overbooking,
                          risk_bs_bandwidth=risk, risk_client_comm=risk)
    market.run()
    check_episode(market)


@pytest.mark.parametrize("mechanism", MARKET_MECHANISMS)
def test_paper_synthetic_episode(mechanism: str) -> None:
    market = ime.make_market(mechanism, n_mus=20, n_transactions=3, seed=11)
    market.run()
    check_episode(market)
    assert market.signing is not None and market.signing.converged


def test_seeded_determinism_bit_for_bit() -> None:
    a = ime.simulate("frbank", n_mus=15, n_transactions=4, seed=3).to_dict()
    b = ime.simulate("frbank", n_mus=15, n_transactions=4, seed=3).to_dict()
    c = ime.simulate("frbank", n_mus=15, n_transactions=4, seed=4).to_dict()
    assert without_runtimes(a) == without_runtimes(b)
    assert without_runtimes(a) != without_runtimes(c)


def test_participation_is_shared_by_all_mechanisms() -> None:
    draws = [ime.make_market(mech, n_mus=12, n_transactions=5, seed=9).participation
             for mech in ("frbank", "greedy", "cononline", "optimal")]
    for other in draws[1:]:
        assert np.array_equal(draws[0], other)


def test_to_dict_is_json_safe_and_complete() -> None:
    import json

    result = ime.simulate("frbank", n_mus=10, n_transactions=2, seed=1)
    data = json.loads(json.dumps(result.to_dict()))
    assert len(data["transactions"]) == 2
    assert len(data["signing"]["contracts"]["pay"]) == len(result.signing.contracts)
    assert set(result.summary()) >= {"social_welfare", "mu_utility", "bs_utility", "rt_ms", "ni",
                                     "dibc_ms", "ecibc_j", "drlc", "rdsl_bandwidth"}


OFFLINE_MECHANISMS = [m for m in MARKET_MECHANISMS if ime.get_mechanism(m).offline]


@pytest.mark.parametrize("mechanism", OFFLINE_MECHANISMS)
def test_no_blocking_pair_on_the_bid_grid_with_fixed_preferences(mechanism: str) -> None:
    """Brute force over small markets (Def. 7, 8): no Type 1 or Type 2 blocking pair at any
    price at or above the final bids, the prices the ascending auction could still offer.

    Overbooking mechanisms are checked with the volunteer estimate held at zero: with the live
    estimate, the published E[v] depends on the matching itself and preferences move during it
    (docs/model.md).
    """
    for seed in range(25):
        market = small_market(mechanism, seed)
        problem = market.offline_problem()
        result = run_matching(problem)
        assert result.converged
        assert find_blocking_pairs(problem, result, prices="grid") == [], seed


def test_capped_bid_is_raised_to_the_clients_limit_first() -> None:
    """ConOffline-NoR seed 35 (5 MUs) had a Type 1 pair, client 3 and solution 70 at BS 1:
    its bid was capped at 17.37, 1.93 below its value, because the next step broke IR; capped
    there, its revivals ran out before BS 1 had room. Raised once to the price at which its
    utility reaches zero, it is held, and every capped bid sits at the client's limit."""
    problem = small_market("conoffline-nor", 35, n_mus=5).offline_problem()
    matching = AscendingMatching(problem)
    matching.run()
    result = matching.result()
    assert find_blocking_pairs(problem, result, prices="grid") == []
    capped = np.flatnonzero(matching.capped)
    assert capped.size
    above = matching.bids[capped] + 1e-6 * matching.step[capped]
    assert not matching.acceptable(capped, np.minimum(above, problem.sol_value[capped])).any()


def test_capping_at_the_rejected_bid_leaves_blocking_pairs(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """Not vacuous: with the old rule (a blocked bid capped where it was rejected, not raised
    to the client's limit) the grid check finds blocking pairs, and Type 1 at seed 35."""
    numpy_only(monkeypatch)

    def capped_where_rejected(s, bid, raised, state, sols, terms):  # type: ignore[no-untyped-def]
        accepted = matching._acceptable_at(
            sols.value[s], raised, sols.presence[s], state.volunteer_rate[sols.bs[s]],
            sols.threshold[s], sols.risk_limit[s], terms.penalty_client_ratio,
            terms.penalty_bs_ratio, terms.risk_on)
        return raised if accepted else bid

    monkeypatch.setattr(matching, "_highest_acceptable_bid", capped_where_rejected)
    problem = small_market("conoffline-nor", 35, n_mus=5).offline_problem()
    pairs = find_blocking_pairs(problem, run_matching(problem), prices="grid")
    assert (3, 70, 1, 1) in [(p.client, p.solution, p.bs, p.kind) for p in pairs]
    blocked = 0
    for seed in range(10):
        problem = small_market("hybrid", seed).offline_problem()
        blocked += bool(find_blocking_pairs(problem, run_matching(problem), prices="grid"))
    assert blocked >= 5


@pytest.mark.parametrize("mechanism", ["hybrid", "frbank-nor"])
def test_stable_up_to_the_bid_step_below_the_grid(mechanism: str) -> None:
    """Below the final bids (any price from the reserve price, Def. 7/8) a pair may still block,
    but only at prices the auction stepped over: its discount is under one Delta p, so the
    largest discount falls with the step (docs/model.md, Stability; the whole curve is
    ``isac-market experiment stability``)."""
    largest = []
    for fraction in (0.2, 0.025):
        discounts = []
        for seed in range(20):
            problem = small_market(mechanism, seed, n_mus=3 + seed % 7,
                                   bid_increment_fraction=fraction,
                                   bid_increment=2.5 * fraction).offline_problem()
            result = run_matching(problem)
            step = problem.bid_steps()
            for pair in find_blocking_pairs(problem, result, prices="any"):
                assert pair.discount * problem.sol_value[pair.solution] <= \
                    step[pair.solution] + 1e-8 * problem.sol_value[pair.solution], (seed, pair)
                assert pair.price < result.final_bids[pair.solution]
            discounts.append(largest_blocking_discount(problem, result))
        largest.append(max(discounts))
    assert 0 < largest[1] < 0.5 * largest[0], largest
    # not vacuous: a client unmatched, its final bid put two steps above its value (beyond its
    # limit), blocks more than a step below that bid
    problem = small_market(mechanism, 0).offline_problem()
    result = run_matching(problem)
    step = problem.bid_steps()
    held = result.client_solution
    client = int(np.flatnonzero(held >= 0)[0])
    solution = int(held[client])
    solutions, bids = held.copy(), result.final_bids.copy()
    solutions[client] = -1
    bids[solution] = problem.sol_value[solution] + 2 * step[solution]
    broken = dataclasses.replace(result, client_solution=solutions, final_bids=bids)
    pair = next(p for p in find_blocking_pairs(problem, broken, prices="any")
                if p.solution == solution)
    assert pair.discount * problem.sol_value[solution] > 1.5 * step[solution]


def test_finder_refuses_an_unknown_price_range() -> None:
    problem = small_market("hybrid", 2, n_mus=5).offline_problem()
    with pytest.raises(ValueError, match="prices must be one of"):
        find_blocking_pairs(problem, run_matching(problem), prices="all")  # type: ignore[arg-type]


def test_held_client_returns_to_a_revived_solution_it_prefers() -> None:
    """Seed 7: a held client's preferred solution at the same BS was capped; once the BS has
    room it proposes it again from its held contract, and no blocking pair remains."""
    problem = small_market("hybrid", 7, n_mus=3 + 7 % 7).offline_problem()
    matching = AscendingMatching(problem)
    moves = []
    while not matching.finished:
        before, capped = matching.held.copy(), matching.capped.copy()
        matching.play_round(matching.rule_proposals())
        moved = np.flatnonzero((before >= 0) & (matching.held >= 0) & (matching.held != before))
        moves += [(int(c), int(before[c]), int(matching.held[c]), bool(capped[matching.held[c]]))
                  for c in moved]
    assert (2, 49, 53, True) in moves  # both at BS 0: the knapsack kept one of the two
    assert problem.sol_bs[49] == problem.sol_bs[53]
    result = matching.result()
    assert result.converged
    assert find_blocking_pairs(problem, result, prices="grid") == []


def test_held_client_moving_to_another_bs_releases_its_former_bs() -> None:
    """Seed 26: client 10 moves from solution 179 to 186 at another BS; its former BS learns it (a
    new tentative set, one release exchange) and holds it no more."""
    problem = small_market("hybrid", 26, n_mus=3 + 26 % 7).offline_problem()
    matching = AscendingMatching(problem)
    former = int(problem.sol_bs[179])
    assert former != problem.sol_bs[186]
    while not matching.finished:
        before = (matching.held[10], matching.bs_version[former], matching.n_displacements)
        matching.play_round(matching.rule_proposals())
        if before[0] == 179 and matching.held[10] == 186:
            break
    else:
        raise AssertionError("client 10 never moved from 179 to 186")
    assert matching.bs_version[former] > before[1]
    assert matching.n_displacements >= before[2] + 1
    assert 179 not in matching.held


@pytest.mark.parametrize("seed", [0, 324])
def test_brute_force_finds_a_blocking_pair_it_should(seed: int) -> None:
    """The finder is not vacuous: unmatching a contracted client frees exactly the room its
    solution needs, so (client, solution) becomes a Type 2 blocking pair."""
    problem = small_market("hybrid", seed, n_mus=3 + seed % 7).offline_problem()
    result = run_matching(problem)
    client = int(np.flatnonzero(result.client_solution >= 0)[0])
    solution = int(result.client_solution[client])
    solutions = result.client_solution.copy()
    payments = result.client_payment.copy()
    solutions[client], payments[client] = -1, 0.0
    broken = dataclasses.replace(result, client_solution=solutions, client_payment=payments)
    for type1 in (True, False):
        pairs = find_blocking_pairs(problem, broken, type1=type1)
        assert (client, solution, int(problem.sol_bs[solution]), 2) in [
            (p.client, p.solution, p.bs, p.kind) for p in pairs]


def test_signing_is_reported_when_round_limit_hits() -> None:
    market = ime.make_market("frbank", n_mus=30, n_transactions=1, seed=2,
                             market_overrides={"max_rounds": 3})
    signing = market.sign()
    assert signing.rounds == 3 and not signing.converged
    assert market.run().summary()["signing_converged"] == 0.0


def test_eua_market(eua_dir) -> None:  # type: ignore[no-untyped-def]
    market = ime.make_market("frbank", scenario="eua-melbourne", n_transactions=2, seed=0,
                             eua_directory=eua_dir)
    assert (market.scenario.n_bss, market.scenario.n_mus, market.scenario.n_targets) == (
        11, 140, 28)
    span = np.ptp(market.scenario.mu_xy_m, axis=0)
    assert np.all((span > 500) & (span < 5000))  # Melbourne CBD, in metres
    market.run()
    check_episode(market)


def test_missing_numba_is_announced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without numba the market warns that it runs its slower numpy loops and how to compile
    them; choosing the numpy loops with ISAC_MARKET_ENV_JIT=0 is silent."""
    monkeypatch.setitem(sys.modules, "numba", None)  # ``import numba`` raises ImportError
    monkeypatch.delenv("ISAC_MARKET_ENV_JIT", raising=False)
    with pytest.warns(ime.PerformanceWarning, match=r"isac-market-env\[fast\]"):
        assert numba_jit() is None
    monkeypatch.setenv("ISAC_MARKET_ENV_JIT", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert numba_jit() is None


@pytest.mark.parametrize(("mechanism", "n_mus", "seed"),
                         [("frbank", 40, 4), ("hybrido", 30, 1), ("conoffline-nor", 30, 2)])
def test_results_do_not_depend_on_numba(mechanism: str, n_mus: int, seed: int,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled matching and knapsack (``fast`` extra) reproduce the numpy ones bit for bit."""
    pytest.importorskip("numba")
    assert load_compiled_matching()

    def episode() -> object:
        result = ime.simulate(mechanism, n_mus=n_mus, n_transactions=3, seed=seed)
        return without_runtimes(result.to_dict())

    compiled = episode()
    numpy_only(monkeypatch)
    assert episode() == compiled


@pytest.mark.parametrize(("max_revivals", "seed"), [(0, 3), (1, 3), (2, 5), (10, 7)])
def test_compiled_proposals_keep_their_bookkeeping(max_revivals: int, seed: int) -> None:
    """Round by round, the compiled proposals are the numpy ones, every client's ``revivable``
    counts its capped solutions with revivals left (a held client without any is skipped), and
    its ``live`` solutions include every one it may still propose."""
    pytest.importorskip("numba")
    assert load_compiled_matching()
    market = small_market("frbank", seed, n_mus=30)
    problem = dataclasses.replace(market.offline_problem(), max_revivals=max_revivals)
    rounds = AscendingMatching(problem, market.volunteer_model())
    clients = problem.sol_client
    capped_seen = 0
    while not rounds.finished:
        expected = rounds._rule_proposals_with_numpy()
        proposals = rounds.rule_proposals()
        assert np.array_equal(proposals, expected)
        open_ = rounds.capped & (rounds.revivals < max_revivals)
        assert np.array_equal(rounds.revivable, np.bincount(clients[open_],
                                                            minlength=problem.n_clients))
        for client in range(problem.n_clients):
            start = rounds.client_start[client]
            live = rounds.live[start:start + rounds.live_count[client]]
            assert np.all(clients[live] == client) and np.all(np.diff(live) > 0)
            may_propose = np.flatnonzero((rounds.alive | open_) & (clients == client))
            assert np.isin(may_propose, live).all()
        capped_seen = max(capped_seen, int(rounds.capped.sum()))
        rounds.play_round(proposals)
    assert capped_seen > 0 and rounds.converged


def test_knapsack_node_limit_bounds_every_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    """At a 1-node limit most BS selections get HiGHS's selection; ``milp_calls`` counts them,
    the episode stays valid, and the compiled path (which hands those selections back to numpy,
    and proves most of them without calling HiGHS) gives the numpy path's records, where
    every one of them is a HiGHS call."""
    highs_calls = []
    real_milp = knapsack._milp
    monkeypatch.setattr(knapsack, "_milp",
                        lambda *args, **kw: highs_calls.append(1) or real_milp(*args, **kw))

    def episode(limit: int) -> tuple[object, int, int]:
        market = ime.make_market("hybrido", n_mus=30, n_transactions=3, seed=1,
                                 market_overrides={"knapsack_node_limit": limit})
        highs_calls.clear()
        signing = market.sign()
        signing_highs_calls = len(highs_calls)
        assert signing_highs_calls <= signing.milp_calls
        market.run()
        check_episode(market)
        return without_runtimes(market.result().to_dict()), signing.milp_calls, signing_highs_calls

    _, default_signing_calls, _ = episode(DEFAULT_NODE_LIMIT)
    tight = episode(1)
    assert tight[1] > 10 * max(default_signing_calls, 1)
    compiled = knapsack.compiled_solver() is not None
    numpy_only(monkeypatch)
    records, milp_calls, numpy_highs_calls = episode(1)
    assert (records, milp_calls) == tight[:2]
    assert numpy_highs_calls == milp_calls
    if compiled:  # the proofs took most of them (all 26 when written)
        assert tight[2] < milp_calls / 2


def test_compilation_happens_before_any_timed_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a market compiles (or loads) numba's loops, so RT never includes compilation."""
    pytest.importorskip("numba")
    monkeypatch.setattr(matching, "_KERNELS", [])  # as in a fresh process
    monkeypatch.setattr(volunteers, "_KERNEL", [])
    monkeypatch.setattr(typed_knapsack, "_KERNEL", [])
    monkeypatch.setattr(typed_knapsack, "_GENERAL_KERNEL", [])
    monkeypatch.setattr(typed_knapsack, "_COUNT_KERNEL", [])
    market = small_market()
    assert matching._KERNELS and matching._KERNELS[0] is not None
    volunteer_kernels = volunteers._KERNEL[0]
    assert volunteer_kernels is not None
    kernels = [matching._answer_kernel, matching._proposals_kernel, matching._raise_kernel,
               knapsack._KERNEL[0], volunteer_kernels.cases, volunteer_kernels.expected,
               volunteers._overloadable_kernel,
               typed_knapsack._KERNEL[0], typed_knapsack._GENERAL_KERNEL[0],
               typed_knapsack._COUNT_KERNEL[0]]
    compiled = [len(kernel.signatures) for kernel in kernels]
    rounds = matching.AscendingMatching(market.offline_problem(), market.volunteer_model())
    for _ in range(3):  # round by round, as Bidding-v0 plays them: the Python-level calls
        rounds.play_round(rounds.rule_proposals())
    market.run()
    assert [len(kernel.signatures) for kernel in kernels] == compiled
    assert volunteers._KERNEL and volunteers._KERNEL[0] is not None
    assert typed_knapsack._KERNEL and typed_knapsack._KERNEL[0] is not None
    assert typed_knapsack._GENERAL_KERNEL and typed_knapsack._GENERAL_KERNEL[0] is not None


@pytest.mark.parametrize("mechanism", ["frbank", "cononline", "hybrid", "conoffline-nor"])
@pytest.mark.parametrize("seed", [0, 1])
def test_driver_with_the_rule_decisions_is_simulate(mechanism: str, seed: int) -> None:
    """The episode driver paused at a controlled client's every decision and answered with
    the rule's choice plays ``simulate``'s episode bit for bit; a client that always passes
    signs nothing and the market keeps its rules."""
    from isac_market_env.market.driver import EpisodeDriver

    reference = ime.simulate(mechanism, n_mus=12, n_transactions=3, seed=seed)
    driver = EpisodeDriver(ime.make_market(mechanism, n_mus=12, n_transactions=3, seed=seed),
                           controlled_client=2)
    decisions = 0
    while driver.advance():
        offer = driver.offer()
        assert offer.proposable.any() and offer.max_rounds > 0
        driver.decide(offer.rule_choice)
        decisions += 1
    assert decisions > 0 and driver.done
    ours = driver.market.result()
    assert [tx.social_welfare for tx in ours.transactions] == [
        tx.social_welfare for tx in reference.transactions]
    assert np.array_equal(ours.signing.contracts.pay, reference.signing.contracts.pay)
    assert len(driver.take_completed()) == 3 and driver.take_completed() == []
    passing = EpisodeDriver(ime.make_market(mechanism, n_mus=12, n_transactions=3, seed=seed),
                            controlled_client=2)
    while passing.advance():
        passing.decide(None)
    assert 2 not in passing.market.contracts.client
    check_episode(passing.market)


@pytest.mark.parametrize("mechanism", ["frbank", "cononline", "hybrid", "hybrido",
                                       "frbank-nor", "hybrido-nor"])
def test_online_matchings_have_no_blocking_pair_on_the_bid_grid(mechanism: str) -> None:
    """onEBW2M (Def. 11, 12): every transaction's online matching, brute-forced on small
    markets, has no blocking pair at any price at or above its final bids (realised values,
    residual supply)."""
    checked = broken_found = 0
    for seed in range(12):
        market = small_market(mechanism, seed, n_mus=5, n_transactions=3)
        market.sign()
        for _ in range(market.config.n_transactions):
            pending = market.prepare_transaction()
            problem = pending.online_problem
            if problem is None:
                market.complete_transaction(pending, market.run_online(pending))
                continue
            result = run_matching(problem)
            assert result.converged
            assert find_blocking_pairs(problem, result, prices="grid") == [], (seed,
                                                                                pending.index)
            checked += 1
            held = result.client_solution
            matched = np.flatnonzero(held >= 0)
            surplus = matched[problem.sol_value[held[matched]]
                              - result.client_payment[matched] > 1e-6]
            if len(surplus):
                # not vacuous: unmatching a client leaves it and the freed room blocking
                solutions = held.copy()
                solutions[surplus[0]] = -1
                broken = dataclasses.replace(result, client_solution=solutions)
                assert any(pair.client == surplus[0]
                           for pair in find_blocking_pairs(problem, broken)), seed
                broken_found += 1
            market.complete_transaction(pending, market.online_outcome(pending, result))
    assert checked >= 12 and broken_found >= 1


@pytest.mark.parametrize("mechanism", ["frbank-nor", "hybrido-nor", "conoffline-nor"])
def test_strategic_breach_follows_the_realised_utility(mechanism: str) -> None:
    """Sec. V, footnote 7: with Rayleigh fading a present client breaks its contract exactly
    when being served would cost it more than PelU (V_realised - Pay < -PelU); it pays PelU,
    its execution counts in DRLC and it may buy online. Off, nobody breaches."""
    breaches = 0
    for seed in range(4):
        result = {}
        for breach in (True, False):
            market = ime.make_market(mechanism, n_mus=40, n_transactions=4, seed=seed,
                                     physics_overrides={"rayleigh_fading": True},
                                     market_overrides={"strategic_breach": breach})
            result[breach] = market.run()
            check_episode(market)
        market_c = market.contracts
        streams = ime.market.market.EpisodeStreams.from_seed(seed)
        for tx, tx_off in zip(result[True].transactions, result[False].transactions,
                              strict=True):
            fading = streams.fading.exponential(1.0, market.scenario.n_mus)
            present = np.flatnonzero(market.book.client_present(tx.mu_present)[market_c.client])
            realised = market.book.realised_values(market_c.solution[present], tx.mu_present,
                                                   fading)
            loses = present[realised - market_c.pay[present] < -market_c.penalty_client[present]]
            assert np.array_equal(tx.contract_breached, loses)
            assert np.all(tx.client_paid[market_c.client[loses]]
                          >= market_c.penalty_client[loses] - 1e-12)
            assert tx.contracts_failed == (len(tx.contract_absent) + len(loses)
                                           + len(tx.contract_volunteered))
            assert len(tx_off.contract_breached) == 0
            breaches += len(loses)
    assert breaches > 0
    # not vacuous: an episode played without breach fails the episode check made as if the
    # clients had been free to breach (a served contract cost its client more than PelU)
    market = ime.make_market(mechanism, n_mus=40, n_transactions=4, seed=1,
                             physics_overrides={"rayleigh_fading": True},
                             market_overrides={"strategic_breach": False})
    market.run()
    market.config = dataclasses.replace(
        market.config, market=dataclasses.replace(market.config.market, strategic_breach=True))
    with pytest.raises(AssertionError):
        check_episode(market)
