"""Clients, contracts' solution grids, utilities and risks (paper Sec. III-B/C, App. B)."""

from isac_market_env.model.clients import COMM, SENSING, ClientBook, build_client_book, request_grid
from isac_market_env.model.utilities import (
    bs_expected_contract_value,
    client_expected_utility,
    client_risk,
)

__all__ = [
    "COMM",
    "SENSING",
    "ClientBook",
    "bs_expected_contract_value",
    "build_client_book",
    "client_expected_utility",
    "client_risk",
    "request_grid",
]
