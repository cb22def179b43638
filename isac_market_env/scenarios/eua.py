"""Loader of the EUA Melbourne CBD data set (Lai et al., ICSOC 2018; MIT licence).

The directory must hold ``site-optus-melbCBD.csv`` (BS sites, LATITUDE/LONGITUDE columns) and
``users-melbcbd-generated.csv`` (user positions, Latitude/Longitude). Coordinates are projected to
local metres (equirectangular around the users' centroid, exact to centimetres at CBD scale).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from isac_market_env.config import ScenarioConfig
from isac_market_env.scenarios.scenario import Scenario
from isac_market_env.scenarios.synthetic import draw_bs_attributes, draw_mu_attributes

SITES_FILE = "site-optus-melbCBD.csv"
USERS_FILE = "users-melbcbd-generated.csv"
EARTH_RADIUS_M = 6_371_000.0
DEFAULT_MAX_EXTENT_KM = 100.0
WHERE_EUA = (f"Point the loader at the directory holding {SITES_FILE} and {USERS_FILE} (the "
             "EUA data set, MIT licence): --eua-dir DIR on the command line, "
             "eua_directory=DIR in Python, or the environment variable ISAC_MARKET_EUA_DIR")


def _read_lat_lon(path: Path, lat_key: str, lon_key: str) -> np.ndarray:
    """(latitude, longitude) rows of one EUA file; a ValueError names the file, the row (its
    line number) and the column of any cell that is not a finite coordinate in range."""
    if not path.is_file():
        raise FileNotFoundError(f"EUA data file missing: {path}. {WHERE_EUA}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [key for key in (lat_key, lon_key) if key not in header]
            if missing:
                raise ValueError(f"{path}: missing column(s) {', '.join(map(repr, missing))} "
                                 f"(the header has {', '.join(map(repr, header)) or 'nothing'})")
            coordinates = [[_coordinate(path, reader.line_num, key, row.get(key), limit)
                            for key, limit in ((lat_key, 90.0), (lon_key, 180.0))]
                           for row in reader]
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a UTF-8 CSV file ({error.reason})") from None
    except csv.Error as error:
        raise ValueError(f"{path}: malformed CSV ({error})") from None
    if not coordinates:
        raise ValueError(f"{path}: no data rows")
    return np.array(coordinates, dtype=np.float64)


def _coordinate(path: Path, line: int, column: str, cell: str | None, limit: float) -> float:
    """One latitude (|x| <= 90) or longitude (|x| <= 180) cell as a float."""
    where = f"{path}, line {line}, column {column!r}"
    if cell is None or not cell.strip():
        raise ValueError(f"{where}: empty cell")
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > limit:
        raise ValueError(f"{where}: {cell!r} is not a coordinate in [-{limit:g}, {limit:g}] "
                         f"degrees (are the latitude and longitude columns swapped?)")
    return value


def load_eua_locations(directory: str | Path,
                       max_extent_km: float = DEFAULT_MAX_EXTENT_KM) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """Unique BS site and user positions in local metres: ``(sites_xy, users_xy)``.

    A data set whose sites and users span more than ``max_extent_km`` (default 100 km, well
    beyond a city centre: the Melbourne CBD spans about 2 km) is refused: it is almost surely
    a wrong or mixed file, and the market's channel model is a city's.
    """
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
    users_xy = project(users)
    everything = np.vstack([sites_xy, users_xy])
    extent_km = float((everything.max(axis=0) - everything.min(axis=0)).max()) / 1e3
    if extent_km > max_extent_km:
        raise ValueError(
            f"{root}: the sites and users span {extent_km:,.0f} km, more than "
            f"eua_max_extent_km = {max_extent_km:g} km (a city data set spans a few km; check "
            f"for swapped latitude/longitude or mixed files, or raise eua_max_extent_km in "
            f"scenario_overrides)")
    return sites_xy, users_xy


def eua_scenario(directory: str | Path, config: ScenarioConfig, rng: np.random.Generator,
                 name: str = "eua-melbourne") -> Scenario:
    """Sample ``config.n_bss`` sites, ``config.n_mus`` users and ``config.n_targets`` targets.

    Sites and users are drawn without replacement from the data set; targets uniformly in the
    users' bounding box. MU and BS attributes come from ``config``'s ranges as in the paper.
    """
    sites_xy, users_xy = load_eua_locations(directory, config.eua_max_extent_km)
    if config.n_bss > len(sites_xy):
        raise ValueError(f"n_bss={config.n_bss} exceeds the {len(sites_xy)} distinct sites in "
                         f"{Path(directory) / SITES_FILE}")
    if config.n_mus > len(users_xy):
        raise ValueError(f"n_mus={config.n_mus} exceeds the {len(users_xy)} users in "
                         f"{Path(directory) / USERS_FILE}")
    bs_xy = sites_xy[np.sort(rng.choice(len(sites_xy), config.n_bss, replace=False))]
    mu_xy = users_xy[np.sort(rng.choice(len(users_xy), config.n_mus, replace=False))]
    low, high = users_xy.min(axis=0), users_xy.max(axis=0)
    target_xy = rng.uniform(low, high, (config.n_targets, 2))
    return Scenario(
        name=name, mu_xy_m=mu_xy, bs_xy_m=bs_xy, target_xy_m=target_xy,
        **draw_mu_attributes(config, config.n_mus, rng),
        **draw_bs_attributes(config, config.n_bss, rng),
    )
