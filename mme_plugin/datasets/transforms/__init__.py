"""Data transforms of the MME plugin."""
from .dense_sampling import DenseSampleFrames, ShortVideoError
from .formatting import MME_ALGORITHM_KEYS, PackMMEInputs
# Kernels and I/O re-exported for compatibility (they live in ``ops`` and
# ``io``; the transforms are thin wrappers around them).
from mme_plugin.io import (DecordReader, FlowCache, FlowCacheError,
                           FlowCacheReadOnly, PyAVReader, VideoReadError,
                           get_frames, open_video)
from mme_plugin.ops.flow import (DISFlow, FarnebackFlow, build_flow_backend,
                                 resize_flow)
from mme_plugin.ops.hog_numpy import (cell_histogram_map,
                                      pixel_orientation_votes)
from mme_plugin.ops.tracking import (grid_points, sample_bilinear,
                                     sample_flow_at, track_points)

from .flow import ComputeFlow
from .hog import ComputeHOG
from .hog_inputs import PrepareHOGInputs
from .masking import TubeMasking
from .motion_augment import MotionFlip, MotionMultiScaleCrop, MotionResize
from .motion_targets import BuildMMETargets, patch_std
from .rand_augment import RAND_AUGMENT_OPS, VideoRandAugment
from .reliability import REJECT_REASONS, CheckTrajectoryReliability
from .trajectory import ComputeTrajectories
from .video_io import VideoDecode, VideoInit

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
