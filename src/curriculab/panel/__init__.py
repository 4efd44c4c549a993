"""Run panels (docs/stages/panel.md): tables of runs (mixture per phase -> metrics), regressors
chosen by out-of-fold rank correlation, and the proposed best mixture."""
