"""Evaluation helpers: trivial-predictor levels, an exact linear probe, a
motion-regression probe, a low-label fine-tune, a feature-collapse
diagnostic and ground-truth-free flow quality."""
from .collapse import (ConstantShareMeter, block_sv_ratios, collapse_measures,
                       constant_share)
from .feature_spread import feature_spread
from .flow_quality import FLOW_CHOICES, flow_quality
from .logistic_probe import (encode_clips, extract_features, load_clips,
                             logistic_probe)
from .low_label import few_shot_indices, finetune_classifier
from .motion_probe import VELOCITY_NAMES, ridge_r2
from .trivial_levels import trivial_levels

__all__ = ['trivial_levels', 'load_clips', 'encode_clips',
           'extract_features', 'logistic_probe', 'few_shot_indices',
           'finetune_classifier',
           'feature_spread', 'FLOW_CHOICES', 'flow_quality',
           'collapse_measures', 'constant_share', 'block_sv_ratios',
           'ConstantShareMeter', 'VELOCITY_NAMES', 'ridge_r2']
