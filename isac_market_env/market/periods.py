"""Contract periods: one market (BSs, MUs, targets) signing anew period after period, with
each BS's overbooking rates chosen per period while the MUs' participation drifts.

A period is a whole episode of the mechanism (signing, then W practical transactions) on the
base scenario with the period's participation probabilities. Between periods a market-wide
shift ``s <- 0.8 s + N(0, drift_std)`` and every MU's own ``N(0, drift_std / 4)`` step move
the probabilities (clipped to [0.05, 0.99]), so the rate that pays changes over the run.

Seeds: period 0 uses the episode seed's own streams, so one period without drift is
``simulate(mechanism, seed=seed)``; period k >= 1 uses the streams of ``SeedSequence([seed,
k])``; the drift draws come from ``SeedSequence([seed, DRIFT_STREAM_KEY])``. (Spawning the drift
as one more child of the episode's streams would be the tidier rule, but it would change every
published Overbooking-v0 number; the keys are fixed here, in one place.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from isac_market_env.config import EpisodeConfig
from isac_market_env.market.market import EpisodeStreams, Market
from isac_market_env.market.variants import MechanismSpec
from isac_market_env.scenarios.presets import build_scenario

DRIFT_STREAM_KEY = 1_000_003
PARTICIPATION_BOUNDS = (0.05, 0.99)
SHIFT_MEMORY = 0.8


class ContractPeriods:
    """The run of contract periods of one seed (``next_market`` builds the coming period's
    market with the rates given, ``drift`` moves participation to the next period)."""

    def __init__(self, scenario_name: str, config: EpisodeConfig, mechanism: MechanismSpec,
                 seed: int, drift_std: float, eua_directory: str | Path | None = None) -> None:
        self.config, self.mechanism, self.seed, self.drift_std = config, mechanism, seed, drift_std
        self._first_streams = EpisodeStreams.from_seed(seed)
        self.base_scenario = build_scenario(scenario_name, config.scenario,
                                            self._first_streams.scenario, eua_directory)
        self._drift_rng = np.random.default_rng([seed, DRIFT_STREAM_KEY])
        self._shift = 0.0
        self.participation: NDArray[np.float64] = self.base_scenario.mu_participation.copy()
        self.period = 0

    def preview_market(self) -> Market:
        """The coming period's market at the configured rates, on streams of its own (it
        draws nothing from the period's): for a frame or a constant before any signing."""
        return self._market(self.config, EpisodeStreams.from_seed(self.seed))

    def next_market(self, rates: NDArray[np.float64]) -> Market:
        """The coming period's market (not yet run) with per-BS overbooking rates ``rates =
        [O_B_1..O_B_n, O_P_1..O_P_n]`` (eq. 37c/37d)."""
        n_bss = self.base_scenario.n_bss
        pairs = tuple((float(rates[j]), float(rates[n_bss + j])) for j in range(n_bss))
        config = dataclasses.replace(
            self.config, market=dataclasses.replace(self.config.market,
                                                    overbooking_per_bs=pairs))
        streams = (self._first_streams if self.period == 0
                   else EpisodeStreams.from_seed(np.random.SeedSequence([self.seed,
                                                                         self.period])))
        return self._market(config, streams)

    def drift(self) -> None:
        """Close the period: participation moves to the next period's."""
        rng = self._drift_rng
        self._shift = SHIFT_MEMORY * self._shift + rng.normal(0.0, self.drift_std)
        own = rng.normal(0.0, self.drift_std / 4.0, self.base_scenario.n_mus)
        self.participation = np.clip(self.base_scenario.mu_participation + self._shift + own,
                                     *PARTICIPATION_BOUNDS)
        self.period += 1

    def _market(self, config: EpisodeConfig, streams: EpisodeStreams) -> Market:
        return Market(self.base_scenario.with_participation(self.participation), config,
                      self.mechanism, seed=self.seed, streams=streams)
