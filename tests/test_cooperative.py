"""Seed 002's cooperative block trade: the blocks' capacity rows, budget balance of the groups,
IR, Nash stability with capacities and no blocking founding group (brute force, independent
of the mechanism's own search), the episode invariants and determinism."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from conftest import check_episode, small_market

import isac_market_env as ime
from isac_market_env.mechanisms.cooperative import (
    BlockTerms,
    CooperativeResult,
    cooperative_trade,
    expected_fraction,
)

PRICE_HZ, PRICE_W = 0.1 / 1e6, 0.1


def random_trade(seed: int, n_clients: int = 8, n_bss: int = 2, return_rate: float = 0.2,
                 massive_share: float = 0.5) -> tuple[dict[str, np.ndarray], CooperativeResult,
                                                      BlockTerms]:
    rng = np.random.default_rng(seed)
    sol_client = np.repeat(np.arange(n_clients), 3)
    n = len(sol_client)
    inputs = {"sol_client": sol_client, "sol_bs": rng.integers(0, n_bss, n),
              "sol_bandwidth_hz": rng.uniform(1e6, 12e6, n),
              "sol_power_w": rng.uniform(0.5, 4.0, n), "sol_value": rng.uniform(0.5, 6.0, n),
              "supply_bandwidth_hz": rng.uniform(15e6, 40e6, n_bss),
              "supply_power_w": rng.uniform(5.0, 15.0, n_bss)}
    terms = BlockTerms(massive_share, 2e6, return_rate, 50)
    res = cooperative_trade(n_clients, inputs["sol_client"], inputs["sol_bs"],
                            inputs["sol_bandwidth_hz"], inputs["sol_power_w"],
                            inputs["sol_value"], inputs["supply_bandwidth_hz"],
                            inputs["supply_power_w"], PRICE_HZ, PRICE_W, terms,
                            np.random.default_rng(seed + 100))
    return inputs, res, terms


def own_cost(inputs: dict[str, np.ndarray], s: int) -> float:
    return float(PRICE_HZ * inputs["sol_bandwidth_hz"][s] + PRICE_W * inputs["sol_power_w"][s])


@pytest.mark.parametrize("seed", range(30))
def test_blocks_rows_budget_balance_and_ir(seed: int) -> None:
    inputs, res, _ = random_trade(seed)
    blocks = res.blocks
    assert blocks is not None and res.served_fraction is not None
    # blocks never sell more than the BS has
    for j, (b, p) in enumerate(zip(inputs["supply_bandwidth_hz"], inputs["supply_power_w"],
                                   strict=True)):
        assert blocks.bandwidth_hz[blocks.bs == j].sum() <= b * (1 + 1e-12)
        assert blocks.power_w[blocks.bs == j].sum() <= p * (1 + 1e-12)
    held = np.concatenate(res.client_blocks)
    held = held[~blocks.massive[held]]
    assert len(held) == len(np.unique(held))  # no small block sold twice
    served = np.flatnonzero(res.client_solution >= 0)
    for i in served:
        s = int(res.client_solution[i])
        mine = res.client_blocks[i]
        assert (blocks.bs[mine] == inputs["sol_bs"][s]).all()
        if res.group_block[i] < 0:  # small blocks: enough bandwidth and power
            assert not blocks.massive[mine].any()
            assert blocks.bandwidth_hz[mine].sum() >= inputs["sol_bandwidth_hz"][s] - 1e-6
            assert blocks.power_w[mine].sum() >= inputs["sol_power_w"][s] - 1e-9
            price = blocks.price[mine].sum()
            assert res.client_payment[i] == pytest.approx(price * blocks.end[mine].min())
        # IR on the realised share of the slot
        fraction = res.served_fraction[i]
        assert res.client_payment[i] <= inputs["sol_value"][s] * fraction + 1e-9
    for block in np.unique(res.group_block[res.group_block >= 0]):
        members = np.flatnonzero(res.group_block == block)
        sols = res.client_solution[members]
        assert inputs["sol_bandwidth_hz"][sols].sum() <= blocks.bandwidth_hz[block] * (1 + 1e-12)
        assert inputs["sol_power_w"][sols].sum() <= blocks.power_w[block] * (1 + 1e-12)
        # budget balance: the group pays the block's price for the share of the slot it held
        assert res.client_payment[members].sum() == pytest.approx(
            blocks.price[block] * blocks.end[block])
        # shares proportional to use: payment / own cost is the same for every member
        ratios = [res.client_payment[m] / own_cost(inputs, int(res.client_solution[m]))
                  for m in members]
        assert max(ratios) == pytest.approx(min(ratios))


def deviations(inputs: dict[str, np.ndarray], res: CooperativeResult, terms: BlockTerms
               ) -> list[tuple[int, str]]:
    """Every profitable unilateral move (expected utilities), found by trying each one."""
    blocks = res.blocks
    assert blocks is not None
    r = terms.primary_return_rate
    n_clients = len(res.client_solution)
    free = np.ones(len(blocks.bs), dtype=bool)
    free[np.concatenate(res.client_blocks)] = False

    def group_cost(block: int, without: int) -> tuple[float, float, float]:
        members = [m for m in np.flatnonzero(res.group_block == block) if m != without]
        sols = res.client_solution[members]
        return (float(inputs["sol_bandwidth_hz"][sols].sum()),
                float(inputs["sol_power_w"][sols].sum()),
                float(sum(own_cost(inputs, int(s)) for s in sols)))

    def now(i: int) -> float:
        s = int(res.client_solution[i])
        if s < 0:
            return 0.0
        if res.group_block[i] >= 0:
            block = int(res.group_block[i])
            _, _, cost = group_cost(block, i)
            pay = blocks.price[block] * own_cost(inputs, s) / (cost + own_cost(inputs, s))
            return float((inputs["sol_value"][s] - pay) * expected_fraction(1, r))
        k = len(res.client_blocks[i])
        return float((inputs["sol_value"][s] - blocks.price[res.client_blocks[i]].sum())
                     * expected_fraction(k, r))

    found = []
    for i in range(n_clients):
        current = now(i)
        if current < -1e-9:
            found.append((i, "leave"))
        for s in np.flatnonzero(inputs["sol_client"] == i):
            j = int(inputs["sol_bs"][s])
            smalls = np.flatnonzero((blocks.bs == j) & ~blocks.massive)
            mine = [k for k in res.client_blocks[i] if k in set(smalls.tolist())]
            available = int(free[smalls].sum()) + len(mine)
            if smalls.size:
                need = int(max(np.ceil(inputs["sol_bandwidth_hz"][s] / terms.small_block_hz
                                       - 1e-9),
                               np.ceil(inputs["sol_power_w"][s] / blocks.power_w[smalls[0]]
                                       - 1e-9)))
                if need <= available:
                    u = ((inputs["sol_value"][s] - need * blocks.price[smalls[0]])
                         * expected_fraction(need, r))
                    if u > current + 1e-6:
                        found.append((i, f"small {s}"))
            block = int(np.flatnonzero((blocks.bs == j) & blocks.massive)[0])
            b, p, cost = group_cost(block, i)
            if cost > 0 and (b + inputs["sol_bandwidth_hz"][s] <= blocks.bandwidth_hz[block]
                             and p + inputs["sol_power_w"][s] <= blocks.power_w[block]):
                pay = blocks.price[block] * own_cost(inputs, s) / (cost + own_cost(inputs, s))
                u = (inputs["sol_value"][s] - pay) * expected_fraction(1, r)
                if u > current + 1e-6:
                    found.append((i, f"join {block}"))
    # founding groups on unsold massive blocks, by brute force over the interested clients
    for block in np.flatnonzero(blocks.massive):
        if (res.group_block == block).any():
            continue
        j = int(blocks.bs[block])
        options = [(i, int(s)) for i in range(n_clients)
                   for s in np.flatnonzero((inputs["sol_client"] == i)
                                           & (inputs["sol_bs"] == j))]
        utilities = {i: now(i) for i in range(n_clients)}
        for size in range(1, 5):
            for group in combinations(options, size):
                if len({i for i, _ in group}) < size:
                    continue
                sols = np.array([s for _, s in group])
                if (inputs["sol_bandwidth_hz"][sols].sum() > blocks.bandwidth_hz[block]
                        or inputs["sol_power_w"][sols].sum() > blocks.power_w[block]):
                    continue
                total = sum(own_cost(inputs, int(s)) for s in sols)
                gains = [(inputs["sol_value"][s] - blocks.price[block] * own_cost(inputs, s)
                          / total) * expected_fraction(1, r) - utilities[i] for i, s in group]
                if min(gains) > 1e-6:
                    found.append((-1, f"found {block} {group}"))
    return found


@pytest.mark.parametrize("seed", range(40))
def test_converged_outcomes_are_nash_stable_with_no_blocking_founders(seed: int) -> None:
    inputs, res, terms = random_trade(seed, n_clients=6, massive_share=0.6)
    assert res.converged
    assert deviations(inputs, res, terms) == []


def test_the_stability_check_finds_a_planted_deviation() -> None:
    """The checker is not vacuous: taking a served client out of a converged outcome leaves a
    profitable move (its own way back in, at least)."""
    for seed in range(40):
        inputs, res, terms = random_trade(seed, n_clients=6, massive_share=0.6)
        served = np.flatnonzero(res.client_solution >= 0)
        if served.size == 0:
            continue
        i = int(served[0])
        broken = CooperativeResult(
            np.where(np.arange(len(res.client_solution)) == i, -1, res.client_solution),
            res.client_payment, res.n_exchanges, res.rounds, res.converged, res.runtime_ms,
            None, res.blocks,
            tuple(np.zeros(0, np.int64) if k == i else b
                  for k, b in enumerate(res.client_blocks)),
            np.where(np.arange(len(res.group_block)) == i, -1, res.group_block),
            res.served_fraction)
        if any(who in (i, -1) for who, _ in deviations(inputs, broken, terms)):
            return
    raise AssertionError("no planted deviation was found")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cooperative_episodes_keep_the_market_invariants(seed: int) -> None:
    """IR, capacity, SW = delivered value (values scaled by the share of the slot served),
    one solution per client (``check_episode``)."""
    market = small_market("cooperative", seed=seed, n_mus=5 + seed, n_transactions=3)
    market.run()
    check_episode(market)


def test_preemption_only_lowers_what_is_delivered() -> None:
    """The same episode without the BS's own demand returning delivers at least as much per
    served client; the return's draws come from the episode's mechanism stream."""
    with_return = ime.simulate("cooperative", n_mus=20, n_transactions=3, seed=3)
    again = ime.simulate("cooperative", n_mus=20, n_transactions=3, seed=3)
    assert [t.alloc_value.tolist() for t in with_return.transactions] == [
        t.alloc_value.tolist() for t in again.transactions]
    assert expected_fraction(1, 0.0) == 1.0
    assert expected_fraction(1, 1.0) == pytest.approx(0.5)
    assert expected_fraction(3, 0.4) < expected_fraction(1, 0.4)
    samples = np.random.default_rng(0).random((200_000, 3))
    ends = np.where(samples < 0.4, np.random.default_rng(1).random((200_000, 3)), 1.0)
    assert ends.min(axis=1).mean() == pytest.approx(expected_fraction(3, 0.4), abs=3e-3)


def test_bad_block_terms_are_refused() -> None:
    with pytest.raises(ValueError, match="cooperative_massive_share"):
        ime.MarketConfig(cooperative_massive_share=0.0)
    with pytest.raises(ValueError, match="primary_return_rate"):
        ime.MarketConfig(primary_return_rate=1.5)
    with pytest.raises(TypeError, match="cooperative_max_rounds"):
        ime.MarketConfig(cooperative_max_rounds=2.0)  # type: ignore[arg-type]
