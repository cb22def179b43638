"""Seed 002: cooperative matching of time-frequency blocks (docs/mechanisms.md, Seed 002).

Only the seed's system model survives in its file (Def. 1-2: blocks with a bandwidth, a start,
an end, a slot, a maximum power and a price, published before they start; demands with a
bandwidth, a slot, a power and a price; massive and small blocks; coalitions that share a
block's cost), so the rules here are ours:

* every BS publishes its residual supply of the transaction as blocks over the transaction's
  slot: one *massive* block (``massive_share`` of its bandwidth and power) and *small* blocks
  of ``small_block_hz`` (the rest, power pro rata), each priced at the reserve prices;
* a client buys a solution (BS, bandwidth, power) either by aggregating enough small blocks of
  that BS, paying their price, or by joining the *group* that buys the BS's massive block
  wholesale: the group pays the block's price, each member its own-use cost (reserve prices
  at its bandwidth and power) plus a share of the unused remainder proportional to that cost,
  i.e. price x own cost / the group's own costs (budget-balanced);
* the BS's own demand returning (the seed's primary user) preempts a block at a random time:
  every client on it is served only until then and pays pro rata;
* groups form by switches: clients in turn move to their best option (nothing, small blocks,
  or joining a group that has room) while that strictly pays; a massive block nobody has
  bought is offered to the best founding group (every member strictly better off; exact over
  subsets up to ``FOUNDING_BRUTE_FORCE_MAX`` interested clients, by iterated removal beyond).
  The outcome, when the switches stop, is Nash-stable with capacities: no client gains by a
  move of its own, and no set of clients gains by buying an unsold massive block together
  (for at most ``FOUNDING_BRUTE_FORCE_MAX`` interested clients per block).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from isac_market_env.mechanisms.deferred import TradeResult, elapsed_ms

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
FOUNDING_BRUTE_FORCE_MAX = 12
GAIN_TOLERANCE = 1e-9
NONE, SMALL, MASSIVE = 0, 1, 2


@dataclass(frozen=True)
class BlockTerms:
    """How a BS cuts its residual supply into blocks and how often its own demand returns."""

    massive_share: float
    small_block_hz: float
    primary_return_rate: float
    max_rounds: int


@dataclass(frozen=True, eq=False)
class Blocks:
    """The blocks every BS publishes for one transaction (arrays over blocks)."""

    bs: IntArray
    massive: NDArray[np.bool_]
    bandwidth_hz: FloatArray
    power_w: FloatArray
    price: FloatArray
    end: FloatArray  # when the BS's own demand takes it back (1: the whole slot)


@dataclass(frozen=True, eq=False)
class CooperativeResult(TradeResult):
    """A ``TradeResult`` with the blocks, which blocks each client holds, the groups and the
    fraction of the slot each served client is served (its solution's value and its payment
    scale with it)."""

    blocks: Blocks | None = None
    client_blocks: tuple[IntArray, ...] = ()
    group_block: IntArray | None = None  # per client: its massive block, or -1
    served_fraction: FloatArray | None = None


def publish_blocks(supply_bandwidth_hz: FloatArray, supply_power_w: FloatArray,
                   price_per_hz: float, price_per_w: float, terms: BlockTerms,
                   rng: np.random.Generator) -> Blocks:
    """Each BS's massive block and small blocks, their reserve prices and the BS's own demand's
    return (each block taken back at a uniform time with probability ``primary_return_rate``)."""
    bs, massive, bw, pw = [], [], [], []
    for j, (b, p) in enumerate(zip(supply_bandwidth_hz, supply_power_w, strict=True)):
        if b <= 0 or p <= 0:
            continue
        bs.append(j)
        massive.append(True)
        bw.append(terms.massive_share * b)
        pw.append(terms.massive_share * p)
        n_small = int(np.floor((1 - terms.massive_share) * b / terms.small_block_hz + 1e-9))
        for _ in range(n_small):
            bs.append(j)
            massive.append(False)
            bw.append(terms.small_block_hz)
            pw.append((1 - terms.massive_share) * p / n_small)
    bandwidth, power = np.asarray(bw, dtype=np.float64), np.asarray(pw, dtype=np.float64)
    returns = rng.random(len(bs)) < terms.primary_return_rate
    end = np.where(returns, rng.random(len(bs)), 1.0)
    return Blocks(np.asarray(bs, dtype=np.int64), np.asarray(massive, dtype=bool), bandwidth,
                  power, price_per_hz * bandwidth + price_per_w * power, end)


def expected_fraction(n_blocks: int, return_rate: float) -> float:
    """E[min of the ends of ``n_blocks`` blocks]: the expected share of the slot a client on
    them is served, (1 - (1 - r)^(k + 1)) / (r (k + 1))."""
    if return_rate == 0:
        return 1.0
    k = n_blocks
    return float((1 - (1 - return_rate) ** (k + 1)) / (return_rate * (k + 1)))


class _State:
    """Who holds what during the switches."""

    def __init__(self, n_clients: int, blocks: Blocks, n_bss: int) -> None:
        self.kind = np.zeros(n_clients, dtype=np.int64)
        self.solution = np.full(n_clients, -1, dtype=np.int64)
        self.small_held: list[list[int]] = [[] for _ in range(n_clients)]
        self.massive_of = {int(j): int(k) for k, j in enumerate(blocks.bs) if blocks.massive[k]}
        self.members: dict[int, set[int]] = {k: set() for k in self.massive_of.values()}
        self.free_small: list[list[int]] = [[] for _ in range(n_bss)]
        for k in np.flatnonzero(~blocks.massive):
            self.free_small[int(blocks.bs[k])].append(int(k))


def cooperative_trade(n_clients: int, sol_client: IntArray, sol_bs: IntArray,
                      sol_bandwidth_hz: FloatArray, sol_power_w: FloatArray,
                      sol_value: FloatArray, supply_bandwidth_hz: FloatArray,
                      supply_power_w: FloatArray, price_per_hz: float, price_per_w: float,
                      terms: BlockTerms, rng: np.random.Generator) -> CooperativeResult:
    """Cooperative block trading (module docstring). Decisions use the expected share of the
    slot served; values and payments are realised with the blocks' actual ends."""
    started = time.perf_counter()
    n_bss = len(supply_bandwidth_hz)
    blocks = publish_blocks(supply_bandwidth_hz, supply_power_w, price_per_hz, price_per_w,
                            terms, rng)
    state = _State(n_clients, blocks, n_bss)
    own_cost = price_per_hz * sol_bandwidth_hz + price_per_w * sol_power_w
    # a BS's small blocks are alike: their power and price per BS (0 where it has none)
    small_pw, small_price = np.zeros(n_bss), np.zeros(n_bss)
    for j, first in enumerate(state.free_small):
        if first:
            small_pw[j], small_price[j] = blocks.power_w[first[0]], blocks.price[first[0]]
    with np.errstate(divide="ignore", invalid="ignore"):
        n_small_needed = np.where(
            small_pw[sol_bs] > 0,
            np.maximum(np.ceil(sol_bandwidth_hz / terms.small_block_hz - 1e-9),
                       np.ceil(sol_power_w / small_pw[sol_bs] - 1e-9)), np.inf)
    massive_fraction = expected_fraction(1, terms.primary_return_rate)
    by_client = [np.flatnonzero(sol_client == i) for i in range(n_clients)]
    exchanges = 0

    def group_use(block: int, leaving: int = -1) -> tuple[float, float, float]:
        members = [m for m in state.members[block] if m != leaving]
        sols = state.solution[members] if members else np.zeros(0, dtype=np.int64)
        return (float(sol_bandwidth_hz[sols].sum()), float(sol_power_w[sols].sum()),
                float(own_cost[sols].sum()))

    def massive_pay(block: int, s: int, group_cost: float) -> float:
        return float(blocks.price[block] * own_cost[s] / (group_cost + own_cost[s]))

    def utility(i: int) -> float:
        s = int(state.solution[i])
        if state.kind[i] == NONE:
            return 0.0
        if state.kind[i] == SMALL:
            k = len(state.small_held[i])
            return (sol_value[s] - k * small_price[sol_bs[s]]) * expected_fraction(
                k, terms.primary_return_rate)
        block = state.massive_of[int(sol_bs[s])]
        _, _, cost = group_use(block, leaving=i)
        return (sol_value[s] - massive_pay(block, s, cost)) * massive_fraction

    def best_move(i: int) -> tuple[float, int, int]:
        """(utility, kind, solution) of i's best option, others' holdings as they are."""
        best = (0.0, NONE, -1)
        for s in by_client[i].tolist():
            j = int(sol_bs[s])
            need = n_small_needed[s]
            mine = len(state.small_held[i]) if (state.kind[i] == SMALL
                                                and sol_bs[state.solution[i]] == j) else 0
            if np.isfinite(need) and len(state.free_small[j]) + mine >= need:
                k = int(need)
                u = (sol_value[s] - k * small_price[j]) * expected_fraction(
                    k, terms.primary_return_rate)
                if u > best[0] + GAIN_TOLERANCE:
                    best = (u, SMALL, s)
            block = state.massive_of.get(j)
            if block is None:
                continue
            b, p, cost = group_use(block, leaving=i)
            if (b + sol_bandwidth_hz[s] <= blocks.bandwidth_hz[block] * (1 + 1e-12)
                    and p + sol_power_w[s] <= blocks.power_w[block] * (1 + 1e-12)
                    and (state.members[block] - {i})):  # joining a group that exists
                u = (sol_value[s] - massive_pay(block, s, cost)) * massive_fraction
                if u > best[0] + GAIN_TOLERANCE:
                    best = (u, MASSIVE, s)
        return best

    def release(i: int) -> None:
        if state.kind[i] == SMALL:
            j = int(sol_bs[state.solution[i]])
            state.free_small[j].extend(state.small_held[i])
            state.free_small[j].sort()
            state.small_held[i] = []
        elif state.kind[i] == MASSIVE:
            state.members[state.massive_of[int(sol_bs[state.solution[i]])]].discard(i)
        state.kind[i], state.solution[i] = NONE, -1

    def take(i: int, kind: int, s: int) -> None:
        release(i)
        state.kind[i], state.solution[i] = kind, s
        j = int(sol_bs[s])
        if kind == SMALL:
            k = int(n_small_needed[s])
            state.small_held[i] = state.free_small[j][:k]
            state.free_small[j] = state.free_small[j][k:]
        elif kind == MASSIVE:
            state.members[state.massive_of[j]].add(i)

    def founding_group(block: int) -> list[tuple[int, int]]:
        """The largest-gain set of (client, solution) that buys ``block`` together with every
        member strictly better off than now (exact up to FOUNDING_BRUTE_FORCE_MAX clients)."""
        j = int(blocks.bs[block])
        pairs = []
        for i in range(n_clients):
            sols = by_client[i][sol_bs[by_client[i]] == j]
            sols = sols[(sol_bandwidth_hz[sols] <= blocks.bandwidth_hz[block])
                        & (sol_power_w[sols] <= blocks.power_w[block])
                        & (sol_value[sols] > 0)]
            if sols.size:  # its most valuable solution there
                pairs.append((i, int(sols[np.argmax(sol_value[sols])]), utility(i)))
        if not pairs:
            return []

        def gains(group: list[tuple[int, int, float]]) -> list[float] | None:
            sols = np.array([s for _, s, _ in group], dtype=np.int64)
            if (sol_bandwidth_hz[sols].sum() > blocks.bandwidth_hz[block] * (1 + 1e-12)
                    or sol_power_w[sols].sum() > blocks.power_w[block] * (1 + 1e-12)):
                return None
            total = own_cost[sols].sum()
            pay = blocks.price[block] * own_cost[sols] / total
            return [(sol_value[s] - pay[k]) * massive_fraction - now
                    for k, (_, s, now) in enumerate(group)]

        best: list[tuple[int, int, float]] = []
        best_gain = 0.0
        if len(pairs) <= FOUNDING_BRUTE_FORCE_MAX:
            for size in range(1, len(pairs) + 1):
                for subset in itertools.combinations(pairs, size):
                    g = gains(list(subset))
                    if g is not None and min(g) > GAIN_TOLERANCE and sum(g) > best_gain:
                        best, best_gain = list(subset), sum(g)
        else:  # iterated removal from everybody interested, least valuable first when full
            group = sorted(pairs, key=lambda x: -sol_value[x[1]])
            while group:
                sols = np.array([s for _, s, _ in group], dtype=np.int64)
                if (sol_bandwidth_hz[sols].sum() > blocks.bandwidth_hz[block]
                        or sol_power_w[sols].sum() > blocks.power_w[block]):
                    group = group[:-1]
                    continue
                g = gains(group)
                assert g is not None
                losers = [k for k, x in enumerate(g) if x <= GAIN_TOLERANCE]
                if not losers:
                    best = group
                    break
                group = [x for k, x in enumerate(group) if k not in set(losers)]
        return [(i, s) for i, s, _ in best]

    # clients switch in order of their acceptable price per unit bought (the seed's pi+ of a
    # demand over its reserve cost): the highest first, ties by index
    density = np.zeros(n_clients)
    np.maximum.at(density, sol_client, sol_value / np.maximum(own_cost, 1e-300))
    order = np.lexsort((np.arange(n_clients), -density)).tolist()
    rounds, converged = 0, False
    while rounds < terms.max_rounds:
        rounds += 1
        moved = False
        for i in order:
            if not by_client[i].size:
                continue
            u, kind, s = best_move(i)
            exchanges += 1  # the client reads the blocks' offers and its group's terms
            if u > utility(i) + GAIN_TOLERANCE:
                take(i, kind, s)
                exchanges += 1  # its request, answered
                moved = True
        for block in sorted(state.members):
            if state.members[block]:
                continue
            group = founding_group(block)
            for i, s in group:
                take(i, MASSIVE, s)
            exchanges += 2 * len(group)
            moved = moved or bool(group)
        if not moved:
            converged = True
            break
    # a cut-off run may leave members whose payment rose above their value: they leave
    changed = True
    while changed:
        changed = False
        for i in range(n_clients):
            if state.kind[i] != NONE and utility(i) < -GAIN_TOLERANCE:
                release(i)
                changed = True
    choice = state.solution.copy()
    pay = np.zeros(n_clients)
    fraction = np.zeros(n_clients)
    client_blocks: list[IntArray] = []
    group_block = np.full(n_clients, -1, dtype=np.int64)
    for i in range(n_clients):
        s = int(choice[i])
        if state.kind[i] == SMALL:
            held = np.array(state.small_held[i], dtype=np.int64)
            fraction[i] = float(blocks.end[held].min())
            pay[i] = float(blocks.price[held].sum()) * fraction[i]
            client_blocks.append(held)
        elif state.kind[i] == MASSIVE:
            block = state.massive_of[int(sol_bs[s])]
            _, _, cost = group_use(block, leaving=i)
            fraction[i] = float(blocks.end[block])
            pay[i] = massive_pay(block, s, cost) * fraction[i]
            group_block[i] = block
            client_blocks.append(np.array([block], dtype=np.int64))
        else:
            client_blocks.append(np.zeros(0, dtype=np.int64))
    return CooperativeResult(choice, pay, exchanges, rounds, converged, elapsed_ms(started),
                             None, blocks, tuple(client_blocks), group_block, fraction)
