"""The envs' keyword arguments as frozen, validated configs: one place, the same rules for all.

``gym.make(id, **kwargs)`` and ``parallel_env(**kwargs)`` hand their kwargs to
``<Env>Options.from_kwargs``: unknown names are an error listing the valid ones, and every value
is checked by ``isac_market_env.validation`` (numpy numbers pass, bools are not numbers, strings
are not numbers or bools, nothing is coerced before it is checked). Each options object also
holds the validated ``EpisodeConfig`` its env builds markets from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from isac_market_env.config import MAX_OVERBOOKING, EpisodeConfig
from isac_market_env.market.variants import MechanismSpec, get_mechanism
from isac_market_env.memory import check_memory
from isac_market_env.simulate import make_episode_config
from isac_market_env.validation import (
    check_bool,
    check_choice,
    check_float,
    check_integer,
    check_mapping,
    check_path,
)

RENDER_MODES = ("ansi", "rgb_array")
SLOT_ORDERS = ("fixed", "ranked")
DEFAULT_RATE_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
# a reward_scale above this (an sw_scale below its inverse) would turn finite rewards into
# overflows, not scale them
MAX_SCALE = 1e6
MAX_BID_LEVELS = 1000  # the action space has 1 + K L actions
OptionsT = TypeVar("OptionsT", bound="EnvOptions")


def _set(options: Any, name: str, value: Any) -> None:
    object.__setattr__(options, name, value)


@dataclass(frozen=True)
class EnvOptions:
    """Arguments every env takes (see each env's docstring for what they mean there)."""

    ENV_NAME: ClassVar[str] = "env"
    REWARDS: ClassVar[tuple[str, ...]] = ("social_welfare", "utility")
    DEFAULT_REWARD: ClassVar[str] = "social_welfare"
    TRANSACTIONS_ARGUMENT: ClassVar[str] = "n_transactions"

    scenario: str = "paper-synthetic"
    n_mus: int | None = None
    mechanism: str | MechanismSpec = "frbank"
    reward: str | None = None
    reward_scale: float | None = None
    render_mode: str | None = None
    scenario_overrides: Mapping[str, Any] | None = None
    market_overrides: Mapping[str, Any] | None = None
    physics_overrides: Mapping[str, Any] | None = None
    eua_directory: str | Path | None = None
    config: EpisodeConfig = field(init=False, repr=False)

    @classmethod
    def from_kwargs(cls: type[OptionsT], kwargs: Mapping[str, Any]) -> OptionsT:
        """Validated options from an env's keyword arguments (unknown names are an error)."""
        names = cls.argument_names()
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ValueError(f"{cls.ENV_NAME}: unknown argument(s) {', '.join(unknown)}; "
                             f"valid: {', '.join(sorted(names))}")
        return cls(**kwargs)

    @classmethod
    def argument_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls) if f.init}

    def __post_init__(self) -> None:
        prefix = f"{self.ENV_NAME}: "
        try:
            self._validate()
        except (TypeError, ValueError) as error:
            message = str(error)
            raise type(error)(message if message.startswith(prefix) else prefix + message) \
                from None

    def _validate(self) -> None:
        if self.n_mus is not None:
            _set(self, "n_mus", check_integer("n_mus", self.n_mus, 1))
        _set(self, "mechanism", get_mechanism(self.mechanism))
        _set(self, "reward", check_choice("reward", self.DEFAULT_REWARD if self.reward is None
                                          else self.reward, self.REWARDS))
        if self.reward_scale is not None:
            _set(self, "reward_scale", check_float("reward_scale", self.reward_scale, 0,
                                                   MAX_SCALE, low_open=True))
        if self.render_mode is not None:
            check_choice("render_mode", self.render_mode, RENDER_MODES)
        for name in ("scenario_overrides", "market_overrides", "physics_overrides"):
            _set(self, name, check_mapping(name, getattr(self, name)))
        _set(self, "eua_directory", check_path("eua_directory", self.eua_directory))

    def _episode_config(self, n_transactions: int) -> None:
        _set(self, "config", make_episode_config(
            self.scenario, self.n_mus, n_transactions,
            scenario_overrides=self.scenario_overrides, market_overrides=self.market_overrides,
            physics_overrides=self.physics_overrides))
        # refused now, not at the first reset
        check_memory(self.config, transactions_argument=self.TRANSACTIONS_ARGUMENT)

    @property
    def spec(self) -> MechanismSpec:
        """The mechanism's spec (``mechanism`` is normalised to one)."""
        assert isinstance(self.mechanism, MechanismSpec)
        return self.mechanism


