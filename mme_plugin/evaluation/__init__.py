"""Evaluation helpers: trivial-predictor levels and an exact linear probe."""
from .logistic_probe import extract_features, logistic_probe
from .trivial_levels import trivial_levels

__all__ = ['trivial_levels', 'extract_features', 'logistic_probe']
