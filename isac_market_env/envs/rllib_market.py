"""RLlib's view of the multi-agent market (``isac_market_env.envs.multiagent``).

``RLlibMarketEnv`` is a ``ray.rllib.env.MultiAgentEnv`` in which only the agent types being
learned (``learning``: any of "mu", "coalition", "bs") are RLlib's agents; every other agent
plays FRBank's rule (its ``rule_action``). A learner gets an observation only at the steps at
which it has a decision (its mask allows more than the no-op); the steps at which no learner
decides are played inside, and the rewards earned meanwhile reach each learner with its next
observation (RLlib adds rewards given without an observation to the agent's next step).
Observations are ``{"observations": ..., "action_mask": float32}``, the layout of RLlib's
action-masking RLModule. Needs the ``marl`` extra.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from isac_market_env.envs.multiagent import (
    AGENT_TYPES,
    NO_OP,
    ISACMarketParallelEnv,
    agent_type,
)

RLLIB_ENV_NAME = "isac_market_v0"


class RLlibMarketEnv(MultiAgentEnv):
    """The market for RLlib: ``config`` is ``parallel_env``'s keyword arguments plus
    ``learning`` (default every type present)."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        kwargs = dict(config or {})
        learning = tuple(kwargs.pop("learning", AGENT_TYPES))
        self.market_env = ISACMarketParallelEnv(**kwargs)
        present = {agent_type(a) for a in self.market_env.possible_agents}
        unknown = sorted(set(learning) - set(AGENT_TYPES))
        if unknown or not learning:
            raise ValueError(f"learning must name agent types among {AGENT_TYPES}, got "
                             f"{list(learning)}")
        if "bs" in learning and "bs" not in present:
            raise ValueError("learning 'bs' needs bs_agents=True")
        self.learning = tuple(t for t in AGENT_TYPES if t in learning)
        self.possible_agents: list[Any] = [a for a in self.market_env.possible_agents
                                           if agent_type(a) in self.learning]
        self.agents: list[Any] = []
        names: list[str] = list(self.possible_agents)
        observation_spaces: dict[str, Any] = {a: self._space(a) for a in names}
        action_spaces: dict[str, Any] = {a: self.market_env.action_space(a) for a in names}
        self.observation_spaces = observation_spaces  # type: ignore[assignment]
        self.action_spaces = action_spaces  # type: ignore[assignment]
        self.observation_space = spaces.Dict(observation_spaces)
        self.action_space = spaces.Dict(action_spaces)
        self._carry: dict[str, float] = {}

    def _space(self, agent: str) -> spaces.Dict:
        inner: Any = self.market_env.observation_space(agent)
        n = inner["action_mask"].shape[0]
        return spaces.Dict({"observations": inner["observation"],
                            "action_mask": spaces.Box(0.0, 1.0, (n,), np.float32)})

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[Any, Any], dict[Any, Any]]:
        self._obs, self._infos = self.market_env.reset(seed=seed, options=options)
        self.agents = [a for a in self.market_env.agents if agent_type(a) in self.learning]
        self._carry = dict.fromkeys(self.agents, 0.0)
        done = self._play_until_a_learner_decides()
        if done:  # no learner ever decides in this episode: nothing to learn from it
            return {}, {}
        return self._learner_view()

    def step(self, action_dict: dict[Any, Any]  # type: ignore[override]
             ) -> tuple[dict[Any, Any], dict[Any, Any], dict[Any, Any], dict[Any, Any],
                        dict[Any, Any]]:
        done = self._step_inner(action_dict) or self._play_until_a_learner_decides()
        rewards, self._carry = self._carry, dict.fromkeys(self.agents, 0.0)
        obs, infos = ({}, {}) if done else self._learner_view()
        terminateds = {a: done for a in self.agents} | {"__all__": done}
        truncateds = {a: False for a in self.agents} | {"__all__": False}
        return obs, rewards, terminateds, truncateds, infos

    # ------------------------------------------------------------------ internals
    def _deciding(self) -> list[str]:
        return [a for a in self.agents if self._obs[a]["action_mask"].sum() > 1]

    def _learner_view(self) -> tuple[dict[str, Any], dict[str, Any]]:
        obs = {a: {"observations": self._obs[a]["observation"],
                   "action_mask": self._obs[a]["action_mask"].astype(np.float32)}
               for a in self._deciding()}
        return obs, {a: self._infos[a] for a in obs}

    def _step_inner(self, learner_actions: dict[str, Any]) -> bool:
        """One step of the market: learners' actions, everyone else's rule; True when over."""
        actions = {a: info["rule_action"] for a, info in self._infos.items()
                   if agent_type(a) not in self.learning}
        actions.update({a: int(v) for a, v in learner_actions.items()})
        outcome = self.market_env.step(actions)
        self._absorb(outcome)
        terminations = outcome[2]
        return bool(terminations) and all(terminations.values())

    def _play_until_a_learner_decides(self) -> bool:
        clients_learn = any(t in self.learning for t in ("mu", "coalition"))
        while self.market_env.agents:
            if self._deciding():
                return False
            if not clients_learn and self.market_env.driver is not None:
                # only the BSs learn: the period's rounds in compiled runs, as simulate plays
                self._absorb(self.market_env.step_clients_by_rule())
                if not self.market_env.agents:
                    return True
                continue
            if self._step_inner({a: NO_OP for a in self.agents}):
                return True
        return True

    def _absorb(self, outcome: tuple[Any, ...]) -> None:
        self._obs, rewards, _, _, self._infos = outcome
        for a in self.agents:
            self._carry[a] += rewards[a]


def make_rllib_market_env(config: dict[str, Any] | None = None) -> RLlibMarketEnv:
    """The env creator RLlib's runners call (registered as ``isac_market_v0``)."""
    return RLlibMarketEnv(dict(config or {}))


def register_rllib_env() -> str:
    """Register the creator with Ray Tune under ``RLLIB_ENV_NAME`` and return the name."""
    from ray.tune.registry import register_env

    register_env(RLLIB_ENV_NAME, make_rllib_market_env)
    return RLLIB_ENV_NAME
