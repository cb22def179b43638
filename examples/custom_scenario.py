"""A custom market: your own scenario arrays, config overrides, and the step-by-step API."""

import numpy as np

from isac_market_env.config import EpisodeConfig, MarketConfig, ScenarioConfig
from isac_market_env.market import Market
from isac_market_env.scenarios import Scenario

rng = np.random.default_rng(7)
n_mus, n_bss = 12, 3
scenario = Scenario(
    name="three-towers",
    mu_xy_m=rng.uniform(0, 600, (n_mus, 2)),
    mu_target=rng.integers(0, 3, n_mus),
    mu_rate_requirement_mbps=np.full(n_mus, 5.0),
    mu_sensing_requirement_per_m=np.full(n_mus, 10.0),
    mu_rx_antennas=np.full(n_mus, 4),
    mu_participation=rng.uniform(0.5, 0.9, n_mus),
    bs_xy_m=np.array([[100.0, 100.0], [500.0, 100.0], [300.0, 500.0]]),
    bs_bandwidth_hz=np.full(n_bss, 20e6),
    bs_power_w=np.full(n_bss, 20.0),
    bs_tx_antennas=np.full(n_bss, 8),
    target_xy_m=np.array([[150.0, 300.0], [450.0, 300.0], [300.0, 150.0]]),
)
config = EpisodeConfig(scenario=ScenarioConfig(n_bss=n_bss, n_mus=n_mus, n_targets=3),
                       market=MarketConfig(overbooking_bandwidth=0.3, overbooking_power=0.3),
                       n_transactions=10)
market = Market(scenario, config, "frbank", seed=0)
signing = market.sign()
print(f"{len(signing.contracts)} contracts in {signing.rounds} rounds")
for _ in range(config.n_transactions):
    tx = market.transact()
    print(f"transaction {tx.index}: SW {tx.social_welfare:7.2f}, "
          f"{len(tx.contract_volunteered)} volunteers, {int(tx.alloc_online.sum())} online")
print(f"DRLC {market.result().summary()['drlc']:.3f}")
