"""Sweeps: a grid over a training request, checked as trainings are, run as one job."""

from .grid import METRICS, best_trial, check_sweep, expand, ranked_trials
from .run import run_sweep, saved_state, saved_trials, trial_of
from .view import sweep_summary, sweep_view

__all__ = ["METRICS", "best_trial", "check_sweep", "expand", "ranked_trials", "run_sweep",
           "saved_state", "saved_trials", "sweep_summary", "sweep_view", "trial_of"]
