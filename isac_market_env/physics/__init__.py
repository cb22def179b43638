"""Physical layer: channel, communication value (eq. 10-12), sensing value (eq. 22-24)."""

from isac_market_env.physics.channel import (
    comm_rate_mbps,
    comm_value,
    gain_to_noise_per_subchannel,
    sensing_accuracy_coefficient,
    sensing_value,
)

__all__ = [
    "comm_rate_mbps",
    "comm_value",
    "gain_to_noise_per_subchannel",
    "sensing_accuracy_coefficient",
    "sensing_value",
]
