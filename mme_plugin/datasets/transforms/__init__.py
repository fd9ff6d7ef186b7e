"""Data transforms of the MME plugin (registered in ``TRANSFORMS``).

Only transforms and what belongs to them (their errors and constants) are
exported here. The kernels and I/O they wrap live in their own packages and
are imported from there: flow backends, tracking and HOG kernels from
:mod:`mme_plugin.ops`, video readers and the flow cache from
:mod:`mme_plugin.io`.
"""
from .dense_sampling import MMESampleFrames, ShortVideoError
from .flow import ComputeFlow
from .formatting import MME_ALGORITHM_KEYS, PackMMEInputs
from .hog import ComputeHOG
from .hog_inputs import PrepareHOGInputs
from .masking import TubeMasking
from .motion_augment import MotionFlip, MotionMultiScaleCrop, MotionResize
from .motion_inputs import PrepareMotionInputs
from .motion_targets import BuildMMETargets
from .rand_augment import RAND_AUGMENT_OPS, VideoRandAugment
from .reliability import CheckTrajectoryReliability
from .trajectory import ComputeTrajectories
from .video_io import VideoDecode, VideoInit

__all__ = [
    'MMESampleFrames', 'ShortVideoError', 'ComputeFlow', 'PackMMEInputs',
    'MME_ALGORITHM_KEYS', 'ComputeHOG', 'PrepareHOGInputs', 'TubeMasking',
    'MotionFlip', 'MotionMultiScaleCrop', 'MotionResize', 'BuildMMETargets',
    'PrepareMotionInputs',
    'VideoRandAugment', 'RAND_AUGMENT_OPS', 'CheckTrajectoryReliability',
    'ComputeTrajectories', 'VideoDecode', 'VideoInit'
]
