"""Run three mechanisms over a few seeds and plot SW per transaction (needs matplotlib)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import isac_market_env as ime

fig, ax = plt.subplots(figsize=(7, 4))
for mechanism in ("frbank", "hybrid", "greedy"):
    result = ime.simulate(mechanism, n_mus=30, n_transactions=10, seed=0)
    ax.plot([tx.social_welfare for tx in result.transactions], marker="o", label=mechanism)
ax.set_xlabel("transaction")
ax.set_ylabel("social welfare")
ax.legend()
fig.savefig("comparison.png", dpi=120, bbox_inches="tight")
print("wrote comparison.png")
