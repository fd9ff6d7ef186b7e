"""Evaluation helpers: trivial-predictor levels, an exact linear probe and
ground-truth-free flow quality."""
from .flow_quality import FLOW_CHOICES, flow_quality
from .logistic_probe import extract_features, logistic_probe
from .trivial_levels import trivial_levels

__all__ = ['trivial_levels', 'extract_features', 'logistic_probe',
           'FLOW_CHOICES', 'flow_quality']
