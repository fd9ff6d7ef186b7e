"""Evaluation helpers: trivial-predictor levels, an exact linear probe, a
motion-regression probe, a feature-collapse diagnostic and ground-truth-free
flow quality."""
from .collapse import (ConstantShareMeter, block_sv_ratios, collapse_measures,
                       constant_share)
from .feature_spread import feature_spread
from .flow_quality import FLOW_CHOICES, flow_quality
from .logistic_probe import extract_features, logistic_probe
from .motion_probe import VELOCITY_NAMES, ridge_r2
from .trivial_levels import trivial_levels

__all__ = ['trivial_levels', 'extract_features', 'logistic_probe',
           'feature_spread', 'FLOW_CHOICES', 'flow_quality',
           'collapse_measures', 'constant_share', 'block_sv_ratios',
           'ConstantShareMeter', 'VELOCITY_NAMES', 'ridge_r2']
