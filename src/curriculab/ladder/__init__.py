"""Scale ladders: mixture optima per scale, predicted across scales (docs/stages/ladder.md)."""
