"""Kernels shared by the data pipeline, the models and the tools: optical
flow backends, point tracking, HOG (NumPy and PyTorch), flow reliability
measures and the token layout."""
from .farneback_torch import farneback_flow
from .flow import (CallableFlow, DISFlow, FarnebackFlow, FlowBackend,
                   TorchFarnebackFlow, build_flow_backend, resize_flow,
                   to_full_res)
from .flow_reliability import (REJECT_REASONS, cut_statistics,
                               fb_inconsistent, fb_round_trip,
                               histogram_distance, pair_cut_statistics,
                               warp_error)
from .hog import (hog_at_frame_points, hog_at_points, hog_cell_maps,
                  l2_normalize_cells)
from .hog_numpy import (cell_histogram_map, l2_normalize,
                        pixel_orientation_votes)
from .mask_index import gather_tokens, indices_from_mask
from .motion_targets_torch import (clip_targets_torch, patch_std_torch,
                                   traj_targets_torch)
from .token_layout import grid_to_tokens
from .tracking import (grid_points, inside_frame, sample_bilinear,
                       sample_bilinear_batch, sample_flow_at, track_all,
                       track_points)
from .tracking_torch import (cut_pairs_torch, cut_statistics_torch,
                             fb_failures_torch, gray_blur_torch,
                             grid_points_torch, inside_frame_torch,
                             photo_failures_torch, reliability_torch,
                             sample_bilinear_torch, sample_flow_at_torch,
                             track_points_torch)

__all__ = [
    'FlowBackend', 'CallableFlow', 'DISFlow', 'FarnebackFlow',
    'TorchFarnebackFlow', 'farneback_flow',
    'build_flow_backend', 'resize_flow',
    'to_full_res', 'REJECT_REASONS', 'cut_statistics', 'fb_inconsistent',
    'fb_round_trip', 'histogram_distance', 'pair_cut_statistics',
    'warp_error', 'hog_at_frame_points', 'hog_at_points', 'hog_cell_maps', 'l2_normalize_cells',
    'cell_histogram_map', 'l2_normalize', 'pixel_orientation_votes',
    'grid_to_tokens', 'gather_tokens', 'indices_from_mask', 'grid_points',
    'inside_frame', 'sample_bilinear',
    'sample_bilinear_batch', 'sample_flow_at', 'track_all', 'track_points',
    'clip_targets_torch', 'patch_std_torch', 'traj_targets_torch',
    'cut_pairs_torch', 'cut_statistics_torch', 'fb_failures_torch',
    'gray_blur_torch', 'grid_points_torch', 'inside_frame_torch',
    'photo_failures_torch', 'reliability_torch', 'sample_bilinear_torch',
    'sample_flow_at_torch', 'track_points_torch'
]
