"""Sparse clip sampling plus the dense (raw frame rate) frames of every tube.

MME's trajectories describe motion at the raw frame rate inside each tube's
time span, while the encoder sees only the sparse clip (release spec
section 1.3). For tube ``m`` (sparse frames ``tubelet_size*m ...``) the dense
frames are ``start_m, start_m + 1, ..., start_m + traj_len`` with ``start_m``
the tube's first sparse frame. The release couples ``traj_len`` to the frame
interval implicitly; here it is an explicit argument and the sampled span
always covers both the sparse clip and every tube's dense frames.
"""
from typing import Dict

import numpy as np
from mmcv.transforms import BaseTransform

from mme_plugin.io.video import VideoReadError
from mme_plugin.registry import TRANSFORMS

__all__ = ['MMESampleFrames', 'ShortVideoError']


class ShortVideoError(VideoReadError):
    """A video has fewer frames than one clip with its dense tubes needs."""


@TRANSFORMS.register_module()
class MMESampleFrames(BaseTransform):
    """Sample one sparse clip and the dense frames of each of its tubes.

    Required Keys:

        - total_frames (int): Frames of the video.

    Optional Keys:

        - filename (str): For messages.

    Added Keys:

        - frame_inds (np.ndarray): ``[clip_len]`` int64 sparse frames.
        - dense_frame_inds (np.ndarray): ``[clip_len // tubelet_size,
          traj_len + 1]`` int64, the dense frames of each tube.
        - clip_len, frame_interval, traj_len, tubelet_size (int): The
          arguments, for later steps.
        - num_clips (int): 1.

    Args:
        clip_len (int): Sparse frames given to the encoder. Defaults to 16.
        frame_interval (int): Stride between sparse frames. Defaults to 4.
        tubelet_size (int): Frames per tube (temporal patch). Defaults to 2.
        traj_len (int): Dense steps per tube (flows chained). Defaults to 4,
            the release's value (= its frame interval).
        test_mode (bool): Take the centre span instead of a random one.
            Defaults to False.
    """

    def __init__(self,
                 clip_len: int = 16,
                 frame_interval: int = 4,
                 tubelet_size: int = 2,
                 traj_len: int = 4,
                 test_mode: bool = False) -> None:
        if clip_len % tubelet_size:
            raise ValueError(f'clip_len {clip_len} must be a multiple of '
                             f'tubelet_size {tubelet_size}')
        if traj_len < 1 or frame_interval < 1:
            raise ValueError('traj_len and frame_interval must be >= 1')
        self.clip_len = clip_len
        self.frame_interval = frame_interval
        self.tubelet_size = tubelet_size
        self.traj_len = traj_len
        self.test_mode = test_mode

    @property
    def span(self) -> int:
        """Frames covered by the sparse clip and every tube's dense frames."""
        last_sparse = (self.clip_len - 1) * self.frame_interval
        last_dense = (self.clip_len - self.tubelet_size) * \
            self.frame_interval + self.traj_len
        return max(last_sparse, last_dense) + 1

    def transform(self, results: Dict) -> Dict:
        """Sample the frame indices."""
        total = int(results['total_frames'])
        if total < self.span:
            raise ShortVideoError(
                f"{results.get('filename', '<video>')}: {total} frames, but "
                f'one clip needs {self.span} (clip_len={self.clip_len}, '
                f'frame_interval={self.frame_interval}, '
                f'traj_len={self.traj_len}). Lower frame_interval/traj_len in '
                'the config or remove the video from the annotation list '
                '(tools/analysis/check_dataset.py lists all short videos).')
        max_offset = total - self.span
        if self.test_mode:
            offset = max_offset // 2
        else:
            offset = int(np.random.randint(0, max_offset + 1))
        sparse = offset + np.arange(self.clip_len) * self.frame_interval
        starts = sparse[::self.tubelet_size]
        dense = starts[:, None] + np.arange(self.traj_len + 1)[None]
        results.update(
            frame_inds=sparse.astype(np.int64),
            dense_frame_inds=dense.astype(np.int64),
            clip_len=self.clip_len,
            frame_interval=self.frame_interval,
            num_clips=1,
            traj_len=self.traj_len,
            tubelet_size=self.tubelet_size)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_len={self.clip_len}, '
                f'frame_interval={self.frame_interval}, tubelet_size='
                f'{self.tubelet_size}, traj_len={self.traj_len}, '
                f'test_mode={self.test_mode})')
