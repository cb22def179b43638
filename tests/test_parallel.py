"""Transactions on several threads (``simulate(..., workers=N)``): the serial run's records."""

from __future__ import annotations

import multiprocessing
import os
import threading
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import numpy_only, without_runtimes

import isac_market_env as ime
from isac_market_env.market.driver import EpisodeDriver
from isac_market_env.market.market import Market
from isac_market_env.market.variants import MECHANISMS
from isac_market_env.mechanisms import _jit, matching
from isac_market_env.mechanisms._highs import highs_solve


def episode(mechanism: str, workers: int, **kwargs: object) -> object:
    kwargs = {"n_mus": 16, "n_transactions": 5, "seed": 3, **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ime.SequentialTransactionsWarning)
        result = ime.simulate(mechanism, workers=workers, **kwargs)  # type: ignore[arg-type]
    return without_runtimes(result.to_dict())


@pytest.mark.parametrize("mechanism", list(MECHANISMS))
def test_every_mechanism_gives_the_serial_records_on_threads(mechanism: str) -> None:
    """Every record of every transaction (allocations, payments, overhead draws, volunteers,
    bounds) is the serial run's, bit for bit, on 2 and 3 workers (16 MUs: no HiGHS solve
    reaches its time limit, the one documented exception to reproducibility)."""
    serial = episode(mechanism, 1)
    assert episode(mechanism, 2) == serial
    assert episode(mechanism, 3) == serial


def test_parallel_episode_matches_on_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    numpy_only(monkeypatch)
    assert episode("frbank", 2, n_mus=20) == episode("frbank", 1, n_mus=20)


def test_eua_episode_on_two_workers_is_the_serial_one(eua_dir: Path) -> None:
    def run(workers: int) -> object:
        return episode("frbank", workers, scenario="eua-melbourne", n_mus=None,
                       n_transactions=12, seed=1, eua_directory=eua_dir)

    assert run(2) == run(1)


def test_a_partly_played_market_finishes_on_threads() -> None:
    """``Market.run(workers)`` after transactions played one by one continues where they
    stopped (the same episode as the serial run)."""
    market = ime.make_market("frbank", n_mus=30, n_transactions=7, seed=5)
    market.transact()
    market.transact()
    resumed = without_runtimes(market.run(workers=2).to_dict())
    assert resumed == without_runtimes(
        ime.make_market("frbank", n_mus=30, n_transactions=7, seed=5).run().to_dict())


@pytest.mark.parametrize("mechanism", ["random", "cooperative"])
def test_sequential_trades_say_they_run_one_after_the_other(mechanism: str) -> None:
    assert not ime.get_mechanism(mechanism).concurrent_transactions
    with pytest.warns(ime.SequentialTransactionsWarning, match="one after the other"):
        ime.simulate(mechanism, n_mus=15, n_transactions=2, seed=0, workers=2)


def test_the_iscc_market_says_its_rounds_run_in_order() -> None:
    with pytest.warns(ime.SequentialTransactionsWarning, match="one after the other"):
        ime.simulate("iscc-greedy", scenario="iscc-perception", n_mus=8, n_transactions=1,
                     workers=2)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_bad_worker_counts_are_refused(workers: object) -> None:
    with pytest.raises((TypeError, ValueError), match="workers"):
        ime.simulate("frbank", n_mus=10, n_transactions=1, workers=workers)  # type: ignore[arg-type]


def test_a_driver_with_a_controlled_client_refuses_workers() -> None:
    driver = EpisodeDriver(ime.make_market("frbank", n_mus=10, n_transactions=2),
                           controlled_client=0)
    with pytest.raises(ValueError, match="without controlled clients"):
        driver.run(workers=2)


def test_transactions_complete_in_order_only() -> None:
    market = ime.make_market("frbank", n_mus=15, n_transactions=3, seed=0)
    market.sign()
    first, second = market.prepare_transaction(), market.prepare_transaction()
    with pytest.raises(RuntimeError, match="out of order"):
        market.complete_transaction(second, market.run_online(second))
    market.complete_transaction(first, market.run_online(first))
    market.complete_transaction(second, market.run_online(second))
    assert [t.index for t in market.transactions] == [0, 1]


def test_overbooking_env_periods_are_the_same_on_threads() -> None:
    def rollout(workers: int) -> list[object]:
        env = gym.make("ISACMarket-Overbooking-v0", n_mus=30, n_periods=2,
                       transactions_per_period=6, workers=workers)
        obs, _ = env.reset(seed=2)
        out: list[object] = [obs.tolist()]
        for _ in range(2):
            obs, reward, *_, info = env.step(np.full(env.action_space.shape, 0.3, np.float32))
            out += [obs.tolist(), reward, info]
        return out

    assert rollout(2) == rollout(1)
    with pytest.raises(ValueError, match="workers"):
        gym.make("ISACMarket-Overbooking-v0", workers=0)


