"""Clients of the market and their feasible solutions (paper Sec. II-A, Definitions 2, 5, 6).

Every MU is an individual client for communication. For sensing, MUs with the same target form one
coalition (team client) or, without coalitions, every MU is its own sensing client. A solution is
a (BS, bandwidth, power) point of the request grid that meets the client's requirement (eq. 38d,
38e, 38f, 38g). Arrays are flat over all solutions and sorted by client.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from isac_market_env.config import MarketConfig, PhysicsConfig, ScenarioConfig
from isac_market_env.physics.channel import (
    comm_rate_mbps,
    comm_value,
    gain_to_noise_per_subchannel,
    sensing_accuracy_coefficient,
    sensing_accuracy_per_m,
    sensing_value,
)
from isac_market_env.scenarios.scenario import Scenario

COMM = 0
SENSING = 1


def request_grid(config: ScenarioConfig) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Bandwidth levels (whole sub-channels) and power levels (W) of one request."""
    lo, hi = config.request_subchannels_range
    subchannels = np.unique(np.round(np.linspace(lo, hi, config.n_bandwidth_levels)).astype(
        np.int64))
    power = np.linspace(*config.request_power_range_w, config.n_power_levels)
    return subchannels, power


@dataclass(frozen=True, eq=False)
class ClientBook:
    """All clients (comm MUs first, then sensing clients) and all their feasible solutions.

    Client arrays: ``client_kind`` (COMM/SENSING), ``client_members`` (MU indices; a CSR layout in
    ``member_index`` / ``member_start``), ``client_presence_prob`` (E[alpha_i] or E[beta_k] of
    eq. 65). Solution arrays (``sol_*``): client, BS, sub-channels, bandwidth (Hz), power (W), the
    client's expected value (eq. 12 or ``|c_k| E[V_s^max]``), the sensing gain
    ``P**w2 * N**w3`` used for realised sensing values, and the reserve price p_min.
    """

    n_mus: int
    coalitions: bool
    client_kind: NDArray[np.int64]
    member_index: NDArray[np.int64]
    member_start: NDArray[np.int64]
    client_size: NDArray[np.int64]
    client_presence_prob: NDArray[np.float64]
    sol_client: NDArray[np.int64]
    sol_bs: NDArray[np.int64]
    sol_subchannels: NDArray[np.int64]
    sol_bandwidth_hz: NDArray[np.float64]
    sol_power_w: NDArray[np.float64]
    sol_value: NDArray[np.float64]
    sol_sensing_gain: NDArray[np.float64]
    sol_reserve_price: NDArray[np.float64]
    sensing_kappa: NDArray[np.float64]
    gain_to_noise: NDArray[np.float64]
    physics: PhysicsConfig

    @property
    def n_clients(self) -> int:
        return len(self.client_kind)

    @property
    def n_solutions(self) -> int:
        return len(self.sol_client)

    def best_values(self) -> NDArray[np.float64]:
        """Every client's most valuable solution's expected value (0 for a client without
        solutions): their sum is the most one transaction can deliver with everyone present
        (without fading), the scale the envs normalise rewards and observations by."""
        best = np.zeros(self.n_clients)
        np.maximum.at(best, self.sol_client, self.sol_value)
        return best

    def members(self, client: int) -> NDArray[np.int64]:
        return self.member_index[self.member_start[client]:self.member_start[client + 1]]

    def client_present(self, mu_present: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Realised presence of every client: alpha_i, or beta_k = any member present."""
        hits = np.add.reduceat(mu_present[self.member_index].astype(np.int64),
                               self.member_start[:-1])
        return np.asarray(hits > 0)

    def realised_values(self, solutions: NDArray[np.int64],
                        mu_present: NDArray[np.bool_],
                        fading_gain: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """Value delivered by each given solution in a transaction with presence ``mu_present``.

        Comm: eq. 12 (with the MU's small-scale fading power gain when fading is on). Sensing:
        ``|c_k| * max over present members of V_s`` (eq. 26 and its footnote 4), or the number
        of present members times that max (``coalition_value_members="present"``).
        """
        values = np.empty(len(solutions), dtype=np.float64)
        clients = self.sol_client[solutions]
        comm = self.client_kind[clients] == COMM
        s = solutions[comm]
        if fading_gain is None:
            values[comm] = self.sol_value[s]
        else:
            mu = self.member_index[self.member_start[clients[comm]]]
            xi = self.gain_to_noise[mu, self.sol_bs[s]] * fading_gain[mu]
            values[comm] = comm_value(self.sol_subchannels[s], self.sol_power_w[s], xi,
                                      self.physics)
        if np.all(comm):
            return values
        best = self.present_max_kappa(mu_present)
        s = solutions[~comm]
        c = self.sol_client[s]
        accuracy = np.minimum(best[c, self.sol_bs[s]] * self.sol_sensing_gain[s],
                              self.physics.sensing_accuracy_cap_per_m)
        if self.physics.coalition_value_members == "present":
            members = np.add.reduceat(mu_present[self.member_index].astype(np.float64),
                                      self.member_start[:-1])[c]
        else:
            members = self.client_size[c]
        values[~comm] = members * self.physics.sensing_value_weight * accuracy
        return values

    def present_max_kappa(self, mu_present: NDArray[np.bool_]) -> NDArray[np.float64]:
        """(n_clients, n_bss): best sensing coefficient among each client's present members."""
        masked = self.sensing_kappa[self.member_index] * mu_present[self.member_index][:, None]
        return np.asarray(np.maximum.reduceat(masked, self.member_start[:-1], axis=0))


def build_client_book(scenario: Scenario, scenario_config: ScenarioConfig,
                      physics: PhysicsConfig, market: MarketConfig,
                      coalitions: bool) -> ClientBook:
    """Clients and their feasible solution grids for one scenario and client structure."""
    subchannels, power = request_grid(scenario_config)
    grid_n = np.repeat(subchannels, len(power)).astype(np.float64)
    grid_p = np.tile(power, len(subchannels))
    with np.errstate(all="ignore"):  # overflow is reported by name below, not as a warning
        return _build(scenario, scenario_config, physics, market, coalitions, grid_n, grid_p)


# the config fields each derived quantity depends on (named when it is not finite)
CHANNEL_FIELDS = ("path_loss_at_1km_db", "path_loss_slope_db_per_decade", "min_distance_m",
                  "noise_psd_dbm_per_hz", "noise_figure_db", "subchannel_bandwidth_hz",
                  "area_side_m", "bs_tx_antennas_range", "mu_rx_antennas_range")
SENSING_FIELDS = (*CHANNEL_FIELDS, "speed_of_light_m_per_s", "sensing_capability",
                  "sensing_reference_subchannels")
VALUE_FIELDS = (*SENSING_FIELDS, "comm_value_per_mbps", "sensing_value_weight",
                "sensing_power_exponent", "sensing_bandwidth_exponent",
                "sensing_accuracy_cap_per_m", "request_subchannels_range",
                "request_power_range_w")


def check_derived(quantity: str, values: NDArray[np.float64], fields: tuple[str, ...],
                  configs: tuple[object, ...], positive: bool = False) -> None:
    """Refuse a market that would carry a non-finite (or, for gains, non-positive) number: a
    ValueError naming the quantity and the fields it comes from, those set away from their
    defaults first (the likely cause)."""
    bad = ~np.isfinite(values) | (values <= 0 if positive else values < 0)
    if not np.any(bad):
        return
    changed: list[str] = []
    unchanged: list[str] = []
    for config in configs:
        default = type(config)()
        for name in fields:
            if hasattr(config, name):
                value = getattr(config, name)
                (unchanged if value == getattr(default, name) else changed).append(
                    f"{name}={value!r}")
    sample = float(values[bad].flat[0])
    cause = (f"set away from the default: {', '.join(changed)}" if changed
             else f"from {', '.join(unchanged)}")
    raise ValueError(f"the market would carry a {quantity} of {sample!r} "
                     f"({'finite and > 0' if positive else 'finite and >= 0'} required); "
                     f"it comes from the config fields {cause}")


def _build(scenario: Scenario, scenario_config: ScenarioConfig, physics: PhysicsConfig,
           market: MarketConfig, coalitions: bool, grid_n: NDArray[np.float64],
           grid_p: NDArray[np.float64]) -> ClientBook:
    n_mus, n_bss = scenario.n_mus, scenario.n_bss
    n_grid = len(grid_n)
    configs = (physics, scenario_config)
    xi = gain_to_noise_per_subchannel(scenario.mu_xy_m, scenario.bs_xy_m, scenario.mu_rx_antennas,
                                      scenario.bs_tx_antennas, physics)
    check_derived("channel gain-to-noise ratio", xi, CHANNEL_FIELDS, configs, positive=True)
    kappa = sensing_accuracy_coefficient(scenario.mu_xy_m, scenario.target_xy_m[scenario.mu_target],
                                         scenario.bs_xy_m, scenario.mu_rx_antennas,
                                         scenario.bs_tx_antennas, physics)
    check_derived("sensing accuracy coefficient kappa", kappa, SENSING_FIELDS, configs,
                  positive=True)
    a = scenario.mu_participation
    # --- clients -------------------------------------------------------------------------------
    if coalitions:
        targets = np.unique(scenario.mu_target)
        groups = [np.flatnonzero(scenario.mu_target == t) for t in targets]
    else:
        groups = [np.array([i]) for i in range(n_mus)]
    member_lists = [np.array([i]) for i in range(n_mus)] + groups
    member_index = np.concatenate(member_lists).astype(np.int64)
    member_start = np.concatenate([[0], np.cumsum([len(g) for g in member_lists])]).astype(np.int64)
    client_size = np.array([len(g) for g in member_lists], dtype=np.int64)
    client_kind = np.array([COMM] * n_mus + [SENSING] * len(groups), dtype=np.int64)
    presence = np.concatenate([a, [1.0 - np.prod(1.0 - a[g]) for g in groups]])
    # --- solutions: (client, bs, grid point) -------------------------------------------------
    sqrt_np = np.power(grid_p, physics.sensing_power_exponent) * np.power(
        grid_n, physics.sensing_bandwidth_exponent)
    comm_vals = comm_value(grid_n[None, None, :], grid_p[None, None, :], xi[:, :, None], physics)
    comm_rate = comm_rate_mbps(grid_n[None, None, :], grid_p[None, None, :], xi[:, :, None],
                               physics)
    comm_ok = comm_rate >= scenario.mu_rate_requirement_mbps[:, None, None]
    sens_vals = np.empty((len(groups), n_bss, n_grid))
    sens_ok = np.empty((len(groups), n_bss, n_grid), dtype=bool)
    for k, g in enumerate(groups):
        rep = g[np.argmax(kappa[g], axis=0)]  # representative per BS: highest sensing value
        accuracy = sensing_accuracy_per_m(kappa[rep, np.arange(n_bss)][:, None], grid_n[None, :],
                                          grid_p[None, :], physics)
        sens_ok[k] = accuracy >= scenario.mu_sensing_requirement_per_m[rep][:, None]
        member_values = sensing_value(kappa[g][:, :, None], grid_n, grid_p, physics)
        expected_max = (a[g][:, None, None] * member_values).max(axis=0)  # E[V_s^max] (App. B)
        # |c_k| (eq. 26), or the expected number of present members given the coalition is
        # present (``coalition_value_members="present"``)
        present = 1.0 - np.prod(1.0 - a[g])
        counted = (a[g].sum() / present if physics.coalition_value_members == "present"
                   and present > 0 else len(g))
        sens_vals[k] = counted * expected_max
    values = np.concatenate([comm_vals, sens_vals]).reshape(-1)
    ok = np.concatenate([comm_ok, sens_ok]).reshape(-1)
    n_clients = n_mus + len(groups)
    sol_client = np.repeat(np.arange(n_clients), n_bss * n_grid)
    sol_bs = np.tile(np.repeat(np.arange(n_bss), n_grid), n_clients)
    sol_n = np.tile(grid_n, n_clients * n_bss)
    sol_p = np.tile(grid_p, n_clients * n_bss)
    reserve = (market.reserve_price_per_mhz * sol_n * physics.subchannel_bandwidth_hz / 1e6
               + market.reserve_price_per_w * sol_p)
    check_derived("solution value", values, VALUE_FIELDS, configs)
    check_derived("reserve price", reserve, ("reserve_price_per_mhz", "reserve_price_per_w",
                                             "subchannel_bandwidth_hz"), (market, physics))
    keep = np.flatnonzero(ok & (values > reserve))
    book = ClientBook(
        n_mus=n_mus, coalitions=coalitions, client_kind=client_kind, member_index=member_index,
        member_start=member_start, client_size=client_size, client_presence_prob=presence,
        sol_client=sol_client[keep], sol_bs=sol_bs[keep],
        sol_subchannels=sol_n[keep].astype(np.int64),
        sol_bandwidth_hz=sol_n[keep] * physics.subchannel_bandwidth_hz,
        sol_power_w=sol_p[keep], sol_value=values[keep],
        sol_sensing_gain=np.tile(sqrt_np, n_clients * n_bss)[keep],
        sol_reserve_price=reserve[keep], sensing_kappa=kappa, gain_to_noise=xi, physics=physics,
    )
    return book
