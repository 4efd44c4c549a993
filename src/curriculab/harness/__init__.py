"""The harness stage: lm-evaluation-harness on every cell's saved model (`run`), and its
scores as tidy tables (`tables`, torch-free). The report's section is `report/harness.py`."""
