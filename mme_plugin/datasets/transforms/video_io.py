"""Video decoding with decord, a PyAV fallback and errors naming the file.

decord 0.6.0 fails on some frame widths (16, 24, 48, 72 px seen, see
stack notes) and on some containers; PyAV decodes every size. The reader
tries decord first (fast random access) and falls back to PyAV, which decodes
sequentially and keeps only the requested frames.
"""
import os.path as osp
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mme_plugin.registry import TRANSFORMS

__all__ = ['VideoReadError', 'open_video', 'get_frames', 'VideoInit',
           'VideoDecode', 'PyAVReader', 'DecordReader']


class VideoReadError(RuntimeError):
    """A video cannot be opened or decoded; the message names file and fix."""


class DecordReader:
    """Random-access reader over :class:`decord.VideoReader`.

    Args:
        filename (str): Video path.
        num_threads (int): Decoder threads. Defaults to 1.
    """

    def __init__(self, filename: str, num_threads: int = 1) -> None:
        import decord
        self.filename = filename
        self._vr = decord.VideoReader(filename, num_threads=num_threads)
        self.num_frames = len(self._vr)

    def get_batch(self, indices: Sequence[int]) -> List[np.ndarray]:
        """Decode frames (RGB uint8 H x W x 3) at ``indices``.

        decord mis-decodes some widths (it raises ``DECORDError`` on them);
        the check here catches any other malformed batch. Either way the
        caller (:class:`VideoDecode`) retries with PyAV, so opening needs no
        probe decode of frame 0 (which costs an extra seek when a clip
        starts past the first keyframe).
        """
        batch = self._vr.get_batch(list(indices)).asnumpy()
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise RuntimeError(f'decord returned shape {batch.shape}')
        return list(batch)


class PyAVReader:
    """Sequential reader over PyAV; decodes only up to the last needed frame.

    Args:
        filename (str): Video path.
    """

    def __init__(self, filename: str) -> None:
        import av
        self.filename = filename
        with av.open(filename) as container:
            stream = container.streams.video[0]
            num = stream.frames
            if not num:  # container without a frame count: count packets
                num = sum(1 for p in container.demux(stream) if p.size)
        self.num_frames = int(num)

    def get_batch(self, indices: Sequence[int]) -> List[np.ndarray]:
        """Decode frames (RGB uint8 H x W x 3) at ``indices``."""
        import av
        wanted = set(int(i) for i in indices)
        last = max(wanted)
        frames: Dict[int, np.ndarray] = {}
        with av.open(self.filename) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    frames[i] = frame.to_ndarray(format='rgb24')
                if i >= last:
                    break
        missing = wanted - set(frames)
        if missing:
            raise VideoReadError(
                f'{self.filename}: frames {sorted(missing)[:5]} could not be '
                f'decoded (the file reports {self.num_frames} frames but ends '
                'early; it is probably truncated). Re-encode or remove it.')
        return [frames[int(i)] for i in indices]


def get_frames(reader: Any, filename: str,
               indices: Sequence[int]) -> Tuple[List[np.ndarray], Any]:
    """Decode ``indices`` with ``reader``, retrying with PyAV where decord
    fails (some widths, some containers).

    Args:
        reader: A reader from :func:`open_video`.
        filename (str): The video (named in errors, reopened for PyAV).
        indices (Sequence[int]): Frame indices.

    Returns:
        tuple: The frames and the reader that decoded them.

    Raises:
        VideoReadError: If PyAV fails too.
    """
    try:
        return reader.get_batch(indices), reader
    except VideoReadError:
        raise
    except Exception as e:  # noqa: BLE001 - decord failure: try PyAV
        if isinstance(reader, PyAVReader):
            raise VideoReadError(f'{filename}: decoding failed ({e}).') from e
        reader = PyAVReader(filename)
        return reader.get_batch(indices), reader


def open_video(filename: str, backend: str = 'auto') -> Any:
    """Open a video, trying decord then PyAV.

    Args:
        filename (str): Video path.
        backend (str): ``'auto'`` (decord, then PyAV), ``'decord'`` or
            ``'pyav'``. Defaults to ``'auto'``.

    Returns:
        DecordReader | PyAVReader: A reader with ``num_frames`` and
        ``get_batch``.

    Raises:
        VideoReadError: If the file is missing, empty or undecodable.
    """
    if not osp.isfile(filename):
        raise VideoReadError(
            f'{filename}: no such video file. Check data_prefix / ann_file '
            'in the config, or remove the line from the annotation list.')
    if osp.getsize(filename) == 0:
        raise VideoReadError(f'{filename}: the file is empty (0 bytes). '
                             'Re-download it or remove it from the list.')
    order = {'auto': ('decord', 'pyav'), 'decord': ('decord', ),
             'pyav': ('pyav', )}[backend]
    errors = []
    for name in order:
        try:
            reader = DecordReader(filename) if name == 'decord' else \
                PyAVReader(filename)
        except ImportError as e:  # decord is optional
            errors.append(f'{name}: {e}')
            continue
        except Exception as e:  # noqa: BLE001 - decoders raise anything
            errors.append(f'{name}: {type(e).__name__}: {e}')
            continue
        if reader.num_frames <= 0:
            errors.append(f'{name}: no frames')
            continue
        return reader
    raise VideoReadError(
        f'{filename}: cannot decode the video ({"; ".join(errors)}). It is '
        'corrupt or in an unsupported format: re-encode it (e.g. ffmpeg -i '
        'IN -c:v libx264 OUT.mp4) or remove it from the annotation list. '
        'tools/analysis/check_dataset.py lists all such files.')


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
