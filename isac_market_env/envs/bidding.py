"""``ISACMarket-Bidding-v0``: learn one MU's bidding in offRFW2M and onEBW2M."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from isac_market_env.envs.common import (
    bid_level_price,
    check_reset_options,
    step_error,
    validate_action,
)
from isac_market_env.envs.options import BiddingOptions
from isac_market_env.envs.render import render_ansi, render_frame, sw_so_far
from isac_market_env.market.driver import EpisodeDriver
from isac_market_env.market.market import Market
from isac_market_env.market.records import TransactionRecord
from isac_market_env.metrics.episode import client_utility, transaction_metrics
from isac_market_env.model.clients import request_grid
from isac_market_env.simulate import make_market

# the observation's layout, named: K slots of these features, then the global ones
SLOT_FEATURE_NAMES = ("available", "value", "rule_bid", "utility_at_rule_bid", "is_rule_choice",
                      "bs_volunteer_rate")
GLOBAL_FEATURE_NAMES = ("phase_online", "round_fraction", "transaction_fraction",
                        "participation_probability", "holds_contract", "contract_payment")
SLOT_FEATURES = len(SLOT_FEATURE_NAMES)
GLOBAL_FEATURES = len(GLOBAL_FEATURE_NAMES)


class ISACMarketBiddingEnv(gym.Env[np.ndarray, np.ndarray]):
    """One focal MU bids for communication in the FRBank market; everyone else follows FRBank.

    ## Description
    An episode is one market episode: the offline signing phase (offRFW2M) and
    ``n_transactions`` practical transactions (volunteers, onEBW2M). The focal MU's
    communication client is controlled by the agent; its sensing coalition and all other clients
    follow FRBank's rule. A step is one matching round in which the focal client is free (not
    tentatively accepted) and has a solution it may propose; rounds in which it is held, and
    transactions where it does not trade online, are played by the rule in between.

    ## Action space
    ``MultiDiscrete([K + 1, L])``: the slot of the solution to propose (K = n_bss x request grid;
    slot K, or a slot that is not available this round, means "no proposal this round") and the
    bid level: 0 = the rule's current ascending bid for that solution, l >= 1 =
    ``reserve + (value - reserve) * l / (L - 1)``. ``info["action_mask"]`` lists available
    slots; ``action_masks()`` gives the mask in sb3-contrib's ``MaskablePPO`` layout
    (``MaskablePPO`` finds it through ``gym.make``'s wrappers; by hand, Gymnasium wrappers do
    not forward methods: ``env.unwrapped.action_masks()`` or
    ``env.get_wrapper_attr("action_masks")()``). With
    ``slot_order="fixed"`` (default) slot k is the focal client's k-th feasible solution (by BS,
    then bandwidth, then power), the same one throughout an episode (another market may have
    other feasible solutions; slots beyond the client's count are never available);
    with ``slot_order="ranked"`` the slots are re-sorted every round: slot 0 is the rule's choice,
    then the other available solutions by the focal client's utility at the rule's bid, so that a
    policy learns "which rank" rather than "which of K positions". A proposal at a price of the
    agent's own does not move the rule's bid when rejected.

    ## Observation space
    ``Box(-1, 2, (6 K + 6,), float32)``. Per slot, in the action's slot order: available;
    value / v*; the rule's bid / v*; the focal client's (expected) utility at that bid / v*; 1 if
    it is the rule's choice this round; the BS's published volunteer probability. Global: phase
    (0 signing, 1 online), round / max_rounds, transaction index / T, the focal MU's
    participation probability, 1 if it holds a long-term contract, and its payment / v*. v* is
    the focal client's largest solution value. ``observation_features`` names every entry
    (``slot<k>.<feature>`` with ``SLOT_FEATURE_NAMES``, then ``GLOBAL_FEATURE_NAMES``).

    ## Info
    ``phase``, ``transaction``, ``action_mask``, ``rule_slot``; after the first transaction the
    last transaction's ``social_welfare``, ``mu_utility``, ``bs_utility``, ``ni``, ``drlc`` (and
    ``rt_ms`` with ``include_runtime=True``).

    ## Reward
    ``reward="social_welfare"`` (default): the social welfare of the transactions completed
    since the previous step (the return is the episode's SW; signing steps earn 0).
    ``reward="utility"``: the focal MU's own communication utility over the same transactions.
    By default (``reward_scale=None``) rewards are O(1): the SW of a transaction is divided by
    the most one transaction can deliver (every client present with its most valuable
    solution), the focal utility by v* (below); both constants per episode, so the best policy
    is unchanged. A number multiplies the raw value instead (the bidding configs of
    docs/training.md set 1.0). ``info`` carries the raw values.

    ## Episode end
    Terminates after the last transaction. A reset whose focal client never gets to choose
    returns an observation from which the first step plays the whole episode.

    ## Arguments
    ``scenario``, ``n_mus`` (default: the preset's, 50 synthetic, 140 EUA), ``n_transactions``
    (10), ``focal_mu`` (0), ``n_bid_levels`` (L = 6), ``slot_order`` ("fixed" | "ranked"),
    ``mechanism`` ("frbank"), ``reward``, ``reward_scale`` (None: the normalisation above),
    ``render_mode`` ("ansi" | "rgb_array"), ``scenario_overrides`` / ``market_overrides`` /
    ``physics_overrides``, ``eua_directory``, ``include_runtime`` (False: wall-clock RT in
    ``info`` would make identical seeds give different infos).
    ``reset(seed=s)`` builds the market of ``simulate(mechanism, seed=s)``: with the rule's
    actions every transaction's SW equals it exactly.

    ## Version history
    * v0: initial release. Rewards are normalised by default (they were the raw values:
      ``reward_scale=1.0`` gives them back); ``n_mus`` defaults to the preset's size (it was
      20); ``reset`` refuses options (they were ignored); ``rgb_array`` frames are 760 x 540
      with a legend and state (they were 400 x 400 dots). Keyword arguments are validated
      as they are given, not coerced (``n_transactions=2.5``, ``include_runtime="False"`` are
      errors; they were truncated / read as True), ``reward_scale`` must be in (0, 1e6], and
      a config that would not fit in memory is refused at construction
      (``isac_market_env.envs.options``).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # noqa: RUF012
    ARGUMENTS: ClassVar[set[str]] = BiddingOptions.argument_names()

    def __init__(self, **kwargs: Any) -> None:
        self.options = options = BiddingOptions.from_kwargs(kwargs)
        self.scenario_name = options.scenario
        self.n_transactions = options.n_transactions
        self.focal_mu = options.focal_mu
        self.n_levels = options.n_bid_levels
        self.slot_order = options.slot_order
        self.mechanism = options.spec
        self.reward_kind = options.reward
        self.reward_scale = options.reward_scale
        self.render_mode = options.render_mode
        self.include_runtime = options.include_runtime
        self.eua_directory = options.eua_directory
        self.config = options.config
        subchannels, power = request_grid(self.config.scenario)
        self.n_slots = self.config.scenario.n_bss * len(subchannels) * len(power)
        self.action_space = spaces.MultiDiscrete([self.n_slots + 1, self.n_levels])
        self.observation_space = spaces.Box(-1.0, 2.0, (SLOT_FEATURES * self.n_slots
                                                         + GLOBAL_FEATURES,), np.float32)
        self.observation_features = [f"slot{k}.{name}" for k in range(self.n_slots)
                                     for name in SLOT_FEATURE_NAMES] + list(GLOBAL_FEATURE_NAMES)
        self.driver: EpisodeDriver | None = None
        self._done = True
        self._view = np.arange(self.n_slots)
        self._rule = self.n_slots

    # ------------------------------------------------------------------ gymnasium API
    @property
    def market(self) -> Market | None:
        """The episode's market (None before the first reset)."""
        return None if self.driver is None else self.driver.market

    @property
    def phase(self) -> str:
        return "signing" if self.driver is None else self.driver.phase

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        check_reset_options("ISACMarket-Bidding-v0", options)
        episode_seed = int(seed) if seed is not None else int(
            self.np_random.integers(0, 2**31 - 1))
        market = make_market(self.mechanism, self.scenario_name, seed=episode_seed,
                             config=self.config, eua_directory=self.eua_directory)
        book = market.book
        self.focal = self.focal_mu  # the MU's communication client has the MU's index
        self.driver = EpisodeDriver(market, controlled_client=self.focal)
        focal_values = book.sol_value[self.driver.client_solutions]
        self.value_scale = float(max(focal_values.max(initial=0.0), 1e-9))
        if self.reward_scale is not None:
            self.reward_factor = self.reward_scale
        elif self.reward_kind == "utility":
            self.reward_factor = 1.0 / self.value_scale
        else:
            self.reward_factor = 1.0 / max(float(book.best_values().sum()), 1e-9)
        self._done = False
        self.driver.advance()
        self._order_slots()
        return self._observation(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._done or self.driver is None:
            raise RuntimeError(step_error(self.driver is None))
        slot, level = (int(x) for x in validate_action(action, self.action_space))
        self._decide(int(self._view[slot]) if slot < self.n_slots else slot, level)
        self.driver.advance()
        self._order_slots()
        reward = self._reward(self.driver.take_completed()) * self.reward_factor
        terminated = self.driver.done
        self._done = terminated
        return self._observation(), float(reward), terminated, False, self._info()

    def render(self) -> Any:  # str (ansi), an RGB array (rgb_array) or None
        if self.driver is None:
            return None
        market = self.driver.market
        if self.render_mode == "ansi":
            return render_ansi(market, f"ISACMarket-Bidding-v0, phase {self.phase}, "
                                       f"focal MU {self.focal_mu}")
        if self.render_mode == "rgb_array":
            offer = self._offer
            live = f", round {offer.round}" if offer.max_rounds else ""
            title = (f"ISACMarket-Bidding-v0: {self.phase} phase{live}; transactions done "
                     f"{market.n_transactions_done}/{self.n_transactions}; SW so far "
                     f"{sw_so_far(market):.1f}")
            return render_frame(market, title, focal_mu=self.focal_mu,
                                tentative_bs=self.driver.tentative_bs())
        return None

    def action_masks(self) -> np.ndarray:
        """Valid actions for sb3-contrib's ``MaskablePPO``: the K + 1 slot flags (available slots
        and "no proposal") followed by the L bid levels (all valid)."""
        return np.concatenate([self._available()[self._view], [True],
                               np.ones(self.n_levels, dtype=bool)])

    def rule_slot(self) -> int:
        """The slot FRBank's rule would propose this round (n_slots: no proposal), in the
        fixed order."""
        choice = self._offer.rule_choice
        return self.n_slots if choice is None else choice

    # ------------------------------------------------------------------ internals
    def _order_slots(self) -> None:
        """Fix this decision point's offer and slot order: ``_view[k]`` is the solution slot
        shown as k."""
        assert self.driver is not None
        self._offer = self.driver.offer()
        self._view = np.arange(self.n_slots)
        self._rule = self.rule_slot()
        if self.slot_order == "fixed" or not self._offer.max_rounds:
            return
        offer = self._offer
        utility = np.full(self.n_slots, -np.inf)
        valid = np.flatnonzero(offer.in_matching)
        utility[valid] = offer.utility_at_rule_bid[valid]
        is_rule = np.arange(self.n_slots) == self._rule
        # rule's choice first, then available slots by utility, then the rest (stable by index)
        self._view = np.lexsort((np.arange(self.n_slots), -utility, ~self._available(),
                                 ~is_rule))

    def _available(self) -> np.ndarray:
        """Per slot: the focal client may propose it this round (live or revived solution)."""
        out = np.zeros(self.n_slots, dtype=bool)
        proposable = self._offer.proposable
        out[: len(proposable)] = proposable
        return out

    def _decide(self, slot: int, level: int) -> None:
        """The action as the driver's decision: the slot's solution at the rule's bid (level 0)
        or at ``reserve + (value - reserve) * level / (L - 1)``; no proposal otherwise."""
        assert self.driver is not None
        offer = self._offer
        if slot >= self.n_slots or not self._available()[slot]:
            self.driver.decide(None)
            return
        price = None
        if level > 0:
            reserve, value = offer.reserve_price[slot], offer.value[slot]
            price = bid_level_price(reserve, value, level, self.n_levels)
        self.driver.decide(slot, price)

    def _reward(self, completed: list[TransactionRecord]) -> float:
        """The raw reward of the transactions completed since the last step."""
        if self.reward_kind == "social_welfare":
            return float(sum(record.social_welfare for record in completed))
        return client_utility(completed, self.focal)

    def _shown_rule_slot(self) -> int:
        """The rule's choice as the agent sees it (its position in this round's slot order)."""
        rule = self._rule
        return rule if rule == self.n_slots else int(np.flatnonzero(self._view == rule)[0])

    def _observation(self) -> np.ndarray:
        obs = np.zeros(SLOT_FEATURES * self.n_slots + GLOBAL_FEATURES, dtype=np.float32)
        market = self.market
        if market is None:
            return obs
        slots = obs[: SLOT_FEATURES * self.n_slots].reshape(self.n_slots, SLOT_FEATURES)
        vs = self.value_scale
        offer = self._offer
        if offer.max_rounds:  # a matching is under way
            k = len(offer.proposable)
            slots[:k, 0] = offer.proposable
            slots[:k, 1] = offer.value / vs
            slots[:k, 2] = offer.rule_bid / vs
            slots[:k, 3] = offer.utility_at_rule_bid / vs
            slots[:k, 5] = offer.bs_volunteer_rate
            if self._rule < self.n_slots:
                slots[self._rule, 4] = 1.0
            slots[:] = slots[self._view]
        contracts = market.contracts
        mine = np.flatnonzero(contracts.client == self.focal)
        glob = obs[SLOT_FEATURES * self.n_slots:]
        glob[0] = 0.0 if self.phase == "signing" else 1.0
        glob[1] = offer.round / offer.max_rounds if offer.max_rounds else 0.0
        glob[2] = market.n_transactions_done / max(self.n_transactions, 1)
        glob[3] = market.scenario.mu_participation[self.focal_mu]
        glob[4] = float(mine.size > 0)
        glob[5] = contracts.pay[mine[0]] / vs if mine.size else 0.0
        return np.clip(obs, -1.0, 2.0)

    def _info(self) -> dict[str, Any]:
        market = self.market
        assert market is not None
        info: dict[str, Any] = {"phase": self.phase,
                                "transaction": market.n_transactions_done,
                                "action_mask": self._available()[self._view],
                                "rule_slot": self._shown_rule_slot()}
        if market.transactions:
            tx = market.transactions[-1]
            info.update(transaction_metrics(tx))
            if self.include_runtime:
                info["rt_ms"] = tx.runtime_ms
        return info
