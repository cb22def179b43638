"""Channel gains and the two service values of the FRBank paper, vectorised over (MU, BS) pairs.

* Communication (eq. 10-12): ``V_c = w1 * B * log2(1 + B0 * P * xi / B)`` with ``xi`` the
  gain-to-noise ratio of one sub-channel, rate in Mbit/s.
* Sensing (eq. 22-24, 59-64): device-free localisation of the MU's target with the BS's reference
  signal. The PEB is ``zeta / sqrt(N * P)``; ``kappa = capability / zeta`` so that
  ``1 / PEB = kappa * P**w2 * N**w3`` and ``V_s = w4 / PEB``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from isac_market_env.config import PhysicsConfig

FloatArray = NDArray[np.float64]


def path_loss_linear(distance_m: FloatArray, physics: PhysicsConfig) -> FloatArray:
    """Linear path loss ``128.1 + 37.6 log10(d / 1 km)`` dB with ``d >= min_distance_m``."""
    d_km = np.maximum(distance_m, physics.min_distance_m) / 1000.0
    loss_db = physics.path_loss_at_1km_db + physics.path_loss_slope_db_per_decade * np.log10(d_km)
    return np.asarray(10.0 ** (loss_db / 10.0), dtype=np.float64)


def noise_power_per_subchannel_w(physics: PhysicsConfig) -> float:
    """Thermal noise power of one sub-channel in watts (PSD + noise figure)."""
    psd_w_per_hz = np.float64(10.0) ** (
        (physics.noise_psd_dbm_per_hz + physics.noise_figure_db - 30.0) / 10.0)
    return float(psd_w_per_hz * physics.subchannel_bandwidth_hz)


def pairwise_distance_m(a_xy: FloatArray, b_xy: FloatArray) -> FloatArray:
    """Euclidean distances between every row of ``a_xy`` (n, 2) and ``b_xy`` (m, 2): (n, m)."""
    diff = a_xy[:, None, :] - b_xy[None, :, :]
    return np.asarray(np.hypot(diff[..., 0], diff[..., 1]), dtype=np.float64)


def gain_to_noise_per_subchannel(mu_xy_m: FloatArray, bs_xy_m: FloatArray,
                                 mu_rx_antennas: NDArray[np.int64],
                                 bs_tx_antennas: NDArray[np.int64],
                                 physics: PhysicsConfig) -> FloatArray:
    """``xi_ij`` of eq. 7/8 for |h|^2 = 1: array gain N_T N_R / (path loss x sub-channel noise)."""
    array_gain = mu_rx_antennas[:, None].astype(np.float64) * bs_tx_antennas[None, :]
    loss = path_loss_linear(pairwise_distance_m(mu_xy_m, bs_xy_m), physics)
    return np.asarray(array_gain / loss / noise_power_per_subchannel_w(physics), dtype=np.float64)


def comm_rate_mbps(subchannels: FloatArray, power_w: FloatArray, gain_to_noise: FloatArray,
                   physics: PhysicsConfig) -> FloatArray:
    """Achievable rate of eq. 10 in Mbit/s: ``N B0 log2(1 + P xi / N)`` (broadcasts)."""
    n = np.asarray(subchannels, dtype=np.float64)
    rate_bps = n * physics.subchannel_bandwidth_hz * np.log2(1.0 + power_w * gain_to_noise / n)
    return np.asarray(rate_bps / 1e6, dtype=np.float64)


def comm_value(subchannels: FloatArray, power_w: FloatArray, gain_to_noise: FloatArray,
               physics: PhysicsConfig) -> FloatArray:
    """Communication value of eq. 12: ``w1 * R`` with R in Mbit/s."""
    return physics.comm_value_per_mbps * comm_rate_mbps(subchannels, power_w, gain_to_noise,
                                                        physics)


def sensing_accuracy_coefficient(mu_xy_m: FloatArray, mu_target_xy_m: FloatArray,
                                 bs_xy_m: FloatArray, mu_rx_antennas: NDArray[np.int64],
                                 bs_tx_antennas: NDArray[np.int64],
                                 physics: PhysicsConfig) -> FloatArray:
    """``kappa_ij`` of eq. 23 from the device-free PEB of eq. 59-64, shape (n_mus, n_bss).

    The Fisher information of the target position per unit ``N * P`` combines the AoD, AoA and
    delay bounds of eq. 59 through the Jacobian of eq. 62 (diagonal approximation of eq. 64).
    Delays use the sampling period of the allocated band (``N^2 T_s^2 = 1 / B0^2``); the delay
    term's ``(N+1)(2N+1)`` factor is evaluated at ``sensing_reference_subchannels`` so that
    ``kappa`` is one number per pair, as the paper's eq. 22 assumes. The bistatic path
    BS -> target -> MU has the path loss of its total length (|h|^2 = 1).
    """
    d_mu_target = np.maximum(np.hypot(*(mu_xy_m - mu_target_xy_m).T), physics.min_distance_m)
    target_to_bs = mu_target_xy_m[:, None, :] - bs_xy_m[None, :, :]
    d_target_bs = np.maximum(np.hypot(target_to_bs[..., 0], target_to_bs[..., 1]),
                             physics.min_distance_m)
    # eq. 18 and 19: AoD at the MU side and AoA from the target to the BS.
    cos_theta = np.clip((mu_xy_m[:, 0] - mu_target_xy_m[:, 0]) / d_mu_target, -1.0, 1.0)
    theta = np.arccos(cos_theta)[:, None]
    phi = np.pi - np.arccos(np.clip(target_to_bs[..., 0] / d_target_bs, -1.0, 1.0))
    sigma2 = noise_power_per_subchannel_w(physics)
    rho = path_loss_linear(d_mu_target[:, None] + d_target_bs, physics)
    n_t = bs_tx_antennas[None, :].astype(np.float64)
    n_r = mu_rx_antennas[:, None].astype(np.float64)
    cos2 = np.cos(theta) ** 2
    # Inverses of zeta_1..zeta_3 of eq. 59 (per unit N * P).
    inv_zeta_aod = 16 * np.pi**2 * n_r * cos2 * n_t * (n_t + 1) * (2 * n_t + 1) / (3 * sigma2 * rho)
    inv_zeta_aoa = 16 * np.pi**2 * n_t * cos2 * n_r * (n_r + 1) * (2 * n_r + 1) / (3 * sigma2 * rho)
    b0 = np.float64(physics.subchannel_bandwidth_hz)  # numpy: overflow gives inf, not an error
    inv_zeta_delay = 4 * np.pi**2 * b0**2 * n_t * n_r / (3 * sigma2 * rho)
    n_ref = float(physics.sensing_reference_subchannels)
    delay_gain = inv_zeta_delay * (n_ref + 1) * (2 * n_ref + 1) / n_ref**2
    c2 = np.float64(physics.speed_of_light_m_per_s) ** 2
    sin_t, cos_t, sin_p, cos_p = np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)
    # eq. 63 divided by N * P.
    fim_xx = (sin_t**2 * inv_zeta_aod / d_target_bs**2 + cos_t**2 * inv_zeta_aoa
              / d_mu_target[:, None] ** 2 + (cos_t + cos_p) ** 2 * delay_gain / c2)
    fim_yy = (cos_t**2 * inv_zeta_aod / d_target_bs**2 + sin_t**2 * inv_zeta_aoa
              / d_mu_target[:, None] ** 2 + (sin_t + sin_p) ** 2 * delay_gain / c2)
    tiny = np.finfo(np.float64).tiny
    zeta = np.sqrt(1.0 / np.maximum(fim_xx, tiny) + 1.0 / np.maximum(fim_yy, tiny))
    return np.asarray(physics.sensing_capability / zeta, dtype=np.float64)


def sensing_accuracy_per_m(kappa: FloatArray, subchannels: FloatArray, power_w: FloatArray,
                           physics: PhysicsConfig) -> FloatArray:
    """``1 / PEB`` of eq. 23: ``kappa * P**w2 * N**w3`` in 1/m, saturated at the accuracy cap.

    The cap stands for the resolution limit of a real receiver: without it, an MU a few metres
    from its target would value sensing orders of magnitude above everything else.
    """
    accuracy = kappa * np.power(power_w, physics.sensing_power_exponent) * np.power(
        subchannels, physics.sensing_bandwidth_exponent)
    return np.asarray(np.minimum(accuracy, physics.sensing_accuracy_cap_per_m), dtype=np.float64)


def sensing_value(kappa: FloatArray, subchannels: FloatArray, power_w: FloatArray,
                  physics: PhysicsConfig) -> FloatArray:
    """Sensing value of eq. 24: ``w4 / PEB``."""
    return physics.sensing_value_weight * sensing_accuracy_per_m(kappa, subchannels, power_w,
                                                                 physics)
