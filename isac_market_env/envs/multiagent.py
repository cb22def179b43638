"""The FRBank market as a PettingZoo game: every client a bidder, optionally every BS a seller.

``parallel_env(**kwargs)`` is a ``pettingzoo.ParallelEnv``; ``env(**kwargs)`` its AEC version
(PettingZoo's converter). The env is a view of the episode driver
(``isac_market_env.market.driver.EpisodeDriver`` with ``all_clients=True``): a step is one
matching round, signing or online, in which every client that may propose decides at once;
BS agents set their overbooking rates at the start of each contract period
(``isac_market_env.market.periods``). Needs the ``marl`` extra (pettingzoo).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from isac_market_env.envs.bidding import SLOT_FEATURE_NAMES
from isac_market_env.envs.common import bid_level_price, numeric_array, step_error
from isac_market_env.envs.options import MarketGameOptions
from isac_market_env.envs.render import render_ansi, render_frame, sw_so_far
from isac_market_env.market.driver import EpisodeDriver, RoundView
from isac_market_env.market.market import Market
from isac_market_env.market.periods import ContractPeriods
from isac_market_env.market.records import TransactionRecord
from isac_market_env.metrics.episode import overhead_cost, per_bs_execution
from isac_market_env.metrics.overhead import Overhead
from isac_market_env.model.clients import request_grid

try:
    from pettingzoo import ParallelEnv
    from pettingzoo.utils.conversions import parallel_to_aec
except ImportError as error:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("isac_market_env.envs.multiagent needs PettingZoo: "
                      "pip install 'isac-market-env[marl]'") from error

ENV_NAME = "isac_market_v0"
MA_REWARDS = MarketGameOptions.REWARDS
CLIENT_GLOBAL_FEATURE_NAMES = ("phase_online", "round_fraction", "transaction_fraction",
                               "participation_probability", "holds_contract",
                               "contract_payment", "held_tentatively", "decides")
BS_FEATURE_NAMES = ("bandwidth_supply_share", "power_supply_share", "rdsl_bandwidth",
                    "rdsl_power", "drlc", "bandwidth_rate_fraction", "power_rate_fraction",
                    "presence_last_period", "participation_mean_next", "period_fraction",
                    "sw_share_last_period", "decides")
NO_OP = 0
AGENT_TYPES = ("mu", "coalition", "bs")


def agent_type(agent: str) -> str:
    """``mu_3`` -> ``mu``: the type (and so the shared policy) of an agent."""
    return agent.rsplit("_", 1)[0]


class ISACMarketParallelEnv(ParallelEnv):
    """Every client of the FRBank market bids; with ``bs_agents=True`` every BS also sets its
    overbooking rates.

    ## Agents
    ``mu_<i>``: MU i's communication client; ``coalition_<k>``: the sensing coalition of
    target k (FRBank's client structure; a target no MU senses has no coalition, so that
    agent is not in ``agents`` of that episode); with ``bs_agents=True`` also ``bs_<j>``.
    Every agent of an episode stays in ``agents`` until the episode ends.

    ## Steps
    A step is one matching round (offRFW2M in the signing phase, onEBW2M in a transaction):
    every client that may propose decides, all at once. A free client may propose any live or
    revived solution within the BS's supply; a tentatively held client only a revived solution
    (the switch FRBank's rule allows). With BS agents, the first step of every contract period
    is theirs: each sets its bandwidth and power overbooking rates, then the period is signed
    and its ``n_transactions`` transactions run; between periods participation drifts as in
    ``ISACMarket-Overbooking-v0``. An agent without a decision at a step has a mask allowing
    only the no-op (action 0). Rounds, and transactions, in which nobody may propose are
    played by the mechanism in between.

    ## Actions
    Client: ``Discrete(1 + K L)``: 0 passes; ``1 + k L + l`` proposes slot k's solution (K =
    n_bss x request grid, slot ``bs * grid + point``: one fixed (BS, bandwidth, power) per slot)
    at bid level l (0: the rule's current ascending bid; l >= 1: ``reserve + (value - reserve)
    l / (L - 1)``), as ``ISACMarket-Bidding-v0``, except that the auction stays ascending: a
    level below the solution's current bid bids that bid, a level above it is a jump bid that
    becomes the client's bid there, and a rejection raises it by Delta p (so every matching
    ends; ``EpisodeDriver.play``). Bid shading is therefore passing or dropping out early,
    not bidding below a price the BS already turned down. BS: ``Discrete(1 + R^2)``: 0 keeps its
    current rates (the configured ones in the first period); ``1 + r_B R + r_P`` sets the
    bandwidth and power rates to ``overbooking_levels[r_B]``, ``[r_P]``. An action the mask
    forbids is a no-op (a pass or keeping the rates); an action outside the space, or an
    unknown agent, is an error.

    ## Observations
    ``{"observation": Box, "action_mask": Box(0, 1, (n,), int8)}`` (PettingZoo's convention).
    Client: per slot ``SLOT_FEATURE_NAMES`` (as Bidding-v0; values over the client's largest
    solution value v*), then ``CLIENT_GLOBAL_FEATURE_NAMES``. BS: ``BS_FEATURE_NAMES`` (its
    supply over the largest BS's, last period's RDSL and DRLC at it, its rates over the
    largest level, the market's realised participation last period, the coming period's mean
    participation probability, the period index / n_periods, last period's SW share, and 1
    when it decides). ``observation_features(agent)`` names every entry. ``infos[agent]
    ["rule_action"]`` is FRBank's rule's action for that agent at this step.

    ## Rewards
    ``reward="utility"`` (default): each agent's own realised utility from the transactions
    completed since the last step (client: value received minus payments and penalties plus
    compensation; BS: its income). ``"social_welfare"``: every agent gets the SW accrued since
    the last step. ``"net_welfare"``: that SW minus the price of the interaction overhead
    incurred since the last step (signing and online, ``MarketConfig.overhead_price_per_joule``
    and ``overhead_price_per_ms``). By default (``reward_scale=None``) a client's utility is
    divided by its v*, a BS's by the most one transaction can deliver over n_bss, SW and net
    welfare by the most one transaction can deliver (constants of the episode's first market);
    a number multiplies the raw value instead. ``infos[agent]["raw_reward"]`` has it unscaled.

    ## Episode end
    Every agent terminates after the last transaction of the last period; nothing truncates.
    With every agent playing ``rule_action``, the episode is ``simulate(mechanism, seed=s)``
    bit for bit (with BS agents: its first period, and the rates the rule keeps).

    ## Arguments
    ``scenario``, ``n_mus`` (the preset's), ``n_transactions`` (10, per period),
    ``n_bid_levels`` (L = 6), ``bs_agents`` (False), ``n_periods`` (1; 5 with BS agents),
    ``drift_std`` (0.08), ``overbooking_levels`` (0, 0.1, ..., 0.6), ``mechanism`` ("frbank"
    or "frbank-nor": the client structure, coalitions, is FRBank's),
    ``reward``, ``reward_scale``, ``render_mode`` ("ansi" | "rgb_array"),
    ``scenario_overrides`` / ``market_overrides`` / ``physics_overrides``, ``eua_directory``.
    ``reset`` takes no options; it warns about any given (PettingZoo's API test passes one).
    The arguments are validated by ``isac_market_env.envs.options.MarketGameOptions`` (the
    rules of the Gymnasium envs: nothing is coerced, a config that would not fit in memory is
    refused).
    """

    metadata: ClassVar[dict[str, Any]] = {"name": ENV_NAME, "render_modes": ["ansi", "rgb_array"],
                                          "render_fps": 4, "is_parallelizable": True}
    ARGUMENTS: ClassVar[set[str]] = MarketGameOptions.argument_names()

    def __init__(self, **kwargs: Any) -> None:
        self.options = options = MarketGameOptions.from_kwargs(kwargs)
        self.scenario_name = options.scenario
        self.n_transactions = options.n_transactions
        self.n_levels = options.n_bid_levels
        self.bs_agents = options.bs_agents
        self.n_periods: int = options.n_periods  # type: ignore[assignment]
        self.drift_std = options.drift_std
        self.rate_levels = levels = np.asarray(options.overbooking_levels, dtype=np.float64)
        self.mechanism = options.spec
        self.reward_kind = options.reward
        self.reward_scale = options.reward_scale
        self.render_mode = options.render_mode
        self.eua_directory = options.eua_directory
        self.config = options.config
        sc = self.config.scenario
        self.n_mus, self.n_bss, self.n_targets = sc.n_mus, sc.n_bss, sc.n_targets
        subchannels, power = request_grid(sc)
        self._subchannels, self._power = subchannels, power
        self.n_grid = len(subchannels) * len(power)
        self.n_slots = self.n_bss * self.n_grid
        self.n_client_actions = 1 + self.n_slots * self.n_levels
        self.n_bs_actions = 1 + len(levels) ** 2
        client_obs = spaces.Dict({
            "observation": spaces.Box(-1.0, 2.0, (len(SLOT_FEATURE_NAMES) * self.n_slots
                                                  + len(CLIENT_GLOBAL_FEATURE_NAMES),),
                                      np.float32),
            "action_mask": spaces.Box(0, 1, (self.n_client_actions,), np.int8)})
        bs_obs = spaces.Dict({
            "observation": spaces.Box(-1.0, 5.0, (len(BS_FEATURE_NAMES),), np.float32),
            "action_mask": spaces.Box(0, 1, (self.n_bs_actions,), np.int8)})
        self.possible_agents = ([f"mu_{i}" for i in range(self.n_mus)]
                                + [f"coalition_{k}" for k in range(self.n_targets)]
                                + ([f"bs_{j}" for j in range(self.n_bss)]
                                   if self.bs_agents else []))
        self.observation_spaces = {a: self._space_of(a, client_obs, bs_obs)
                                   for a in self.possible_agents}
        self.action_spaces = {a: self._space_of(a, spaces.Discrete(self.n_client_actions),
                                                spaces.Discrete(self.n_bs_actions))
                              for a in self.possible_agents}
        self.agents: list[str] = []
        self.periods: ContractPeriods | None = None
        self.driver: EpisodeDriver | None = None
        self._seed_rng = np.random.default_rng()
        self._carried: tuple[list[TransactionRecord], float] | None = None
        self._view: RoundView | None = None
        empty = np.zeros(0)
        self._no_proposals = (empty.astype(np.int64), empty, empty)
        self.last_proposals: tuple[NDArray[np.int64], NDArray[np.float64],
                                   NDArray[np.float64]] = self._no_proposals
        self._last_market: Market | None = None

    @staticmethod
    def _space_of(agent: str, client: Any, bs: Any) -> Any:
        return bs if agent.startswith("bs_") else client

    # ------------------------------------------------------------------ PettingZoo API
    def observation_space(self, agent: str) -> spaces.Space[Any]:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space[Any]:
        return self.action_spaces[agent]

    def observation_features(self, agent: str) -> tuple[str, ...]:
        """The name of every entry of ``agent``'s observation vector."""
        if agent.startswith("bs_"):
            return BS_FEATURE_NAMES
        return tuple(f"slot{k}.{name}" for k in range(self.n_slots)
                     for name in SLOT_FEATURE_NAMES) + CLIENT_GLOBAL_FEATURE_NAMES

    @property
    def market(self) -> Market | None:
        """The current period's market, or the last one between periods (None before the
        first period's rates are set)."""
        return self._last_market if self.driver is None else self.driver.market

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        if options:
            warnings.warn(f"{ENV_NAME}.reset takes no options; ignored: "
                          f"{', '.join(sorted(map(str, options)))}", stacklevel=2)
        if seed is not None:
            self._seed_rng = np.random.default_rng(seed)
            self.episode_seed = int(seed)
        else:
            self.episode_seed = int(self._seed_rng.integers(0, 2**31 - 1))
        self.periods = ContractPeriods(self.scenario_name, self.config, self.mechanism,
                                       self.episode_seed, self.drift_std, self.eua_directory)
        base = self.periods.base_scenario
        targets = np.unique(base.mu_target)
        # the book's clients: MUs' communication clients, then one coalition per sensed target
        self._client_names = [f"mu_{i}" for i in range(self.n_mus)] + [
            f"coalition_{int(k)}" for k in targets]
        self._bs_names = [f"bs_{j}" for j in range(self.n_bss)] if self.bs_agents else []
        self.agents = self._client_names + self._bs_names
        preview = self.periods.preview_market()
        most = float(preview.book.best_values().sum())
        self._rates = np.concatenate([np.asarray(r, dtype=float) for r in
                                      preview.config.market.overbooking_rates(self.n_bss)])
        self._rule_bs_action = self.rate_actions(self._rates)
        self._factor = self._reward_factors(preview.book.best_values(), most)
        self._last_period: dict[str, Any] = {}
        self.driver = None
        self._last_market = None
        self._carried = None
        self._start_period(None if self.bs_agents else self._rates)
        self._carried = self._settle()  # (nothing, unless a period had no decision at all)
        return self._observe(), self._infos(dict.fromkeys(self.agents, 0.0))

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float],
                                                      dict[str, bool], dict[str, bool],
                                                      dict[str, Any]]:
        if not self.agents:
            raise RuntimeError(step_error(self.driver is None and self.periods is None))
        unknown = sorted(set(actions) - set(self.agents))
        if unknown:
            raise ValueError(f"{ENV_NAME}.step: unknown agent(s) {', '.join(map(str, unknown))}; "
                             f"the agents are {self.agents[0]} ... {self.agents[-1]}")
        client_actions = np.array([_discrete(name, actions.get(name, NO_OP),
                                             self.n_client_actions)
                                   for name in self._client_names], dtype=np.int64)
        bs_actions = np.array([_discrete(name, actions.get(name, NO_OP), self.n_bs_actions)
                               for name in self._bs_names], dtype=np.int64)
        self.last_proposals = self._no_proposals
        if self.driver is None:  # the BSs set this period's rates
            chosen = self._rates.copy()
            for j in np.flatnonzero(bs_actions != NO_OP):
                r_b, r_p = divmod(int(bs_actions[j]) - 1, len(self.rate_levels))
                chosen[j], chosen[self.n_bss + j] = self.rate_levels[r_b], self.rate_levels[r_p]
            self._start_period(chosen)
        else:
            self._play(client_actions)
        return self._finish_step()

    def step_clients_by_rule(self) -> tuple[dict[str, Any], dict[str, float], dict[str, bool],
                                            dict[str, bool], dict[str, Any]]:
        """Outside PettingZoo's API: play the rest of this period with every client following
        the rule, in compiled runs of rounds as ``simulate`` does, and return as ``step`` would
        after the last of those rounds (its rewards: everything earned meanwhile). The same
        episode as stepping every round with ``rule_action``, about 17 times faster at 50 MUs:
        for training the BSs alone."""
        if not self.agents or self.driver is None:
            raise RuntimeError("step_clients_by_rule() needs a period under way")
        self.last_proposals = self._no_proposals
        self.driver.all_clients = False  # no client controlled: runs of rule rounds
        self.driver.advance()
        return self._finish_step()

    def _finish_step(self) -> tuple[dict[str, Any], dict[str, float], dict[str, bool],
                                    dict[str, bool], dict[str, Any]]:
        raw = self._raw_rewards(*self._settle())
        done = self.driver is None and self.periods is not None and \
            self.periods.period >= self.n_periods
        obs = self._observe()
        infos = self._infos(raw)
        rewards = {a: float(raw[a]) * self._factor[a] for a in self.agents}
        terminations = dict.fromkeys(self.agents, done)
        truncations = dict.fromkeys(self.agents, False)
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def render(self) -> Any:  # str (ansi), an RGB array (rgb_array) or None
        if self.render_mode is None or self.periods is None:
            return None
        market = self.market or self.periods.preview_market()
        phase = "rates" if self.driver is None else self.driver.phase
        if self.render_mode == "ansi":
            return render_ansi(market, f"{ENV_NAME}, period {self.periods.period}, {phase}")
        view = self._view
        live = f", round {view.round}" if view is not None else ""
        title = (f"{ENV_NAME}: period {self.periods.period + 1}/{self.n_periods}, {phase}"
                 f"{live}; transactions done {market.n_transactions_done}/"
                 f"{self.n_transactions}; SW so far {sw_so_far(market):.1f}")
        tentative = None if self.driver is None else self.driver.tentative_bs()
        return render_frame(market, title, tentative_bs=tentative)

    def close(self) -> None:
        return None

    def state(self) -> NDArray[np.float32]:
        """Every agent's observation vector, concatenated in ``agents`` order."""
        obs = self._observe()
        return np.concatenate([obs[a]["observation"] for a in self.agents]) if obs else \
            np.zeros(0, dtype=np.float32)

    # ------------------------------------------------------------------ periods and rounds
    def _start_period(self, rates: NDArray[np.float64] | None) -> None:
        """With ``rates`` given, build and start the period's market (None: the BSs decide
        first)."""
        assert self.periods is not None
        self._view = None
        if rates is None:
            return
        self._rates = np.asarray(rates, dtype=float)
        market = self.periods.next_market(self._rates)
        self.driver = EpisodeDriver(market, all_clients=True)
        self._overhead_seen = False
        self._sol_slot = self._slots(market)
        self._value_scale = 1.0 / np.maximum(market.book.best_values(), 1e-9)  # 1 / v*
        self.driver.advance()
        self._refresh()

    def _settle(self) -> tuple[list[TransactionRecord], float]:
        """The transactions completed, and the overhead's price incurred, since the last call;
        closes every finished period on the way (and starts the next when no BS decides)."""
        completed, cost = [], 0.0
        if self._carried is not None:
            completed, cost = list(self._carried[0]), self._carried[1]
            self._carried = None
        while self.driver is not None:
            market = self.driver.market
            done = self.driver.take_completed()
            overhead = Overhead()
            for tx in done:
                overhead = overhead + tx.overhead
            if not self._overhead_seen and market.signing is not None:
                self._overhead_seen = True
                overhead = overhead + market.signing.overhead
            completed += done
            cost += overhead_cost(overhead, market.config.market)
            if not self.driver.done:
                break
            self._close_period()
        return completed, cost

    def _close_period(self) -> None:
        assert self.periods is not None and self.driver is not None
        market = self.driver.market
        txs = market.transactions
        per_bs = per_bs_execution(market.contracts.bs, txs, self.n_bss)
        sw = float(sum(tx.social_welfare for tx in txs))
        most = len(txs) * float(market.book.best_values().sum())
        self._last_period = {"rdsl_b": per_bs["rdsl_bandwidth"],
                             "rdsl_p": per_bs["rdsl_power"], "drlc": per_bs["drlc"],
                             "presence": float(np.mean([tx.mu_present.mean() for tx in txs])),
                             "sw_share": sw / most if most > 0 else 0.0}
        self._last_market = market
        self.periods.drift()
        self.driver = None
        self._view = None
        if self.periods.period < self.n_periods and not self.bs_agents:
            self._start_period(self._rates)

    def _slots(self, market: Market) -> NDArray[np.int64]:
        """Per book solution its slot ``bs * grid + point`` (point: bandwidth level x power
        level of the request grid)."""
        book = market.book
        b = np.searchsorted(self._subchannels, book.sol_subchannels)
        p = np.abs(book.sol_power_w[:, None] - self._power[None, :]).argmin(axis=1)
        return (book.sol_bs * self.n_grid + b * len(self._power) + p).astype(np.int64)

    def _refresh(self) -> None:
        """The driver's current round, and per (client, slot) the matching solution (-1)."""
        assert self.driver is not None
        view = self._view = self.driver.round_view()
        self._slot_sol = np.full((len(self._client_names), self.n_slots), -1, dtype=np.int64)
        if view is not None:
            slots = self._sol_slot[view.book_solution]
            self._slot_sol[view.sol_client, slots] = np.arange(len(slots))
            self._view_slots = slots

    def _play(self, client_actions: NDArray[np.int64]) -> None:
        """The clients' actions as this round's proposals; then on to the next round."""
        assert self.driver is not None
        view = self._view
        if view is None:
            return
        acting = np.flatnonzero(client_actions != NO_OP)
        slot, level = np.divmod(client_actions[acting] - 1, self.n_levels)
        sols = self._slot_sol[acting, slot]
        ok = sols >= 0
        ok[ok] = view.decides[sols[ok]]
        sols, level = sols[ok], level[ok]
        reserve, value = view.reserve_price[sols], view.value[sols]
        pays = np.where(level == 0, view.rule_bid[sols],
                        bid_level_price(reserve, value, level, self.n_levels))
        order = np.argsort(sols, kind="stable")
        # this round's proposals as (client, price asked, the rule's bid there), for the record
        self.last_proposals = (view.sol_client[sols[order]], pays[order],
                               view.rule_bid[sols[order]])
        self.driver.play(sols[order], pays[order])
        self.driver.advance()
        self._refresh()

    # ------------------------------------------------------------------ observations
    def _observe(self) -> dict[str, Any]:
        if not self.agents:
            return {}
        n_clients = len(self._client_names)
        n_slot_features = len(SLOT_FEATURE_NAMES)
        width = n_slot_features * self.n_slots
        obs = np.zeros((n_clients, width + len(CLIENT_GLOBAL_FEATURE_NAMES)), dtype=np.float32)
        mask = np.zeros((n_clients, self.n_client_actions), dtype=np.int8)
        mask[:, NO_OP] = 1
        view, driver = self._view, self.driver
        if driver is not None:
            market = driver.market
            book = market.book
            scale = self._value_scale
            slots_view = obs[:, :width].reshape(n_clients, self.n_slots, n_slot_features)
            glob = obs[:, width:]
            if view is not None:
                c, k = view.sol_client, self._view_slots
                vs = scale[c]
                slots_view[c, k, 0] = view.decides
                slots_view[c, k, 1] = view.value * vs
                slots_view[c, k, 2] = view.rule_bid * vs
                slots_view[c, k, 3] = view.utility_at_rule_bid * vs
                slots_view[view.sol_client[view.rule_proposals],
                           k[view.rule_proposals], 4] = 1.0
                slots_view[c, k, 5] = view.bs_volunteer_rate
                d = np.flatnonzero(view.decides)
                cols = 1 + k[d, None] * self.n_levels + np.arange(self.n_levels)[None, :]
                mask[np.repeat(c[d], self.n_levels), cols.reshape(-1)] = 1
                glob[:, 1] = view.round / view.max_rounds
                glob[:, 6] = view.held >= 0
                glob[:, 7] = np.bincount(c[d], minlength=n_clients) > 0
            contracts = market.contracts
            glob[:, 0] = 0.0 if driver.phase == "signing" else 1.0
            glob[:, 2] = market.n_transactions_done / self.n_transactions
            glob[:, 3] = book.client_presence_prob
            glob[contracts.client, 4] = 1.0
            glob[contracts.client, 5] = contracts.pay * scale[contracts.client]
        np.clip(obs, -1.0, 2.0, out=obs)
        out = {name: {"observation": obs[i], "action_mask": mask[i]}
               for i, name in enumerate(self._client_names)}
        if self._bs_names:
            out.update(self._bs_observations())
        return out

    def _bs_observations(self) -> dict[str, Any]:
        assert self.periods is not None
        sc, last, n = self.periods.base_scenario, self._last_period, self.n_bss
        top = float(self.rate_levels.max()) or 1.0
        deciding = self.driver is None
        features = np.column_stack([
            sc.bs_bandwidth_hz / sc.bs_bandwidth_hz.max(), sc.bs_power_w / sc.bs_power_w.max(),
            last.get("rdsl_b", np.zeros(n)), last.get("rdsl_p", np.zeros(n)),
            last.get("drlc", np.zeros(n)), self._rates[:n] / top, self._rates[n:] / top,
            np.full(n, last.get("presence", 0.0)),
            np.full(n, float(self.periods.participation.mean())),
            np.full(n, self.periods.period / self.n_periods),
            np.full(n, last.get("sw_share", 0.0)), np.full(n, float(deciding))])
        features = np.clip(features, -1.0, 5.0).astype(np.float32)
        mask = np.zeros((n, self.n_bs_actions), dtype=np.int8)
        mask[:, NO_OP] = 1
        if deciding:
            mask[:] = 1
        return {name: {"observation": features[j], "action_mask": mask[j]}
                for j, name in enumerate(self._bs_names)}

    def _rule_client_actions(self) -> NDArray[np.int64]:
        out = np.zeros(len(self._client_names), dtype=np.int64)
        view = self._view
        if view is not None and self.driver is not None:
            rule = view.rule_proposals
            out[view.sol_client[rule]] = 1 + self._view_slots[rule] * self.n_levels
        return out

    def rate_actions(self, rates: NDArray[np.float64]) -> NDArray[np.int64]:
        """Per BS the action that sets ``rates = [O_B_1..O_B_n, O_P_1..O_P_n]`` (the configured
        ones: FRBank's rule), or the no-op (0, keep) where a rate is not one of the levels."""
        n, out = self.n_bss, np.zeros(self.n_bss, dtype=np.int64)
        for j in range(n):
            hit_b = np.flatnonzero(np.isclose(self.rate_levels, rates[j]))
            hit_p = np.flatnonzero(np.isclose(self.rate_levels, rates[n + j]))
            if hit_b.size and hit_p.size:
                out[j] = 1 + hit_b[0] * len(self.rate_levels) + hit_p[0]
        return out

    def _infos(self, raw: dict[str, float]) -> dict[str, Any]:
        if not self.agents:
            return {}
        rule = self._rule_client_actions()
        infos: dict[str, Any] = {name: {"rule_action": int(rule[i]), "raw_reward": raw[name]}
                                 for i, name in enumerate(self._client_names)}
        for j, name in enumerate(self._bs_names):
            infos[name] = {"rule_action": int(self._rule_bs_action[j]) if self.driver is None
                           else NO_OP, "raw_reward": raw[name]}
        return infos

    # ------------------------------------------------------------------ rewards
    def _reward_factors(self, best_values: NDArray[np.float64], most: float) -> dict[str, float]:
        """Per agent the reward's factor (the default normalisation, or ``reward_scale``)."""
        if self.reward_scale is not None:
            return dict.fromkeys(self.agents, self.reward_scale)
        if self.reward_kind != "utility":
            return dict.fromkeys(self.agents, 1.0 / max(most, 1e-9))
        out = {name: 1.0 / max(float(best_values[i]), 1e-9)
               for i, name in enumerate(self._client_names)}
        out.update(dict.fromkeys(self._bs_names, self.n_bss / max(most, 1e-9)))
        return out

    def _raw_rewards(self, completed: list[TransactionRecord], cost: float
                     ) -> dict[str, float]:
        """Per agent the raw reward of ``completed`` (and the overhead's price ``cost``)."""
        if self.reward_kind == "utility":
            n_clients = len(self._client_names)
            client = np.zeros(n_clients)
            bs = np.zeros(self.n_bss)
            for tx in completed:
                client += (tx.client_value - tx.client_paid + tx.client_received)[:n_clients]
                bs += tx.bs_income
            out = {name: float(client[i]) for i, name in enumerate(self._client_names)}
            out.update({name: float(bs[j]) for j, name in enumerate(self._bs_names)})
            return out
        sw = float(sum(tx.social_welfare for tx in completed))
        if self.reward_kind == "net_welfare":
            sw -= cost
        return dict.fromkeys(self.agents, sw)


def _discrete(agent: str, action: Any, n: int) -> int:
    """``action`` as an integer in [0, n), or a ValueError naming the agent."""
    arr = numeric_array(action, f"action of {agent}")
    if arr.shape != () or (
            arr.dtype.kind == "f" and (not np.isfinite(arr) or arr != np.round(arr))):
        raise ValueError(f"action of {agent} must be an integer in [0, {n}), got {action!r}")
    value = int(arr)
    if not 0 <= value < n:
        raise ValueError(f"action of {agent} must be an integer in [0, {n}), got {value}")
    return value


def parallel_env(**kwargs: Any) -> ISACMarketParallelEnv:
    """The market as a ``pettingzoo.ParallelEnv`` (keyword arguments: the class docstring)."""
    return ISACMarketParallelEnv(**kwargs)


def env(**kwargs: Any) -> Any:
    """The AEC version of ``parallel_env`` (PettingZoo's ``parallel_to_aec``)."""
    return parallel_to_aec(parallel_env(**kwargs))


__all__ = [
    "AGENT_TYPES",
    "BS_FEATURE_NAMES",
    "CLIENT_GLOBAL_FEATURE_NAMES",
    "ENV_NAME",
    "MA_REWARDS",
    "ISACMarketParallelEnv",
    "agent_type",
    "env",
    "parallel_env",
]
