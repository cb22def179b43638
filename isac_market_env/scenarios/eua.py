"""Loader of the EUA Melbourne CBD data set (Lai et al., ICSOC 2018; MIT licence).

The directory must hold ``site-optus-melbCBD.csv`` (BS sites, LATITUDE/LONGITUDE columns) and
``users-melbcbd-generated.csv`` (user positions, Latitude/Longitude). Coordinates are projected to
local metres (equirectangular around the users' centroid, exact to centimetres at CBD scale).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from isac_market_env.config import ScenarioConfig
from isac_market_env.scenarios.scenario import Scenario
from isac_market_env.scenarios.synthetic import draw_bs_attributes, draw_mu_attributes

SITES_FILE = "site-optus-melbCBD.csv"
USERS_FILE = "users-melbcbd-generated.csv"
EARTH_RADIUS_M = 6_371_000.0
WHERE_EUA = (f"Point the loader at the directory holding {SITES_FILE} and {USERS_FILE} (the "
             "EUA data set, MIT licence): --eua-dir DIR on the command line, "
             "eua_directory=DIR in Python, or the environment variable ISAC_MARKET_EUA_DIR")


def _read_lat_lon(path: Path, lat_key: str, lon_key: str) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"EUA data file missing: {path}. {WHERE_EUA}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or lat_key not in rows[0] or lon_key not in rows[0]:
        raise ValueError(f"{path} must have columns {lat_key!r} and {lon_key!r}")
    return np.array([[float(r[lat_key]), float(r[lon_key])] for r in rows], dtype=np.float64)


def load_eua_locations(directory: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Unique BS site and user positions in local metres: ``(sites_xy, users_xy)``."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"EUA data directory not found: {root}. {WHERE_EUA}")
    sites = _read_lat_lon(root / SITES_FILE, "LATITUDE", "LONGITUDE")
    users = _read_lat_lon(root / USERS_FILE, "Latitude", "Longitude")
    lat0, lon0 = users.mean(axis=0)

    def project(lat_lon: np.ndarray) -> np.ndarray:
        x = np.radians(lat_lon[:, 1] - lon0) * EARTH_RADIUS_M * np.cos(np.radians(lat0))
        y = np.radians(lat_lon[:, 0] - lat0) * EARTH_RADIUS_M
        return np.column_stack([x, y])

    sites_xy = np.unique(np.round(project(sites), 3), axis=0)
    return sites_xy, project(users)


def eua_scenario(directory: str | Path, config: ScenarioConfig, rng: np.random.Generator,
                 name: str = "eua-melbourne") -> Scenario:
    """Sample ``config.n_bss`` sites, ``config.n_mus`` users and ``config.n_targets`` targets.

    Sites and users are drawn without replacement from the data set; targets uniformly in the
    users' bounding box. MU and BS attributes come from ``config``'s ranges as in the paper.
    """
    sites_xy, users_xy = load_eua_locations(directory)
    if config.n_bss > len(sites_xy):
        raise ValueError(f"n_bss={config.n_bss} exceeds the {len(sites_xy)} EUA sites")
    if config.n_mus > len(users_xy):
        raise ValueError(f"n_mus={config.n_mus} exceeds the {len(users_xy)} EUA users")
    bs_xy = sites_xy[np.sort(rng.choice(len(sites_xy), config.n_bss, replace=False))]
    mu_xy = users_xy[np.sort(rng.choice(len(users_xy), config.n_mus, replace=False))]
    low, high = users_xy.min(axis=0), users_xy.max(axis=0)
    target_xy = rng.uniform(low, high, (config.n_targets, 2))
    return Scenario(
        name=name, mu_xy_m=mu_xy, bs_xy_m=bs_xy, target_xy_m=target_xy,
        **draw_mu_attributes(config, config.n_mus, rng),
        **draw_bs_attributes(config, config.n_bss, rng),
    )
