"""Frozen, validated configuration of the market (units in every field name).

Defaults follow the FRBank paper (Sec. V) and the choices of docs/model.md; see there for the
calibration of the value weights. Every config validates itself on construction and raises a
``ValueError`` (a bad value) or ``TypeError`` (a value of the wrong kind) that names the
offending field, so nothing half-built ever reaches the simulator (``validation.py``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from isac_market_env.validation import (
    check_bool,
    check_choice,
    check_float,
    check_integer,
    check_mapping,
    check_number_range,
)

T = TypeVar("T")
MAX_OVERBOOKING = 10.0


def _set(config: Any, name: str, value: Any) -> None:
    """Store the normalised value of a frozen field (numpy scalars become Python numbers)."""
    object.__setattr__(config, name, value)


def _number(config: Any, name: str, low: float | None = None, high: float | None = None,
            low_open: bool = False, integer: bool = False) -> None:
    """Validate field ``name`` (a finite number in the bounds) and store it normalised."""
    value = getattr(config, name)
    if integer:
        _set(config, name, check_integer(name, value, None if low is None else math.ceil(low),
                                         None if high is None else math.floor(high)))
        if low_open and low is not None and getattr(config, name) == low:
            raise ValueError(f"{name} must be > {low}, got {value!r}")
    else:
        _set(config, name, check_float(name, value, low, high, low_open))


def _range(config: Any, name: str, low: float | None = None, high: float | None = None,
           low_open: bool = False, integer: bool = False) -> None:
    """Validate a (min, max) field and store it as a normalised tuple."""
    _set(config, name, check_number_range(name, getattr(config, name), low, high, low_open,
                                          integer))


def replace_from_mapping(base: T, overrides: Mapping[str, Any] | None,
                         argument: str = "overrides") -> T:
    """Return ``base`` with ``overrides`` applied; unknown keys are a ValueError naming them.

    This is the only place where a dict enters the configuration (the ``gym.make`` / CLI boundary).
    Lists are turned into tuples so that range fields can come from JSON.
    """
    overrides = check_mapping(argument, overrides)
    names = {f.name for f in dataclasses.fields(base)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(
            f"{argument}: unknown key(s) {', '.join(unknown)} (not {type(base).__name__} "
            f"fields); "
            f"valid keys: {', '.join(sorted(names))}"
        )
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return dataclasses.replace(base, **clean)  # type: ignore[type-var]


COALITION_VALUE_MEMBERS = ("all", "present")
REUSE_CONFLICTS = ("angle", "distance")


@dataclass(frozen=True)
class PhysicsConfig:
    """Channel, communication value (eq. 10-12) and sensing value (eq. 22-24, 59-64).

    ``coalition_value_members``: whom a coalition's sensing value counts, ``"all"`` its
    members (|c_k| V^max, eq. 26 as written) or ``"present"`` the members present in the
    transaction (docs/model.md, Clients, contracts, utilities).
    """

    subchannel_bandwidth_hz: float = 180e3
    noise_psd_dbm_per_hz: float = -174.0
    noise_figure_db: float = 9.0
    path_loss_at_1km_db: float = 128.1
    path_loss_slope_db_per_decade: float = 37.6
    min_distance_m: float = 10.0
    comm_value_per_mbps: float = 0.1
    sensing_value_weight: float = 0.2
    sensing_power_exponent: float = 0.5
    sensing_bandwidth_exponent: float = 0.5
    sensing_reference_subchannels: int = 40
    sensing_capability: float = 1.0
    sensing_accuracy_cap_per_m: float = 100.0
    speed_of_light_m_per_s: float = 299_792_458.0
    rayleigh_fading: bool = False
    coalition_value_members: str = "all"

    def __post_init__(self) -> None:
        _number(self, "subchannel_bandwidth_hz", 0, low_open=True)
        # dB fields within +-300 dB: their linear values (10**(x/10)) stay finite in float64
        _number(self, "noise_psd_dbm_per_hz", -300, 300)
        _number(self, "noise_figure_db", 0, 300)
        _number(self, "path_loss_at_1km_db", -300, 300)
        _number(self, "path_loss_slope_db_per_decade", 0, 300)
        _number(self, "min_distance_m", 0, low_open=True)
        _number(self, "comm_value_per_mbps", 0, low_open=True)
        _number(self, "sensing_value_weight", 0, low_open=True)
        _number(self, "sensing_power_exponent", 0, 1)
        _number(self, "sensing_bandwidth_exponent", 0, 1)
        _number(self, "sensing_reference_subchannels", 1,
                      integer=True)
        _number(self, "sensing_capability", 0, low_open=True)
        _number(self, "sensing_accuracy_cap_per_m", 0,
                      low_open=True)
        _number(self, "speed_of_light_m_per_s", 0, low_open=True)
        _set(self, "rayleigh_fading", check_bool("rayleigh_fading", self.rayleigh_fading))
        check_choice("coalition_value_members", self.coalition_value_members,
                     COALITION_VALUE_MEMBERS)


@dataclass(frozen=True)
class ScenarioConfig:
    """Size and parameter ranges of a synthetic market (paper Sec. V; docs/model.md, Entities).

    Each MU draws its parameters uniformly from the ranges; every BS likewise. The resource grid of
    one request is ``n_bandwidth_levels`` whole-sub-channel bandwidths in
    ``request_subchannels_range`` times ``n_power_levels`` powers in ``request_power_range_w``.
    ``eua_max_extent_km``: the EUA loader refuses a data set whose sites and users span more
    (a wrong or mixed file; the Melbourne CBD spans about 2 km).
    """

    n_bss: int = 5
    n_mus: int = 50
    n_targets: int = 8
    area_side_m: float = 1000.0
    bs_bandwidth_range_mhz: tuple[float, float] = (80.0, 120.0)
    bs_power_range_dbw: tuple[float, float] = (10.0, 20.0)
    bs_tx_antennas_range: tuple[int, int] = (8, 16)
    mu_rx_antennas_range: tuple[int, int] = (4, 8)
    participation_range: tuple[float, float] = (0.64, 0.96)
    rate_requirement_range_mbps: tuple[float, float] = (0.01, 10.0)
    sensing_requirement_range_per_m: tuple[float, float] = (1.0, 100.0)
    request_subchannels_range: tuple[int, int] = (10, 80)
    request_power_range_w: tuple[float, float] = (1.0, 8.0)
    n_bandwidth_levels: int = 3
    n_power_levels: int = 3
    eua_max_extent_km: float = 100.0

    def __post_init__(self) -> None:
        _number(self, "n_bss", 1, integer=True)
        _number(self, "n_mus", 1, integer=True)
        _number(self, "n_targets", 1, integer=True)
        _number(self, "area_side_m", 0, low_open=True)
        _range(self, "bs_bandwidth_range_mhz", 0, low_open=True)
        _range(self, "bs_power_range_dbw", -300, 300)  # 10**(x/10) W stays finite
        # (arrays beyond 4096 elements are far past massive MIMO's 64-1024)
        _range(self, "bs_tx_antennas_range", 1, 4096, integer=True)
        _range(self, "mu_rx_antennas_range", 1, 4096, integer=True)
        _range(self, "participation_range", 0, 1)
        _range(self, "rate_requirement_range_mbps", 0)
        _range(self, "sensing_requirement_range_per_m", 0)
        _range(self, "request_subchannels_range", 1, integer=True)
        _range(self, "request_power_range_w", 0, low_open=True)
        _number(self, "n_bandwidth_levels", 1, integer=True)
        _number(self, "n_power_levels", 1, integer=True)
        _number(self, "eua_max_extent_km", 0, low_open=True)


@dataclass(frozen=True)
class MarketConfig:
    """Contract terms, risk limits, matching parameters and overhead model (docs/model.md).

    A rejected bid rises by ``max(bid_increment, bid_increment_fraction * value)`` (the paper's
    Delta p, per solution). ``overbooking_bandwidth`` / ``overbooking_power`` are O_B, O_P of
    eq. 37c/37d (one rate for every BS unless ``overbooking_per_bs`` is given as ``(O_B, O_P)``
    pairs). ``risk_*`` are
    rho_1..rho_4 of eq. 37e/37f/38h/38i in their tractable forms eq. 69-74. ``max_rounds`` is a
    safety cap on matching rounds (the matching ends on its own; hitting the cap is reported as
    not converged). ``knapsack_node_limit`` is how many branch-and-bound nodes a BS's client
    selection may take before it goes to the typed search or HiGHS: every value gives a
    selection optimal to 1e-6, but where several sets are that good, different limits can keep
    different ones (and so give different episodes). The search runs compiled with numba (the
    ``fast`` extra, ~0.1 us per node) and in CPython without it (~3.5 us per node); the default
    suits both (docs/performance.md).
    ``overhead_price_per_joule`` / ``overhead_price_per_ms`` price the interaction overhead
    (ECIBC, DIBC) in the net welfare, SW minus that price (``net_welfare`` rewards); defaults
    0.1 per J (the power reserve price per W over a one-second slot) and 0 per ms (the energy
    already grows with the delay), docs/model.md.
    ``strategic_breach``: a present client whose realised value falls so far below its payment
    that being served costs it more than PelU breaks the contract (pays PelU, may buy online);
    the paper's Sec. V, footnote 7. Off, contracts fail only by absence or volunteering.
    ``volunteer_rate_per_client``: a tentative contract is valued at its own E[v] (eq. 66-67,
    the probability that the BS's volunteer rule picks it when it is present); off, at its BS's
    average, E[#volunteers] / E[#present]. A new proposal is valued at the BS's average.
    The other seeds' mechanisms (docs/mechanisms.md): ``reuse_conflict`` (``"angle"``: the BS
    array separates MUs by angle; ``"distance"``: MUs closer than ``reuse_interference_range_m``
    conflict) for D-FRONT and C-FRONT; ``pricing_max_iterations`` caps the price iterations of
    the pricing matching; ``negotiation_tolerance`` is chi (and chi') of the centralized and
    bargaining negotiations, relative to the value at stake. The cooperative block trade
    (seed 002): a BS's ``cooperative_massive_share`` of its residual supply is its massive block,
    the rest small blocks of ``cooperative_small_block_mhz``; ``primary_return_rate`` is the
    probability that the BS's own demand takes a block back during the slot;
    ``cooperative_max_rounds`` caps the switch rounds.
    """

    overbooking_bandwidth: float = 0.2
    overbooking_power: float = 0.2
    overbooking_per_bs: tuple[tuple[float, float], ...] | None = None
    risk_bs_bandwidth: float = 0.95
    risk_bs_power: float = 0.95
    risk_client_comm: float = 0.5
    risk_client_sensing: float = 0.5
    utility_threshold_comm: float = 0.0
    utility_threshold_sensing: float = 0.0
    penalty_client_ratio: float = 0.3
    penalty_bs_ratio: float = 1.0
    bid_increment: float = 0.25
    bid_increment_fraction: float = 0.1
    reserve_price_per_mhz: float = 0.1
    reserve_price_per_w: float = 0.1
    max_rounds: int = 10000
    max_revivals: int = 10
    knapsack_node_limit: int = 30_000  # mechanisms.knapsack.DEFAULT_NODE_LIMIT
    volunteer_exact_max_contracts: int = 16
    volunteer_mc_samples: int = 512
    interaction_delay_range_ms: tuple[float, float] = (1.0, 15.0)
    mu_tx_power_range_w: tuple[float, float] = (0.2, 0.4)
    bs_tx_power_range_w: tuple[float, float] = (6.0, 20.0)
    overhead_price_per_joule: float = 0.1
    overhead_price_per_ms: float = 0.0
    strategic_breach: bool = True
    volunteer_rate_per_client: bool = True
    reuse_conflict: str = "angle"
    reuse_interference_range_m: float = 500.0
    pricing_max_iterations: int = 50
    negotiation_tolerance: float = 1e-4
    cooperative_massive_share: float = 0.5
    cooperative_small_block_mhz: float = 2.0
    primary_return_rate: float = 0.2
    cooperative_max_rounds: int = 50

    def __post_init__(self) -> None:
        # (eq. 37c/37d allow any rate >= 0; above 10, i.e. 1000 %, a BS books eleven times its
        # supply, beyond any overbooking practice, and products with it could overflow)
        _number(self, "overbooking_bandwidth", 0, MAX_OVERBOOKING)
        _number(self, "overbooking_power", 0, MAX_OVERBOOKING)
        if self.overbooking_per_bs is not None:
            pairs = self.overbooking_per_bs
            if not isinstance(pairs, tuple | list):
                raise TypeError(f"overbooking_per_bs must be a tuple of (O_B, O_P) pairs, got "
                                f"{pairs!r}")
            _set(self, "overbooking_per_bs", tuple(
                check_number_range("overbooking_per_bs", pair, 0, MAX_OVERBOOKING, ordered=False)
                for pair in pairs))
        for name in ("risk_bs_bandwidth", "risk_bs_power", "risk_client_comm",
                     "risk_client_sensing"):
            _number(self, name, 0, 1, low_open=True)
        _number(self, "utility_threshold_comm")
        _number(self, "utility_threshold_sensing")
        _number(self, "penalty_client_ratio", 0, 1e6)
        _number(self, "penalty_bs_ratio", 0, 1e6)
        _number(self, "bid_increment", 0, low_open=True)
        _number(self, "bid_increment_fraction", 0, 1)
        _number(self, "reserve_price_per_mhz", 0)
        _number(self, "reserve_price_per_w", 0)
        _number(self, "max_rounds", 1, 10**9, integer=True)
        _number(self, "max_revivals", 0, 10**6, integer=True)
        _set(self, "strategic_breach", check_bool("strategic_breach", self.strategic_breach))
        _set(self, "volunteer_rate_per_client",
             check_bool("volunteer_rate_per_client", self.volunteer_rate_per_client))
        # (the compiled search counts nodes in 64-bit integers)
        _number(self, "knapsack_node_limit", 1, 10**12, integer=True)
        _number(self, "volunteer_exact_max_contracts", 0, 20,
                      integer=True)
        _number(self, "volunteer_mc_samples", 1, integer=True)
        _range(self, "interaction_delay_range_ms", 0)
        _range(self, "mu_tx_power_range_w", 0)
        _range(self, "bs_tx_power_range_w", 0)
        _number(self, "overhead_price_per_joule", 0)
        _number(self, "overhead_price_per_ms", 0)
        check_choice("reuse_conflict", self.reuse_conflict, REUSE_CONFLICTS)
        _number(self, "reuse_interference_range_m", 0, low_open=True)
        _number(self, "pricing_max_iterations", 1, 10**6, integer=True)
        _number(self, "negotiation_tolerance", 0, 1, low_open=True)
        _number(self, "cooperative_massive_share", 0, 1, low_open=True)
        _number(self, "cooperative_small_block_mhz", 0, 1e9, low_open=True)
        _number(self, "primary_return_rate", 0, 1)
        _number(self, "cooperative_max_rounds", 1, 10**6, integer=True)

    def overbooking_rates(self, n_bss: int) -> tuple[list[float], list[float]]:
        """Per-BS (O_B, O_P) lists; validates that a per-BS setting has one pair per BS."""
        if self.overbooking_per_bs is None:
            return [self.overbooking_bandwidth] * n_bss, [self.overbooking_power] * n_bss
        if len(self.overbooking_per_bs) != n_bss:
            raise ValueError(
                f"overbooking_per_bs has {len(self.overbooking_per_bs)} pairs but the market has "
                f"{n_bss} BSs"
            )
        return ([float(p[0]) for p in self.overbooking_per_bs],
                [float(p[1]) for p in self.overbooking_per_bs])


@dataclass(frozen=True)
class EpisodeConfig:
    """What one ``simulate`` call runs: scenario + market parameters + transaction count."""

    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    market: MarketConfig = field(default_factory=MarketConfig)
    n_transactions: int = 20

    def __post_init__(self) -> None:
        for name, kind in (("scenario", ScenarioConfig), ("physics", PhysicsConfig),
                           ("market", MarketConfig)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"EpisodeConfig.{name} must be a {kind.__name__}, got "
                                f"{getattr(self, name)!r}")
        _number(self, "n_transactions", 1, integer=True)


@dataclass(frozen=True)
class IsccConfig:
    """The multi-domain (sensing, communication, computing) market of seed 004 (ISCC for
    multimodal federated perception; docs/mechanisms.md, Seed 004), scenario and economics.

    Defaults are the seed's Table 1 where it gives a number (500 m x 500 m, 50 clients, 100
    targets of 10 types, one server, 28 GHz, 400 MHz, 10 s, 1e6 CPU cycles/s, 500 cycles per
    sample, 100 Mbit models, 50 m visual sensing radius, 20 fps, 10 Mbit frames, 55 / 26 dBm,
    -180 / -115 dB sensitivities, 30 m/s) and our documented choices where it does not
    (participation, the edge server's pools, prices, the value of learning gain).
    ``time_factor``, ``frequency_factor``, ``computing_factor`` scale the time, frequency and
    computing resources (the clients' caps and the servers' pools) for the seed's Fig. 11
    shortages (1 : 1 : 1 is resource-sufficient). ``gain_demand``: the application's demand
    for learning gain per round (the seed's theta_0 + Delta_theta, eq. 2.15): gain beyond it is
    not paid for (None: no cap; the default 20 is about a third of what 50 clients can deliver
    when resources are sufficient). ``max_working_clients``: at most this many clients work
    in a round (None: no limit; the seed's Fig. 5 and 8 sweep it). ``selection_time_limit_s``:
    HiGHS's limit per round; a round it stops keeps the best selection found by then, which can
    differ between machines (raise it for bit-for-bit reproducibility).
    """

    n_clients: int = 50
    n_targets: int = 100
    n_target_types: int = 10
    n_servers: int = 1
    area_side_m: float = 500.0
    max_speed_m_per_s: float = 30.0
    participation_range: tuple[float, float] = (0.7, 1.0)
    round_time_s: float = 10.0
    carrier_ghz: float = 28.0
    server_bandwidth_mhz: float = 20_000.0
    client_bandwidth_mhz: float = 400.0
    client_computing_cycles_per_s: float = 1e6
    server_computing_cycles_per_s: float = 5e7
    cycles_per_sample: float = 500.0
    global_model_mbit: float = 100.0
    local_model_mbit: float = 100.0
    visual_radius_m: float = 50.0
    camera_fps: float = 20.0
    target_sample_ratio: float = 10.0
    wireless_sample_mbit: float = 10.0
    server_tx_power_dbm: float = 55.0
    client_tx_power_dbm: float = 26.0
    wireless_sensing_sensitivity_dbw: float = -180.0
    communication_sensitivity_dbw: float = -115.0
    target_rcs_m2: float = 1.0
    max_active_clients: int = 50
    time_factor: float = 1.0
    frequency_factor: float = 1.0
    computing_factor: float = 1.0
    price_per_s: float = 1.0
    price_per_mhz: float = 1.0 / 36.0
    price_per_cycle_per_s: float = 1e-5
    gain_per_iid_sample: float = 1e-4
    price_per_gain: float = 300.0
    price_per_sample: float = 0.02
    gain_demand: float | None = 20.0
    platform_weight: float = 1.0
    client_weight: float = 1.0
    workload_levels: int = 16
    max_working_clients: int | None = None
    selection_time_limit_s: float = 2.0

    def __post_init__(self) -> None:
        for name in ("n_clients", "n_targets", "n_target_types", "n_servers",
                     "max_active_clients"):
            _number(self, name, 1, 10**6, integer=True)
        _number(self, "workload_levels", 1, 1000, integer=True)
        # a radio carrier, 1 kHz to 1 PHz (the radar equation squares its wavelength: a carrier
        # of 1e-300 GHz overflows it)
        _number(self, "carrier_ghz", 1e-6, 1e6)
        for name in ("area_side_m", "round_time_s", "server_bandwidth_mhz",
                     "client_bandwidth_mhz", "client_computing_cycles_per_s",
                     "server_computing_cycles_per_s", "cycles_per_sample", "global_model_mbit",
                     "local_model_mbit", "visual_radius_m", "camera_fps", "target_sample_ratio",
                     "wireless_sample_mbit", "target_rcs_m2", "time_factor", "frequency_factor",
                     "computing_factor", "price_per_s", "price_per_mhz", "price_per_cycle_per_s",
                     "gain_per_iid_sample", "selection_time_limit_s"):
            _number(self, name, 0, 1e30, low_open=True)
        for name in ("max_speed_m_per_s", "price_per_gain", "price_per_sample",
                     "platform_weight", "client_weight"):
            _number(self, name, 0, 1e30)
        for name in ("server_tx_power_dbm", "client_tx_power_dbm",
                     "wireless_sensing_sensitivity_dbw", "communication_sensitivity_dbw"):
            _number(self, name, -300, 300)
        _range(self, "participation_range", 0, 1)
        if self.gain_demand is not None:
            _number(self, "gain_demand", 0, 1e30)
        if self.max_working_clients is not None:
            _number(self, "max_working_clients", 0, 10**6, integer=True)
        if self.platform_weight + self.client_weight == 0:
            raise ValueError("platform_weight and client_weight cannot both be 0")
