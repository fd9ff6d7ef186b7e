"""The video decoding transforms (``VideoInit``, ``VideoDecode``): drop-in
replacements of mmaction's ``DecordInit`` / ``DecordDecode`` on the readers
of :mod:`mme_plugin.io.video` (decord, PyAV fallback, errors naming the
file).
"""
from typing import Dict, List, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mme_plugin.io.video import VideoReadError, get_frames, open_video
from mme_plugin.registry import TRANSFORMS

__all__ = ['VideoInit', 'VideoDecode']


@TRANSFORMS.register_module()
class VideoInit(BaseTransform):
    """Open ``results['filename']`` and set ``total_frames``.

    Drop-in replacement of mmaction's ``DecordInit`` that falls back to PyAV
    and raises :class:`VideoReadError` naming the file.

    Args:
        backend (str): ``'auto'``, ``'decord'`` or ``'pyav'``.
            Defaults to ``'auto'``.
    """

    def __init__(self, backend: str = 'auto') -> None:
        self.backend = backend

    def transform(self, results: Dict) -> Dict:
        """Open the video."""
        reader = open_video(results['filename'], self.backend)
        results['video_reader'] = reader
        results['total_frames'] = reader.num_frames
        return results


@TRANSFORMS.register_module()
class VideoDecode(BaseTransform):
    """Decode ``frame_inds`` into ``imgs`` (list of RGB uint8 arrays).

    Drop-in replacement of mmaction's ``DecordDecode``; falls back to PyAV if
    decord fails on these frames, and raises :class:`VideoReadError`.

    Args:
        extra_keys (Sequence[str]): Further keys holding frame indices (arrays
            of any shape) to decode in the same pass; each ``K`` is decoded
            into ``<K without _frame_inds>_imgs`` (``dense_frame_inds`` ->
            ``dense_imgs``) with shape ``(*K.shape, H, W, 3)``.
    """

    def __init__(self, extra_keys: Sequence[str] = ()) -> None:
        self.extra_keys = tuple(extra_keys)

    @staticmethod
    def decode(results: Dict, index_arrays: List[np.ndarray]
               ) -> List[List[np.ndarray]]:
        """Decode several index arrays in one pass over the video.

        Args:
            results (dict): Holds ``video_reader`` and ``filename``.
            index_arrays (list[np.ndarray]): Frame indices.

        Returns:
            list[list[np.ndarray]]: Frames for each index array (flattened).
        """
        reader = results['video_reader']
        flat = [np.asarray(a).reshape(-1).astype(np.int64)
                for a in index_arrays]
        total = results.get('total_frames', reader.num_frames)
        for a in flat:
            if a.size and (a.min() < 0 or a.max() >= total):
                raise VideoReadError(
                    f"{results['filename']}: frame index {int(a.max())} out "
                    f'of range for a video of {total} frames.')
        unique = np.unique(np.concatenate(flat)) if flat else np.array([])
        frames, results['video_reader'] = get_frames(
            reader, results['filename'], unique.tolist())
        lut = {int(i): f for i, f in zip(unique, frames)}
        # Every use gets its own array: stock transforms (Flip, ...) work in
        # place, and a frame shared by two positions would be hit twice.
        used = set()
        out = []
        for a in flat:
            row = []
            for i in a.tolist():
                row.append(lut[i].copy() if i in used else lut[i])
                used.add(i)
            out.append(row)
        return out

    def transform(self, results: Dict) -> Dict:
        """Decode the frames."""
        keys = ['frame_inds'] + list(self.extra_keys)
        decoded = self.decode(results, [results[k] for k in keys])
        imgs = decoded[0]
        results['imgs'] = imgs
        for key, frames in zip(self.extra_keys, decoded[1:]):
            shape = np.asarray(results[key]).shape
            out_key = key[:-len('_frame_inds')] + '_imgs' if key.endswith(
                '_frame_inds') else key + '_imgs'
            results[out_key] = np.stack(frames).reshape(
                *shape, *frames[0].shape)
        results['original_shape'] = imgs[0].shape[:2]
        results['img_shape'] = imgs[0].shape[:2]
        results.pop('video_reader', None)
        return results
