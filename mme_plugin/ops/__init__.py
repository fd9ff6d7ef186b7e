"""Tensor operations shared by the data pipeline and the models."""
from .flow_reliability import (REJECT_REASONS, cut_statistics,
                               fb_inconsistent, fb_round_trip,
                               histogram_distance, pair_cut_statistics,
                               warp_error)
from .hog import hog_at_points, hog_cell_maps, l2_normalize_cells
from .token_layout import grid_to_tokens

__all__ = [
    'hog_at_points', 'hog_cell_maps', 'l2_normalize_cells', 'REJECT_REASONS',
    'fb_inconsistent',
    'fb_round_trip', 'histogram_distance', 'pair_cut_statistics',
    'warp_error'
]
