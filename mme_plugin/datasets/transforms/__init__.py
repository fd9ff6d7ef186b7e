"""Data transforms of the MME plugin."""
from .dense_sampling import DenseSampleFrames, ShortVideoError
from .formatting import MME_ALGORITHM_KEYS, PackMMEInputs
from .flow import (ComputeFlow, DISFlow, FarnebackFlow, FlowCache,
                   FlowCacheError, FlowCacheReadOnly, build_flow_backend,
                   resize_flow)
from .hog import ComputeHOG, cell_histogram_map, pixel_orientation_votes
from .hog_inputs import PrepareHOGInputs
from .masking import TubeMasking
from .motion_augment import MotionFlip, MotionMultiScaleCrop, MotionResize
from .motion_targets import BuildMMETargets, patch_std
from .rand_augment import RAND_AUGMENT_OPS, VideoRandAugment
from .reliability import REJECT_REASONS, CheckTrajectoryReliability
from .trajectory import (ComputeTrajectories, grid_points, sample_bilinear,
                         sample_flow_at, track_points)
from .video_io import (DecordReader, PyAVReader, VideoDecode, VideoInit,
                       VideoReadError, get_frames, open_video)

__all__ = [
    'MME_ALGORITHM_KEYS', 'PackMMEInputs',
    'DenseSampleFrames', 'ShortVideoError', 'ComputeFlow', 'DISFlow',
    'FarnebackFlow', 'FlowCache', 'FlowCacheError', 'FlowCacheReadOnly',
    'build_flow_backend',
    'ComputeHOG', 'cell_histogram_map', 'pixel_orientation_votes',
    'PrepareHOGInputs',
    'TubeMasking', 'MotionFlip', 'MotionMultiScaleCrop', 'MotionResize',
    'resize_flow', 'BuildMMETargets', 'patch_std', 'RAND_AUGMENT_OPS',
    'VideoRandAugment', 'ComputeTrajectories', 'CheckTrajectoryReliability',
    'REJECT_REASONS', 'grid_points', 'sample_bilinear', 'sample_flow_at',
    'track_points', 'DecordReader',
    'PyAVReader', 'VideoDecode', 'VideoInit', 'VideoReadError', 'open_video',
    'get_frames'
]