@dataclass(frozen=True)
class BiddingOptions(EnvOptions):
    """``ISACMarket-Bidding-v0``'s arguments."""

    ENV_NAME: ClassVar[str] = "ISACMarket-Bidding-v0"

    n_transactions: int = 10
    focal_mu: int = 0
    n_bid_levels: int = 6
    slot_order: str = "fixed"
    include_runtime: bool = False

    def _validate(self) -> None:
        super()._validate()
        _set(self, "n_transactions", check_integer("n_transactions", self.n_transactions, 1))
        _set(self, "n_bid_levels", check_integer("n_bid_levels", self.n_bid_levels, 2,
                                                 MAX_BID_LEVELS))
        _set(self, "slot_order", check_choice("slot_order", self.slot_order, SLOT_ORDERS))
        _set(self, "include_runtime", check_bool("include_runtime", self.include_runtime))
        spec = self.spec
        if spec.online not in ("matching", "none") or (
                not spec.offline and spec.online != "matching"):
            raise ValueError("mechanism must use the ascending-price matching "
                             "(frbank, cononline, conoffline, hybrid, hybrido and -nor variants)")
        self._episode_config(self.n_transactions)
        _set(self, "focal_mu", check_integer("focal_mu", self.focal_mu, 0,
                                             self.config.scenario.n_mus - 1))


@dataclass(frozen=True)
class OverbookingOptions(EnvOptions):
    """``ISACMarket-Overbooking-v0``'s arguments."""

    ENV_NAME: ClassVar[str] = "ISACMarket-Overbooking-v0"
    REWARDS: ClassVar[tuple[str, ...]] = ("social_welfare", "utility", "net_welfare")
    TRANSACTIONS_ARGUMENT: ClassVar[str] = "transactions_per_period"

    n_periods: int = 10
    transactions_per_period: int = 20
    max_overbooking: float = 0.6
    drift_std: float = 0.08
    sw_scale: float | None = None
    include_runtime: bool = False
    workers: int = 1

    def _validate(self) -> None:
        super()._validate()
        _set(self, "n_periods", check_integer("n_periods", self.n_periods, 1))
        _set(self, "workers", check_integer("workers", self.workers, 1, 64))
        _set(self, "transactions_per_period", check_integer(
            "transactions_per_period", self.transactions_per_period, 1))
        _set(self, "max_overbooking", check_float("max_overbooking", self.max_overbooking, 0,
                                                  MAX_OVERBOOKING))
        _set(self, "drift_std", check_float("drift_std", self.drift_std, 0))
        if self.sw_scale is not None:
            _set(self, "sw_scale", check_float("sw_scale", self.sw_scale, 1 / MAX_SCALE))
        _set(self, "include_runtime", check_bool("include_runtime", self.include_runtime))
        if not self.spec.offline or not self.spec.overbooking:
            raise ValueError("mechanism must sign contracts with overbooking "
                             "(frbank, hybrido, frbank-nor, hybrido-nor)")
        self._episode_config(self.transactions_per_period)


@dataclass(frozen=True)
class MarketGameOptions(EnvOptions):
    """``isac_market_v0``'s (the PettingZoo game's) arguments; ``n_periods`` defaults to 1, or
    5 with BS agents."""

    ENV_NAME: ClassVar[str] = "isac_market_v0"
    REWARDS: ClassVar[tuple[str, ...]] = ("utility", "social_welfare", "net_welfare")
    DEFAULT_REWARD: ClassVar[str] = "utility"

    n_transactions: int = 10
    n_bid_levels: int = 6
    bs_agents: bool = False
    n_periods: int | None = None
    drift_std: float = 0.08
    overbooking_levels: tuple[float, ...] = DEFAULT_RATE_LEVELS

    def _validate(self) -> None:
        super()._validate()
        _set(self, "n_transactions", check_integer("n_transactions", self.n_transactions, 1))
        _set(self, "n_bid_levels", check_integer("n_bid_levels", self.n_bid_levels, 2,
                                                 MAX_BID_LEVELS))
        _set(self, "bs_agents", check_bool("bs_agents", self.bs_agents))
        _set(self, "n_periods", check_integer("n_periods", (5 if self.bs_agents else 1)
                                              if self.n_periods is None else self.n_periods, 1))
        _set(self, "drift_std", check_float("drift_std", self.drift_std, 0))
        levels = self.overbooking_levels
        if isinstance(levels, str | bytes) or not hasattr(levels, "__len__") or not len(levels):
            raise TypeError(f"overbooking_levels must be a non-empty list of rates >= 0, got "
                            f"{levels!r}")
        _set(self, "overbooking_levels", tuple(check_float("overbooking_levels", rate, 0,
                                                           MAX_OVERBOOKING) for rate in levels))
        spec = self.spec
        if not (spec.coalitions and spec.offline and spec.overbooking
                and spec.online == "matching"):
            raise ValueError("mechanism must be FRBank's (sensing coalitions, contracts with "
                             "overbooking, the online matching): frbank or frbank-nor")
        self._episode_config(self.n_transactions)
