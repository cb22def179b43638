"""Market mechanisms as functions of arrays returning typed results."""

from isac_market_env.mechanisms.greedy import GreedyResult, greedy_allocation
from isac_market_env.mechanisms.knapsack import KnapsackResult, solve_knapsack
from isac_market_env.mechanisms.matching import MatchingProblem, MatchingResult, run_matching
from isac_market_env.mechanisms.optimal import OptimalResult, optimal_allocation
from isac_market_env.mechanisms.volunteers import (
    expected_volunteer_rate,
    expected_volunteer_rates,
    select_volunteers,
    select_volunteers_batch,
)

__all__ = [
    "GreedyResult",
    "KnapsackResult",
    "MatchingProblem",
    "MatchingResult",
    "OptimalResult",
    "expected_volunteer_rate",
    "expected_volunteer_rates",
    "greedy_allocation",
    "optimal_allocation",
    "run_matching",
    "select_volunteers",
    "select_volunteers_batch",
    "solve_knapsack",
]
