"""Shared by several test files (moved out of them so that no test imports another)."""

from __future__ import annotations

import numpy as np

A = np.array([0.02, 0.05, 0.01])  # true offsets a_i


B = np.array([0.6, 0.9, 1.2])  # true exponents b_i


ALPHA, BETA = np.array([0.0, 0.2, -0.1]), np.array([0.15, -0.05, -0.1])


BUDGETS, TARGET = np.array([1.0, 2.0, 4.0]), 8.0  # a geometric ladder and the next rung


def true_weights(budget: float) -> np.ndarray:
    """The optimal mixture at a budget: w_i proportional to exp(alpha_i + beta_i log B)."""
    w = np.exp(ALPHA + BETA * np.log(budget))
    return w / w.sum()
