"""Pretraining targets (registry-built ``nn.Module`` units) and the
on-device HOG."""
from .base import MMETarget, stack_samples
from .pipeline_target import HOGTarget, TrajectoryTarget, trajectory_monitors
from .pixel import PixelTarget, pixel_targets
from .point_hog import PointHOG

__all__ = ['PointHOG', 'MMETarget', 'TrajectoryTarget', 'HOGTarget',
           'PixelTarget', 'pixel_targets', 'stack_samples',
           'trajectory_monitors']
