"""Aggregation of per-cell run outputs into tidy tables."""
