"""Scale ladders: mixture optima per scale and their prediction across scales (README: Ladder)."""
