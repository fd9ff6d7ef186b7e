"""Packing of the MME pretraining sample: one owner of the key list."""
from typing import Sequence

from mmaction.datasets.transforms import PackActionInputs

from mme_plugin.registry import TRANSFORMS

__all__ = ['MME_ALGORITHM_KEYS', 'PackMMEInputs']

#: Every per-sample key an MME model reads, in the results contract of
#: ``docs/mme_design.md``; a key the pipeline did not add is skipped.
MME_ALGORITHM_KEYS = ('mask', 'traj_target', 'traj_valid', 'hog_target',
                      'hog_valid', 'hog_frames', 'hog_points', 'traj_reject',
                      'traj_motionless', 'visible_idx', 'masked_idx',
                      'motion_frames', 'motion_scale')


@TRANSFORMS.register_module()
class PackMMEInputs(PackActionInputs):
    """Stock ``PackActionInputs`` whose ``algorithm_keys`` default to
    :data:`MME_ALGORITHM_KEYS` (packed when present), so pretraining configs
    do not restate the list.

    Args:
        algorithm_keys (Sequence[str]): Defaults to
            :data:`MME_ALGORITHM_KEYS`.
        meta_keys (Sequence[str]): Defaults to ``('img_shape',
            'filename')``.
        **kwargs: Other ``PackActionInputs`` arguments.
    """

    def __init__(self,
                 algorithm_keys: Sequence[str] = MME_ALGORITHM_KEYS,
                 meta_keys: Sequence[str] = ('img_shape', 'filename'),
                 **kwargs) -> None:
        super().__init__(algorithm_keys=algorithm_keys, meta_keys=meta_keys,
                         **kwargs)
