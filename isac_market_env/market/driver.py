"""The episode driver: plays a market's episode and pauses where a controlled client decides.

An episode is the signing phase (offRFW2M) and the practical transactions (volunteers, then
onEBW2M for the unmet demand). Every client follows its mechanism's rule except the controlled
one: in each matching round (signing or online) in which it is free and has a solution it may
propose, the driver stops, shows its offer (``ClientOffer``) and the rule's choice, and plays
the round with the decision it is given (``decide``). With ``all_clients=True`` every client is
controlled: the driver stops at the start of every matching round, shows the whole round at
once (``RoundView``, arrays over the matching's solutions) and plays it with every client's
proposal (``play``). With no controlled client it plays the whole episode by the rule
(``Market.run`` and ``simulate`` go through here); with the rule's decisions every time, each
mode plays the same episode, bit for bit.
"""

from __future__ import annotations

import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from isac_market_env.market.market import Market, OnlineOutcome, PendingTransaction
from isac_market_env.market.records import EpisodeResult, TransactionRecord
from isac_market_env.mechanisms.matching import AscendingMatching
from isac_market_env.validation import check_integer


class SequentialTransactionsWarning(UserWarning):
    """``workers`` > 1 asked for a mechanism whose transactions run one after the other."""


@dataclass(frozen=True, eq=False)
class RoundView:
    """One matching round as every client sees it, over the matching's solutions ``s``.

    ``book_solution[s]``: the solution's index in the client book; ``decides[s]``: its client
    may propose it this round (a free client: any live or revived solution within the BS's
    supply; a tentatively held client: a revived solution, the switch the rule also allows);
    ``rule_proposals``: the solutions the rule proposes (one per proposing client, ascending).
    Prices and values are the matching's (online: realised values).
    """

    phase: str  # "signing" or "online"
    round: int
    max_rounds: int
    book_solution: NDArray[np.int64]
    sol_client: NDArray[np.int64]
    decides: NDArray[np.bool_]
    value: NDArray[np.float64]
    reserve_price: NDArray[np.float64]
    rule_bid: NDArray[np.float64]
    utility_at_rule_bid: NDArray[np.float64]
    bs_volunteer_rate: NDArray[np.float64]  # the E[v] it is valued at (own if held, else BS's)
    rule_proposals: NDArray[np.int64]
    held: NDArray[np.int64]  # per client: the solution it is tentatively held on, or -1


@dataclass(frozen=True)
class ClientOffer:
    """What a controlled client sees when it decides, per solution of its own (the book's
    order). ``in_matching``: the solution is offered in this matching (online, only those
    with a BS that has supply left); ``proposable``: it may be proposed this round. Prices
    and values are the matching's (online: realised values); zero where not in the matching.
    """

    phase: str  # "signing" or "online"
    round: int
    max_rounds: int
    in_matching: NDArray[np.bool_]
    proposable: NDArray[np.bool_]
    value: NDArray[np.float64]
    reserve_price: NDArray[np.float64]
    rule_bid: NDArray[np.float64]
    utility_at_rule_bid: NDArray[np.float64]
    bs_volunteer_rate: NDArray[np.float64]  # the E[v] it is valued at (own if held, else BS's)
    rule_choice: int | None  # the solution (position) the rule would propose, or None