def test_concurrent_highs_calls_restore_stdout() -> None:
    """Threads entering and leaving highs_solve in any interleaving leave descriptor 1 on the
    original file (a per-call save/restore would save /dev/null as the 'original')."""
    before = os.fstat(1)
    barrier = threading.Barrier(4)

    def solve() -> None:
        barrier.wait()
        for _ in range(50):
            with highs_solve():
                pass

    threads = [threading.Thread(target=solve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.fstat(1)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def threaded_matching_or_skip(market: Market, threads: int) -> matching.AscendingMatching:
    m = matching.AscendingMatching(market.offline_problem(), market.volunteer_model(), threads)
    if m.threads != threads:
        pytest.skip("numba's threads are not available here (numba missing, or its "
                    "threading layer is not thread-safe)")
    return m


@pytest.mark.parametrize("threads", [2, 3])
def test_threaded_signing_proposals_are_the_serial_ones_round_by_round(threads: int) -> None:
    """The signing's rule proposals on several threads (``workers`` > 1) are the serial
    proposals, and leave the same state, in every round of a 60-MU signing; a whole signing
    on threads ends with the same contracts, prices and E[v] after as many rounds."""
    market = ime.make_market("frbank", n_mus=60, n_transactions=1, seed=4)
    threaded = threaded_matching_or_skip(market, threads)
    serial = matching.AscendingMatching(market.offline_problem(), market.volunteer_model())
    kernels = matching.compiled_kernels()
    assert kernels is not None
    while not serial.finished:
        mine = serial.state(serial._counters())
        copy = matching.MatchingState(*(a.copy() for a in mine))
        expected = kernels.proposals(mine, serial.solutions, serial.terms)
        got = matching._threaded_proposals_kernel(copy, serial.solutions, threaded.terms)
        np.testing.assert_array_equal(got, expected)
        for before, after in zip(copy, mine, strict=True):
            np.testing.assert_array_equal(before, after)  # live segments compacted alike
        serial.play_round(expected)
    assert serial.rounds > 100
    ours, reference = threaded.run(), serial.result()  # the threaded rule rounds
    for field in ("client_solution", "client_payment", "final_bids", "bs_volunteer_rate"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(reference, field))
    assert ours.rounds == reference.rounds


@pytest.mark.parametrize("threads", [2, 3])
def test_threaded_signing_answers_are_the_serial_ones_round_by_round(threads: int) -> None:
    """With threads the BSs' selections are made at once from the round's state, then the BSs
    answer in order; a BS that a client it held left for an earlier BS this round selects
    again. Every round of a 60-MU signing leaves the serial state, re-selections included."""
    market = ime.make_market("frbank", n_mus=60, n_transactions=1, seed=4)
    threaded = threaded_matching_or_skip(market, threads)
    serial = matching.AscendingMatching(market.offline_problem(), market.volunteer_model())
    sol_bs, sol_client = serial.problem.sol_bs, serial.problem.sol_client
    selected_again = 0  # answering BSs that a held client left for an earlier BS
    while not serial.finished:
        proposals = serial.rule_proposals()
        np.testing.assert_array_equal(threaded.rule_proposals(), proposals)
        held_before = serial.held.copy()
        serial.play_round(proposals)
        threaded.play_round(proposals)
        for mine, theirs in zip(serial.state(serial._counters()),
                                threaded.state(threaded._counters()), strict=True):
            np.testing.assert_array_equal(theirs, mine)
        answering = set(sol_bs[proposals].tolist())
        for s in proposals[held_before[sol_client[proposals]] >= 0]:
            left = sol_bs[held_before[sol_client[s]]]
            selected_again += (serial.held[sol_client[s]] == s and sol_bs[s] < left
                               and left in answering)
    assert threaded.finished and threaded.rounds == serial.rounds > 100
    assert selected_again > 0


def test_threads_stay_off_where_numba_threads_are_unsafe(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """numba's ``workqueue`` layer is not thread-safe, and GNU OpenMP's threads do not survive
    ``fork``: a matching asked for threads then plays on one (the same rounds)."""
    market = ime.make_market("frbank", n_mus=20, n_transactions=1, seed=0)
    threaded_matching_or_skip(market, 2)  # numba's threads have started in this process
    layer = dict(_jit._THREAD_LAYER)
    for started_by, name, allowed in [(os.getpid(), "workqueue", False),
                                      (os.getpid() + 1, "omp", False),
                                      (os.getpid(), "omp", True),
                                      (os.getpid() + 1, "tbb", True)]:
        monkeypatch.setattr(_jit, "_THREAD_LAYER", {"pid": started_by, "layer": name})
        assert _jit.threads_available() is allowed
        m = matching.AscendingMatching(market.offline_problem(), market.volunteer_model(), 2)
        assert m.threads == (2 if allowed else 1) and m.terms.threads == m.threads
    monkeypatch.setattr(_jit, "_THREAD_LAYER", layer)
    with multiprocessing.get_context("fork").Pool(1) as pool:  # a worker forked from here
        in_child = pool.apply(_jit.threads_available)
    assert in_child is (layer["layer"] == "tbb")
    with pytest.raises(ValueError, match="threads"):
        matching.AscendingMatching(market.offline_problem(), None, 0)
