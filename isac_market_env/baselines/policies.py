"""Reference and heuristic policies for ``ISACMarket-Bidding-v0`` / ``ISACMarket-Overbooking-v0``.

Each has SB3's ``predict(observation, state=None, episode_start=None, deterministic=True) ->
(action, state)`` and accepts a single observation or a batch (vectorised envs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from isac_market_env.envs import bidding, overbooking

RULE_CHOICE = bidding.SLOT_FEATURE_NAMES.index("is_rule_choice")
PARTICIPATION_NEXT = overbooking.GLOBAL_FEATURE_NAMES.index("participation_mean_next")


def _n_bss(obs: np.ndarray) -> int:
    """The BSs of an Overbooking-v0 observation (its per-BS blocks)."""
    return (len(obs) - overbooking.N_GLOBAL_FEATURES) // overbooking.N_BS_FEATURES


class _Policy:
    def _act(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, observation: np.ndarray, state: Any = None,
                episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        obs = np.asarray(observation, dtype=np.float64)
        if obs.ndim == 1:
            return self._act(obs), state
        return np.stack([self._act(row) for row in obs]), state


class FRBankBiddingPolicy(_Policy):
    """FRBank's own bidding: propose the rule's choice at the rule's ascending bid (level 0).

    Run in ``ISACMarket-Bidding-v0`` it reproduces ``simulate("frbank", seed=s)`` exactly.
    """

    def _act(self, obs: np.ndarray) -> np.ndarray:
        width = bidding.SLOT_FEATURES
        n_slots = (len(obs) - bidding.GLOBAL_FEATURES) // width
        choice = obs[: n_slots * width].reshape(n_slots, width)[:, RULE_CHOICE]
        slot = int(np.argmax(choice)) if choice.max() > 0.5 else n_slots
        return np.array([slot, 0], dtype=np.int64)


def overbooking_action(rate: float, max_overbooking: float) -> float:
    """The Overbooking-v0 action in [-1, 1] that sets ``rate`` (the env maps a to
    ``(a + 1) / 2 * max_overbooking``)."""
    return 2.0 * rate / max_overbooking - 1.0 if max_overbooking > 0 else -1.0


class FixedOverbookingPolicy(_Policy):
    """The same overbooking rate for every BS and resource (paper default 0.2)."""

    def __init__(self, rate: float = 0.2, max_overbooking: float = 0.6) -> None:
        if not 0 <= rate <= max_overbooking:
            raise ValueError(f"rate must be in [0, {max_overbooking}], got {rate}")
        self.action = overbooking_action(rate, max_overbooking)

    def _act(self, obs: np.ndarray) -> np.ndarray:
        return np.full(2 * _n_bss(obs), self.action, dtype=np.float32)


class NewsvendorOverbookingPolicy(_Policy):
    """Book so that the expected present demand matches supply: ``1 + O = 1 / p``.

    ``p`` is the MUs' mean participation probability for the coming period (an observation).
    Volunteering costs PelS = Pay while idle supply costs the same Pay in lost revenue, so the
    newsvendor's critical ratio is 1/2 and the median (~ mean) presence is the right quantile;
    ``safety`` shrinks the rate for risk-averse BSs.
    """

    def __init__(self, max_overbooking: float = 0.6, safety: float = 0.0) -> None:
        self.max_overbooking = max_overbooking
        self.safety = safety

    def _act(self, obs: np.ndarray) -> np.ndarray:
        n_bss = _n_bss(obs)
        p = float(np.clip(obs[n_bss * overbooking.N_BS_FEATURES + PARTICIPATION_NEXT], 0.05, 1.0))
        rate = float(np.clip(1.0 / p - 1.0 - self.safety, 0.0, self.max_overbooking))
        return np.full(2 * n_bss, overbooking_action(rate, self.max_overbooking),
                       dtype=np.float32)


def make_policy(name: str, **kwargs: Any) -> _Policy:
    """``frbank`` (bidding), ``fixed`` or ``newsvendor`` (overbooking)."""
    table = {"frbank": FRBankBiddingPolicy, "fixed": FixedOverbookingPolicy,
             "newsvendor": NewsvendorOverbookingPolicy}
    if name not in table:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(table)}")
    return table[name](**kwargs)