class EpisodeDriver:
    """One episode of ``market``, paused at ``controlled_client``'s decisions (None: none), or
    at every matching round with ``all_clients=True``.

    ``advance()`` plays rule rounds and whole transactions until a controlled client must
    decide (True) or the episode is over (False); ``offer()`` and ``decide()`` answer it for
    one client, ``round_view()`` and ``play()`` for all of them.
    ``take_completed()`` hands over the transactions completed since its last call.
    """

    def __init__(self, market: Market, controlled_client: int | None = None,
                 all_clients: bool = False) -> None:
        if all_clients and controlled_client is not None:
            raise ValueError("give controlled_client or all_clients=True, not both")
        self.market = market
        self.all_clients = all_clients
        self.client = -1 if all_clients else controlled_client
        book = market.book
        self.client_solutions = (np.zeros(0, dtype=np.int64) if controlled_client is None
                                 else np.flatnonzero(book.sol_client == controlled_client))
        self.phase = "signing"
        self.matching: AscendingMatching | None = None
        self.pending: PendingTransaction | None = None
        self._completed: list[TransactionRecord] = []
        self._in_problem = self.client_solutions.copy()  # book solution -> problem index or -1
        self._round_decides: NDArray[np.bool_] | None = None  # this round's, once advance saw it
        if self.client is None:
            return
        if market.spec.offline:
            volunteers = market.volunteer_model() if market.spec.overbooking else None
            self.matching = AscendingMatching(market.offline_problem(), volunteers)
        else:
            market.sign()
            self._next_transaction()

    # ------------------------------------------------------------------ whole episode
    def run(self, workers: int = 1) -> EpisodeResult:
        """Play the rest of the episode by the rule and return its result.

        With ``workers`` > 1 (no controlled client) the signing's rule proposals and the BSs'
        selections are made on that many threads (``Market.sign``), and the transactions'
        online steps run on that many threads while this one prepares and completes them in
        order (the compiled matching releases the GIL): the records are the serial run's, bit
        for bit, except the wall-clock RT (each transaction's own time, as before). A
        mechanism whose transactions draw from one stream in order
        (``MechanismSpec.concurrent_transactions``: ``random``, ``cooperative``) runs them one
        after the other and warns (``SequentialTransactionsWarning``)."""
        workers = check_integer("workers", workers, 1)
        market = self.market
        if self.client is None:
            if market.signing is None:
                market.sign(threads=workers)
            if workers > 1 and not market.done:
                self._run_concurrently(workers)
            while not market.done:
                market.transact()
            return market.result()
        if workers > 1:
            raise ValueError("workers > 1 plays whole transactions at once: it needs a driver "
                             "without controlled clients")
        while self.advance():
            self.decide(self.offer().rule_choice)
        return market.result()

    def _run_concurrently(self, workers: int) -> None:
        """The remaining transactions, their online steps on ``workers`` threads: a window of
        ``2 * workers`` prepared transactions in flight, completed in order."""
        market = self.market
        if not market.spec.concurrent_transactions:
            warnings.warn(f"{market.spec.name}'s transactions draw from one random stream in "
                          f"order: they run one after the other, not on {workers} workers",
                          SequentialTransactionsWarning, stacklevel=4)
            return
        window: deque[tuple[PendingTransaction, Future[OnlineOutcome]]] = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="isac-transaction") as pool:
            while True:
                while len(window) < 2 * workers and not market.all_prepared:
                    pending = market.prepare_transaction()
                    window.append((pending, pool.submit(market.run_online, pending)))
                if not window:
                    return
                pending, future = window.popleft()
                market.complete_transaction(pending, future.result())

    @property
    def done(self) -> bool:
        return self.market.done and self.matching is None

    # ------------------------------------------------------------------ decision points
    def advance(self) -> bool:
        """Play until the controlled client must decide (True) or the episode ends (False)."""
        market = self.market
        if self.client is None:
            self.run()
            return False
        while True:
            m = self.matching
            if m is not None:
                if not self.all_clients:
                    m.run_rounds(stop_client=self.client)
                elif not m.finished:
                    self._round_decides = self._decides(m)
                    if not self._round_decides.any():  # nobody may propose: the round ends it
                        m.play_round(np.zeros(0, dtype=np.int64))
                if not m.finished:
                    return True
                self._finish_matching()
                continue
            if market.done:
                return False
            self._next_transaction()

    def proposable(self) -> NDArray[np.bool_]:
        """Per solution of the client: it may propose it this round (live or revived)."""
        out = np.zeros(len(self.client_solutions), dtype=bool)
        m = self.matching
        if m is None or m.finished or self.client is None or m.held[self.client] >= 0:
            return out
        valid = self._in_problem >= 0
        out[valid] = m.proposable(self._in_problem[valid])
        return out

    def offer(self) -> ClientOffer:
        """The controlled client's view of this round (all zeros between matchings)."""
        n = len(self.client_solutions)
        value, reserve, bid, utility, rate = (np.zeros(n) for _ in range(5))
        m = self.matching
        live = m is not None and not m.finished
        valid = self._in_problem >= 0 if live else np.zeros(n, dtype=bool)
        if m is not None and live:
            s = self._in_problem[valid]
            value[valid] = m.problem.sol_value[s]
            reserve[valid] = m.problem.sol_start_bid[s]
            bid[valid] = m.bids[s]
            utility[valid] = m.utility(s, m.bids[s])
            rate[valid] = m.solution_rate(s)
        return ClientOffer(self.phase, m.rounds if m is not None else 0,
                           m.problem.max_rounds if m is not None else 0, valid,
                           self.proposable(), value, reserve, bid, utility, rate,
                           self._rule_choice())

    def decide(self, choice: int | None, price: float | None = None) -> None:
        """Play this round with the controlled client proposing its solution ``choice`` (a
        position among its solutions) at ``price`` (None: the rule's current bid), or passing
        (None, or a solution it may not propose now); everyone else proposes by the rule."""
        m = self.matching
        if m is None or m.finished:
            return
        proposals = m.rule_proposals()
        others = proposals[m.problem.sol_client[proposals] != self.client]
        if choice is not None and self.proposable()[choice]:
            sol = int(self._in_problem[choice])
            pay = m.bids[sol] if price is None else price
            at = int(np.searchsorted(others, sol))  # proposals go by client, hence by solution
            m.play_round(np.insert(others, at, sol), np.insert(m.bids[others], at, pay))
        else:
            m.play_round(others)

    def round_view(self) -> RoundView | None:
        """This round for every client at once (None between matchings); ``all_clients``."""
        m = self.matching
        if m is None or m.finished:
            return None
        p = m.problem
        every = np.arange(len(p.sol_client))
        decides = self._decides(m) if self._round_decides is None else self._round_decides
        book_solution = (every if self.phase == "signing"
                         else np.asarray(self.pending.online_solutions
                                         if self.pending is not None else every))
        return RoundView(self.phase, m.rounds, p.max_rounds, book_solution, p.sol_client,
                         decides, p.sol_value, p.sol_start_bid, m.bids.copy(),
                         m.utility(every, m.bids), m.solution_rate(every),
                         m.rule_proposals(), m.held.copy())

    @staticmethod
    def _decides(m: AscendingMatching) -> NDArray[np.bool_]:
        """Per matching solution: its client may propose it this round (``RoundView``)."""
        every = np.arange(len(m.problem.sol_client))
        holding = m.held[m.problem.sol_client]
        return m.proposable(every) & ((holding < 0) | (m.revived(every) & (holding != every)))

    def play(self, proposals: NDArray[np.int64], pays: NDArray[np.float64]) -> None:
        """Play this round with ``proposals`` (matching solutions, at most one per client, in
        ascending order) at ``pays``; no proposals ends the matching (``all_clients``).

        The auction stays ascending whatever the clients bid: a price below a solution's
        current bid is that bid, and a price above it is a jump bid that becomes the
        solution's bid; a rejection then raises it by Delta p as the rule's would. So every
        rejection raises a price and the matching ends (a price it may repeat could be
        rejected for ever). At the rule's bids this is the rule's round."""
        m = self.matching
        if m is None or m.finished:
            raise RuntimeError("no matching round is waiting for proposals")
        self._round_decides = None
        proposals = np.asarray(proposals, dtype=np.int64)
        m.bids[proposals] = np.maximum(np.asarray(pays, dtype=np.float64), m.bids[proposals])
        m.play_round(proposals)

    def tentative_bs(self) -> NDArray[np.int64] | None:
        """During the signing phase, per client the BS tentatively holding its proposal (-1:
        none); None otherwise (the offline problem's clients are the book's)."""
        m = self.matching
        if m is None or m.finished or self.phase != "signing":
            return None
        return np.where(m.held >= 0, m.problem.sol_bs[m.held], -1)

    def take_completed(self) -> list[TransactionRecord]:
        """The transactions completed since the last call (oldest first)."""
        done, self._completed = self._completed, []
        return done

    # ------------------------------------------------------------------ internals
    def _rule_choice(self) -> int | None:
        m = self.matching
        if m is None or m.finished:
            return None
        proposals = m.rule_proposals()
        mine = proposals[m.problem.sol_client[proposals] == self.client]
        if mine.size == 0:
            return None
        hit = np.flatnonzero(self._in_problem == mine[0])
        return int(hit[0]) if hit.size else None

    def _finish_matching(self) -> None:
        market = self.market
        assert self.matching is not None
        result = self.matching.result()
        self.matching = None
        if self.phase == "signing":
            market.record_signing(result)
            self.phase = "online"
            if not market.done:
                self._next_transaction()
            return
        assert self.pending is not None
        self._complete(market.online_outcome(self.pending, result))

    def _next_transaction(self) -> None:
        market = self.market
        self.phase = "online"
        self.pending = market.prepare_transaction()
        problem = self.pending.online_problem
        if problem is not None and (self.all_clients or np.any(problem.sol_client == self.client)):
            self.matching = AscendingMatching(problem)
            online_sols = self.pending.online_solutions
            assert online_sols is not None
            book_to_problem = {int(b): k for k, b in enumerate(online_sols)}
            self._in_problem = np.array([book_to_problem.get(int(b), -1)
                                         for b in self.client_solutions], dtype=np.int64)
            return
        self._complete(market.run_online(self.pending))

    def _complete(self, outcome: OnlineOutcome) -> None:
        assert self.pending is not None
        self._completed.append(self.market.complete_transaction(self.pending, outcome))
        self.pending = None
