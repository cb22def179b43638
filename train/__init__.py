"""Training scripts (stable-baselines3) for the ISACMarket environments."""
