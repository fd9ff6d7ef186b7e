"""Target generators: stages of the MME model that compute targets from the
batch on the training device before the loss (mmpretrain's
``target_generator`` slot)."""
from .motion_target_generator import (RELEASE_FARNEBACK,
                                      MotionTargetGenerator)

__all__ = ['MotionTargetGenerator', 'RELEASE_FARNEBACK']
