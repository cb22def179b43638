"""``ISACMarket-Overbooking-v0``: learn the BSs' overbooking rates under drifting participation."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from isac_market_env.envs.common import check_reset_options, step_error, validate_action
from isac_market_env.envs.options import OverbookingOptions
from isac_market_env.envs.render import render_ansi, render_frame
from isac_market_env.market.market import Market
from isac_market_env.market.periods import ContractPeriods
from isac_market_env.metrics.episode import net_welfare, per_bs_execution

# the observation's layout, named: per BS these features, then the global ones
BS_FEATURE_NAMES = ("bandwidth_supply_share", "power_supply_share", "rdsl_bandwidth",
                    "rdsl_power", "drlc", "bandwidth_rate_fraction")
GLOBAL_FEATURE_NAMES = ("presence_last_period", "participation_mean_next", "period_fraction",
                        "sw_share_last_period")
N_BS_FEATURES = len(BS_FEATURE_NAMES)
N_GLOBAL_FEATURES = len(GLOBAL_FEATURE_NAMES)



class ISACMarketOverbookingEnv(gym.Env[np.ndarray, np.ndarray]):
    """The FRBank market over a run of contract periods; the agent sets the overbooking rates.

    ## Description
    An episode is ``n_periods`` contract periods on one market (BSs, MUs, targets fixed). Each step
    is one period: the agent sets every BS's bandwidth and power overbooking rates (eq. 37c/37d),
    then the mechanism signs long-term contracts (offRFW2M) and runs ``transactions_per_period``
    practical transactions (volunteers, onEBW2M). Between periods the MUs' participation
    probabilities drift: a market-wide shift ``s`` follows ``s <- 0.8 s + N(0, drift_std)`` and
    every MU adds its own ``N(0, drift_std / 4)`` step, clipped to [0.05, 0.99]; so the rate that
    pays changes over the episode.

    ## Action space
    ``Box(-1, 1, (2 * n_bss,), float32)``: ``a = [a_B_1..a_B_n, a_P_1..a_P_n]``, each mapped
    linearly onto a rate in [0, ``max_overbooking``]: ``O = (a + 1) / 2 * max_overbooking``
    (the symmetric, normalised range SB3 recommends: a Gaussian policy that starts at its mean 0
    starts at the middle rate, not clipped to one end).

    ## Observation space
    ``Box(-1, 5, (6 * n_bss + 4,), float32)``, per BS: bandwidth and power supply over the
    largest BS's; last period's mean RDSL for bandwidth and power; the share of its contracts that
    defaulted (DRLC); the rate it last used (/ max_overbooking). Global: the MUs' realised
    participation rate last period, the MUs' mean participation probability for the coming
    period (known to the market, as a_i is in the paper), the period index / n_periods, and
    last period's SW as a share of the most it could have delivered (W transactions in which
    every client is present and gets its most valuable solution): at most 1 without fading,
    0.36-0.98 on markets of 5 to 150 MUs, EUA and scarce supply; with ``sw_scale`` set, last
    period's SW / ``sw_scale`` instead. ``observation_features`` names every entry
    (``bs<j>.<feature>`` with ``BS_FEATURE_NAMES``, then ``GLOBAL_FEATURE_NAMES``).

    ## Info
    ``period``, the rates used, ``participation_mean``, ``phase`` and the period's episode
    summary (``social_welfare``, ``mu_utility``, ``bs_utility``, ``ni``, ``dibc_ms``, ``ecibc_j``,
    ``drlc``, ``rdsl_*``, ...; ``rt_*`` only with ``include_runtime=True``).

    ## Reward
    ``reward="social_welfare"`` (default): the period's social welfare (sum of all utilities =
    delivered value), so the return is the episode's SW. ``reward="utility"``: the BSs' total
    utility. ``reward="net_welfare"``: the period's SW minus the price of its interaction
    overhead (signing and online; ``MarketConfig.overhead_price_per_joule`` and
    ``overhead_price_per_ms``, docs/model.md), the reward under which overbooking can pay: it
    cuts online interactions at a little SW. By default (``reward_scale=None``) each is divided
    by the most the first period could deliver (W transactions in which every client is
    present and gets its most valuable solution; one constant per episode, so the best policy
    is unchanged): rewards are O(1), about the SW share of the observation, which PPO's value
    function needs.
    A number multiplies the raw value instead (the training configs of docs/training.md set
    0.01). ``info`` carries the raw values.

    ## Episode end
    Terminates after ``n_periods`` steps; never truncates.

    ## Arguments
    ``scenario`` (preset name), ``n_mus`` (default: the preset's, 50 synthetic, 140 EUA),
    ``n_periods`` (10),
    ``transactions_per_period`` (W = 20), ``mechanism`` ("frbank"; any mechanism with offline
    contracts and overbooking), ``max_overbooking`` (0.6), ``drift_std`` (0.08),
    ``reward`` and ``reward_scale`` (None: the normalisation above), ``sw_scale`` (None: the
    share above),
    ``render_mode`` ("ansi" or "rgb_array"),
    ``scenario_overrides`` / ``market_overrides`` / ``physics_overrides`` (dicts, validated), and
    ``eua_directory``, ``include_runtime`` (False: wall-clock RT in ``info`` would make identical
    seeds give different infos), ``workers`` (1: threads for each period's transactions,
    ``Market.run(workers=N)``; the same periods, faster on several cores). Period k of a seed
    uses market seed ``[seed, k]`` (period 0:
    ``seed`` itself, so a one-period episode with no drift equals
    ``simulate(mechanism, seed=seed)``).

    ## Version history
    * v0: initial release. Rewards are normalised by default (they were the raw values:
      ``reward_scale=1.0`` gives them back); ``n_mus`` defaults to the preset's size (it was
      20); ``reset`` refuses options (they were ignored); ``rgb_array`` frames are 760 x 540
      with a legend and state (they were 400 x 400 dots). Keyword arguments are validated
      as they are given, not coerced (``n_transactions=2.5``, ``include_runtime="False"`` are
      errors; they were truncated / read as True), ``reward_scale`` must be in (0, 1e6], and
      a config that would not fit in memory is refused at construction
      (``isac_market_env.envs.options``).
      The last-period SW feature is a share of the period's most
      deliverable value by default; it was SW / 1000 (``sw_scale=1000``), which saturated at
      the observation bound 5 from about 50 MUs. ``render()`` right after ``reset()`` draws
      the first period's market before its signing phase (it returned None, which Gymnasium's
      checker flags for ``rgb_array``). The action space is [-1, 1] (it was [0, 1], the
      rate over ``max_overbooking``; SB3's checker warned, and PPO's Gaussian policy, which
      starts at 0, started half its samples clipped to rate 0).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 2}  # noqa: RUF012
    ARGUMENTS: ClassVar[set[str]] = OverbookingOptions.argument_names()

    def __init__(self, **kwargs: Any) -> None:
        self.options = options = OverbookingOptions.from_kwargs(kwargs)
        self.scenario_name = options.scenario
        self.n_periods = options.n_periods
        self.window = options.transactions_per_period
        self.max_overbooking = options.max_overbooking
        self.drift_std = options.drift_std
        self.reward_kind = options.reward
        self.reward_scale = options.reward_scale
        self.sw_scale = options.sw_scale
        self.eua_directory = options.eua_directory
        self.render_mode = options.render_mode
        self.include_runtime = options.include_runtime
        self.workers = options.workers
        self.spec_mechanism = options.spec
        self.config = options.config
        n_bss = self.config.scenario.n_bss
        self.action_space = spaces.Box(-1.0, 1.0, (2 * n_bss,), np.float32)
        self.observation_space = spaces.Box(-1.0, 5.0, (N_BS_FEATURES * n_bss + N_GLOBAL_FEATURES,),
                                            np.float32)
        self.observation_features = [f"bs{j}.{name}" for j in range(n_bss)
                                     for name in BS_FEATURE_NAMES] + list(GLOBAL_FEATURE_NAMES)
        self.market: Market | None = None
        self.periods: ContractPeriods | None = None
        self._done = True

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        check_reset_options("ISACMarket-Overbooking-v0", options)
        self.episode_seed = (int(seed) if seed is not None
                             else int(self.np_random.integers(0, 2**31 - 1)))
        self.periods = ContractPeriods(self.scenario_name, self.config, self.spec_mechanism,
                                       self.episode_seed, self.drift_std, self.eua_directory)
        self._done = False
        self._last: dict[str, Any] = {}
        self._last_rates = np.zeros(2 * self.periods.base_scenario.n_bss)
        self._sw_total = 0.0
        self.market = None
        # the default reward's constant: the most the first period could deliver
        most = self.window * float(self.periods.preview_market().book.best_values().sum())
        self._reward_factor = 1.0 / most if most > 0 else 0.0
        return self._observation(), {"period": 0, "participation_mean": float(
            self.periods.participation.mean())}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        periods = self.periods
        if self._done or periods is None:
            raise RuntimeError(step_error(periods is None))
        act = validate_action(action, self.action_space).astype(np.float64)
        n_bss = periods.base_scenario.n_bss
        fractions = (act + 1.0) / 2.0  # of max_overbooking
        rates = fractions * self.max_overbooking
        self.market = periods.next_market(rates)
        scenario = self.market.scenario
        summary = self.market.run(self.workers).summary()
        reward_value = (summary["social_welfare"] if self.reward_kind == "social_welfare"
                        else summary["bs_utility"] if self.reward_kind == "utility"
                        else net_welfare(summary, self.config.market))
        reward = reward_value * (self._reward_factor if self.reward_scale is None
                                 else self.reward_scale)
        self._last = self._period_features(summary)
        self._sw_total += summary["social_welfare"]
        self._last_rates = fractions
        periods.drift()
        terminated = periods.period >= self.n_periods
        self._done = terminated
        info = {"period": periods.period, "overbooking_bandwidth": rates[:n_bss].tolist(),
                "overbooking_power": rates[n_bss:].tolist(),
                "participation_mean": float(scenario.mu_participation.mean()),
                "phase": "contract_period",
                **{k: v for k, v in summary.items()
                   if self.include_runtime or not k.startswith("rt_")}}
        return self._observation(), float(reward), terminated, False, info

    def render(self) -> Any:  # str (ansi), an RGB array (rgb_array) or None
        """The last period's market; before the first step, the first period's market before
        its signing phase (BSs, MUs and targets, no contracts yet)."""
        if self.render_mode is None or self.periods is None:
            return None
        market = self.market
        if market is None:  # its own streams: drawing nothing from the first period's
            market = self.periods.preview_market()
        period = self.periods.period
        if self.render_mode == "ansi":
            return render_ansi(market, f"ISACMarket-Overbooking-v0, period {period}")
        rates = self._last_rates * self.max_overbooking
        n_bss = len(rates) // 2
        title = (f"ISACMarket-Overbooking-v0: periods done {period}/{self.n_periods} "
                 f"({self.window} transactions each); last rates B {rates[:n_bss].mean():.2f}, "
                 f"P {rates[n_bss:].mean():.2f} (mean); SW so far {self._sw_total:.1f}")
        return render_frame(market, title)

    # ------------------------------------------------------------------ internals
    def _period_features(self, summary: dict[str, float]) -> dict[str, Any]:
        assert self.market is not None
        txs = self.market.transactions
        per_bs = per_bs_execution(self.market.contracts.bs, txs, self.market.scenario.n_bss)
        return {"rdsl_b": per_bs["rdsl_bandwidth"], "rdsl_p": per_bs["rdsl_power"],
                "drlc": per_bs["drlc"],
                "presence": float(np.mean([tx.mu_present.mean() for tx in txs])),
                "sw_share": self._sw_share(summary["social_welfare"], len(txs))}

    def _sw_share(self, social_welfare: float, n_transactions: int) -> float:
        """The period's SW over ``sw_scale``, or by default over the most it could deliver:
        ``n_transactions`` times every client's most valuable solution."""
        if self.sw_scale is not None:
            return social_welfare / self.sw_scale if self.sw_scale > 0 else 0.0
        most = n_transactions * self._most_per_transaction()
        return social_welfare / most if most > 0 else 0.0

    def _most_per_transaction(self) -> float:
        """The most one transaction of this period's market can deliver: every client present
        with its most valuable solution (sensing values follow the drifting participation)."""
        assert self.market is not None
        return float(self.market.book.best_values().sum())

    def _observation(self) -> np.ndarray:
        assert self.periods is not None
        sc = self.periods.base_scenario
        n_bss = sc.n_bss
        last = self._last
        per_bs = np.column_stack([
            sc.bs_bandwidth_hz / sc.bs_bandwidth_hz.max(), sc.bs_power_w / sc.bs_power_w.max(),
            last.get("rdsl_b", np.zeros(n_bss)), last.get("rdsl_p", np.zeros(n_bss)),
            last.get("drlc", np.zeros(n_bss)), self._last_rates[:n_bss]])
        glob = np.array([last.get("presence", 0.0), float(self.periods.participation.mean()),
                         self.periods.period / self.n_periods,
                         last.get("sw_share", 0.0)])
        obs = np.concatenate([per_bs.reshape(-1), glob]).astype(np.float32)
        return np.clip(obs, -1.0, 5.0)
