"""Optical flow between consecutive dense frames, with pluggable backends.

The release computes Farneback flow offline with a CUDA OpenCV binary, stores
it as uint8-quantized lossy mp4 and forgets to de-quantize it when reading
(release spec sections 2.1 and 8.1). Here flow is computed on the fly in
the data pipeline (CPU OpenCV by default) in float pixels, optionally read
from / written to a lossless cache (:class:`FlowCache`). Backends are
registered in ``TASK_UTILS`` so a GPU flow model can replace them: a backend
is any callable ``(prev, next) -> HxWx2 float32`` on uint8 RGB frames.
"""
import errno
import hashlib
import json
import os
import os.path as osp
import uuid
import warnings
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mme_plugin.registry import TASK_UTILS, TRANSFORMS

__all__ = [
    'FarnebackFlow', 'DISFlow', 'FlowCache', 'ComputeFlow', 'FlowCacheError',
    'FlowCacheReadOnly', 'build_flow_backend', 'resize_flow'
]


class FlowCacheError(RuntimeError):
    """A cache entry is missing, stale or corrupt where the cache is
    read-only, or the cache cannot be written (disk full)."""


class FlowCacheReadOnly(FlowCacheError):
    """The cache directory cannot be written (permissions, read-only FS)."""


def _to_gray(img: np.ndarray, scale: float) -> np.ndarray:
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    if scale != 1.0:
        h, w = gray.shape
        gray = cv2.resize(gray, (max(8, round(w * scale)),
                                 max(8, round(h * scale))),
                          interpolation=cv2.INTER_AREA)
    return gray


def resize_flow(flow: np.ndarray, size_wh) -> np.ndarray:
    """Resize one flow field (H x W x 2) and rescale its displacements.

    Args:
        flow (np.ndarray): Flow in pixels of its own size.
        size_wh (tuple[int, int]): New (width, height).

    Returns:
        np.ndarray: float32 flow of the new size, in pixels of the new size.
    """
    h, w = flow.shape[:2]
    new_w, new_h = size_wh
    out = cv2.resize(flow, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    # One fused per-channel multiply (strided NumPy updates of each channel
    # cost as much as the resize itself).
    return cv2.multiply(out, (new_w / w, new_h / h, 0, 0))


def _to_full_res(flow: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """:func:`resize_flow` to ``shape`` (H, W); no copy if already there."""
    h, w = shape[:2]
    if flow.shape[:2] == (h, w):
        return flow
    return resize_flow(flow, (w, h))


class _FlowBackend:
    """Base class: grayscale conversion, optional downscaling, float output.

    Args:
        scale (float): Compute flow on frames resized by this factor (speed);
            the result is resized back and given in full-resolution pixels.
            Defaults to 1.0.
    """

    def __init__(self, scale: float = 1.0) -> None:
        if not 0 < scale <= 1:
            raise ValueError(f'scale must be in (0, 1], got {scale}')
        self.scale = float(scale)

    def _flow(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def working_res(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow at the working resolution (``scale`` x frame size), in
        working-resolution pixels; what :class:`FlowCache` stores."""
        return self._flow(_to_gray(prev, self.scale),
                          _to_gray(nxt, self.scale)).astype(np.float32)

    def chain(self, frames: Sequence[np.ndarray],
              full_res: bool = True) -> np.ndarray:
        """Flows between consecutive ``frames``: ``[len - 1, H, W, 2]``,
        like ``__call__`` on each pair, each frame converted once. With
        ``full_res=False`` they stay at the working resolution, in its
        pixels (what :meth:`working_res` gives)."""
        grays = [_to_gray(f, self.scale) for f in frames]
        shape = np.shape(frames[0])[:2]
        flows = [self._flow(a, b).astype(np.float32)
                 for a, b in zip(grays[:-1], grays[1:])]
        if full_res:
            flows = [_to_full_res(f, shape) for f in flows]
        return np.stack(flows)

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow from ``prev`` to ``nxt`` (uint8 RGB or gray), HxWx2 float32.

        ``flow[y, x] = (dx, dy)``: the pixel at (x, y) in ``prev`` moves to
        (x + dx, y + dy) in ``nxt``. Full frame resolution and pixels.
        """
        return _to_full_res(self.working_res(prev, nxt), prev.shape[:2])

    @property
    def tag(self) -> str:
        """Identifies the backend and its settings (the cache key)."""
        items = sorted((k, v) for k, v in vars(self).items()
                       if not k.startswith('_'))
        return type(self).__name__ + hashlib.sha1(
            repr(items).encode()).hexdigest()[:8]


@TASK_UTILS.register_module()
class FarnebackFlow(_FlowBackend):
    """OpenCV Farneback flow with the CUDA defaults the release used.

    Defaults follow ``cv::cuda::FarnebackOpticalFlow::create()`` (levels 5,
    pyramid scale 0.5, window 13, 10 iterations, poly_n 5, sigma 1.1), the
    flow of the authors' ``dense_flow`` binary (``docs/release_spec.md`` 2.1).

    Args:
        scale (float): See :class:`_FlowBackend`. Defaults to 1.0.
        levels (int): Pyramid levels. Defaults to 5.
        pyr_scale (float): Pyramid scale. Defaults to 0.5.
        winsize (int): Averaging window. Defaults to 13.
        iterations (int): Iterations per level. Defaults to 10.
        poly_n (int): Pixel neighbourhood of the polynomial. Defaults to 5.
        poly_sigma (float): Gaussian sigma of the polynomial. Defaults to 1.1.
    """

    def __init__(self, scale: float = 1.0, levels: int = 5,
                 pyr_scale: float = 0.5, winsize: int = 13,
                 iterations: int = 10, poly_n: int = 5,
                 poly_sigma: float = 1.1) -> None:
        super().__init__(scale)
        self.levels = levels
        self.pyr_scale = pyr_scale
        self.winsize = winsize
        self.iterations = iterations
        self.poly_n = poly_n
        self.poly_sigma = poly_sigma

    def _flow(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        # Pyramid levels beyond what the frame size allows would fail.
        levels = max(1, min(self.levels,
                            int(np.log(min(prev.shape) / 8) /
                                np.log(1 / self.pyr_scale)) + 1))
        return cv2.calcOpticalFlowFarneback(
            prev, nxt, None, self.pyr_scale, levels, self.winsize,
            self.iterations, self.poly_n, self.poly_sigma, 0)


@TASK_UTILS.register_module()
class DISFlow(_FlowBackend):
    """OpenCV DIS flow: 4x (medium) to 20x (fast) faster than Farneback.

    Args:
        scale (float): See :class:`_FlowBackend`. Defaults to 1.0.
        preset (str): ``'ultrafast'``, ``'fast'`` or ``'medium'``.
            Defaults to ``'medium'``.
    """

    _PRESETS = {
        'ultrafast': cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        'fast': cv2.DISOPTICAL_FLOW_PRESET_FAST,
        'medium': cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
    }

    def __init__(self, scale: float = 1.0, preset: str = 'medium') -> None:
        super().__init__(scale)
        if preset not in self._PRESETS:
            raise ValueError(f'preset must be one of {list(self._PRESETS)}')
        self.preset = preset
        self._dis = None

    def _flow(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        if self._dis is None:  # not picklable: create lazily per worker
            self._dis = cv2.DISOpticalFlow_create(self._PRESETS[self.preset])
        return self._dis.calc(prev, nxt, None)

    def __getstate__(self) -> dict:
        state = dict(vars(self))
        state['_dis'] = None
        return state


def build_flow_backend(cfg) -> _FlowBackend:
    """Build a flow backend from a config dict (or return a callable as is)."""
    if callable(cfg):
        return cfg
    return TASK_UTILS.build(cfg)


class FlowCache:
    """A lossless on-disk cache of the consecutive flows of each video.

    One entry per (video, backend settings): ``<root>/<relpath>.<tag>.npy``
    holds int16 flows ``[num_frames - 1, h, w, 2]`` in 1/``QUANT`` px
    (|flow| < 512 px, resolution 1/64 px) at the backend's working resolution,
    and ``.json`` beside it the metadata that detects stale entries (video
    size, nanosecond mtime and a fingerprint of three 64 KiB chunks, so a
    video replaced by another of the same size with its mtime kept is
    caught; frame count and shape). The array is memory-mapped, so a clip
    reads only its own frame pairs.

    Failure modes (``docs/robustness.md``): a truncated or zero-filled entry
    is reported by :meth:`check` as corrupt (its ``.npy`` header and size are
    verified); every file of an entry is written under a temporary name that
    is unique per writer and renamed into place, so concurrent writers of one
    entry never see each other's partial files; a failed write (disk full)
    removes its temporary files and raises :class:`FlowCacheError` naming the
    cache directory; an unwritable directory raises
    :class:`FlowCacheReadOnly`.

    Args:
        root (str): Cache directory.
        data_root (str, optional): Video paths are made relative to it.
    """

    QUANT = 64.0

    def __init__(self, root: str, data_root: Optional[str] = None) -> None:
        self.root = root
        self.data_root = data_root

    def paths(self, video: str, tag: str):
        """Return the (array, metadata) paths of an entry."""
        rel = osp.relpath(video, self.data_root) if self.data_root else \
            video.lstrip('/')
        if rel.startswith('..'):
            rel = osp.abspath(video).lstrip('/')
        base = osp.join(self.root, f'{rel}.{tag}')
        return base + '.npy', base + '.json'

    FINGERPRINT_CHUNK = 1 << 16

    @classmethod
    def video_stamp(cls, video: str) -> Dict:
        """Size, nanosecond mtime and a content fingerprint of the video
        (sha1 of its first, middle and last 64 KiB): the stale-entry check.
        """
        st = os.stat(video)
        sha = hashlib.sha1()
        chunk = cls.FINGERPRINT_CHUNK
        with open(video, 'rb') as f:
            for offset in sorted({0, max(0, st.st_size // 2 - chunk // 2),
                                  max(0, st.st_size - chunk)}):
                f.seek(offset)
                sha.update(f.read(chunk))
        return dict(size=st.st_size, mtime_ns=st.st_mtime_ns,
                    sha1=sha.hexdigest())

    @staticmethod
    def _array_problem(arr_path: str, shape: Sequence[int]) -> Optional[str]:
        """Why the ``.npy`` file is not a complete int16 array of ``shape``.
        """
        try:
            with open(arr_path, 'rb') as f:
                version = np.lib.format.read_magic(f)
                header = np.lib.format._read_array_header(f, version)
                offset = f.tell()
            got_shape, _, dtype = header
        except (OSError, ValueError) as e:
            return f'corrupt (not a readable .npy file: {e})'
        if np.dtype(dtype) != np.int16 or list(got_shape) != list(shape):
            return (f'corrupt (holds {dtype} {list(got_shape)}, metadata says '
                    f'int16 {list(shape)})')
        need = offset + int(np.prod(got_shape)) * 2
        size = os.path.getsize(arr_path)
        if size < need:
            return f'corrupt (truncated: {size} of {need} bytes)'
        return None

    def check(self, video: str, tag: str, num_frames: int) -> Optional[str]:
        """Why the entry cannot be used (``None`` if it can)."""
        arr_path, meta_path = self.paths(video, tag)
        if not (osp.isfile(arr_path) and osp.isfile(meta_path)):
            return 'missing'
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            return f'unreadable metadata ({e})'
        if meta.get('video') != self.video_stamp(video):
            return 'stale (the video changed after the cache was written)'
        if meta.get('num_frames') != num_frames:
            return (f"stale (cached {meta.get('num_frames')} frames, video "
                    f'has {num_frames})')
        return self._array_problem(arr_path, meta.get('shape', []))

    def read(self, video: str, tag: str, pair_starts: np.ndarray,
             full_shape: Sequence[int]) -> np.ndarray:
        """Flows ``frame i -> i + 1`` for every ``i`` in ``pair_starts``.

        Returns:
            np.ndarray: float32 ``[*pair_starts.shape, H, W, 2]`` in
            full-resolution pixels.
        """
        arr_path = self.paths(video, tag)[0]
        try:
            arr = np.load(arr_path, mmap_mode='r')
        except (OSError, ValueError) as e:
            raise FlowCacheError(
                f'{video}: flow cache entry {arr_path} is unreadable ({e}). '
                'Refill it with `python tools/data/extract_trajectories.py '
                'CONFIG`.') from None
        flat = np.asarray(pair_starts).reshape(-1)
        h, w = full_shape[:2]
        out = np.empty((len(flat), h, w, 2), np.float32)
        inv = np.float32(1 / self.QUANT)
        for k, i in enumerate(flat):
            if arr.shape[1:3] == (h, w):  # dequantize straight into out
                np.multiply(arr[i], inv, out=out[k])
            else:
                out[k] = _to_full_res(arr[i] * inv, full_shape)
        return out.reshape(*np.shape(pair_starts), h, w, 2)

    def write(self, video: str, tag: str, flows: np.ndarray,
              num_frames: int) -> None:
        """Store all consecutive flows of a video.

        Every file goes through a temporary name unique to this writer and
        an atomic rename; on failure the temporary files are removed.

        Raises:
            FlowCacheReadOnly: The directory cannot be written.
            FlowCacheError: Any other write failure (e.g. disk full), naming
                the cache directory.
        """
        arr_path, meta_path = self.paths(video, tag)
        token = f'.tmp{os.getpid()}-{uuid.uuid4().hex[:8]}'
        tmp_arr, tmp_meta = arr_path + token + '.npy', meta_path + token
        q = np.clip(np.round(flows * self.QUANT), -32767, 32767)
        meta = dict(video=self.video_stamp(video), num_frames=num_frames,
                    shape=list(q.shape), quant=self.QUANT)
        try:
            os.makedirs(osp.dirname(arr_path), exist_ok=True)
            np.save(tmp_arr, q.astype(np.int16))
            with open(tmp_meta, 'w') as f:
                json.dump(meta, f)
            os.replace(tmp_arr, arr_path)
            os.replace(tmp_meta, meta_path)
        except OSError as e:
            for tmp in (tmp_arr, tmp_meta):
                if osp.exists(tmp):
                    os.remove(tmp)
            if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise FlowCacheReadOnly(
                    f'flow cache directory {self.root} is not writable ({e})'
                ) from None
            raise FlowCacheError(
                f'writing the flow cache entry of {video} to {self.root} '
                f'failed ({e.strerror or e}); nothing partial was left. Free '
                'space there (an entry of this video needs '
                f'{q.size * 2 / 2**20:.0f} MiB) or point cache_dir elsewhere.'
            ) from None


@TRANSFORMS.register_module()
class ComputeFlow(BaseTransform):
    """Flows between consecutive dense frames of every tube.

    Required keys: ``dense_imgs`` (``[N_tubes, L + 1, H, W, 3]``); with a
    cache also ``filename``, ``dense_frame_inds`` and ``total_frames``, and
    the transform must come before any geometric augmentation (the cache
    holds flows of the original frames). Added key: ``flows``
    (``[N_tubes, L, H, W, 2]`` float32, pixels of the current frame size;
    with ``full_res=False`` ``[N_tubes, L, h, w, 2]`` at the backend's
    working resolution, in its pixels); with ``backward=True`` also
    ``flows_bwd``, the flows from each dense frame to the one before it,
    same shape and units.

    Args:
        backend (dict): Flow backend config, e.g.
            ``dict(type='FarnebackFlow')`` or
            ``dict(type='DISFlow', preset='fast', scale=0.5)``.
        cache_dir (str, optional): Flow cache directory
            (:class:`FlowCache`), filled by
            ``tools/data/extract_trajectories.py``. Defaults to None (no
            cache).
        cache_mode (str): ``'read'``: a missing or stale entry is an error
            that names the video and the command that fills the cache;
            ``'readwrite'``: compute the whole video's flows and store them.
            Defaults to ``'read'``.
        data_root (str, optional): Root that cache paths are relative to.
        full_res (bool): Resample flows computed at a reduced ``scale`` to
            the frame size. False keeps them at the working resolution and
            :class:`ComputeTrajectories` samples them there (no upsampling;
            faster). Only for a ComputeFlow that comes after all geometric
            transforms, without a cache. Defaults to True.
        backward (bool): Also compute the backward flows ``flows_bwd``
            (``[N_tubes, L, H, W, 2]``, dense frame j + 1 -> j), for the
            forward-backward check of :class:`CheckTrajectoryReliability`.
            Doubles the flow cost; cached as entries of their own (tag
            ``<backend tag>-bwd``). Defaults to False.
    """

    def __init__(self,
                 backend: Dict = dict(type='FarnebackFlow'),
                 cache_dir: Optional[str] = None,
                 cache_mode: str = 'read',
                 data_root: Optional[str] = None,
                 full_res: bool = True,
                 backward: bool = False) -> None:
        if cache_mode not in ('read', 'readwrite'):
            raise ValueError("cache_mode must be 'read' or 'readwrite'")
        if cache_dir and not full_res:
            raise ValueError(
                'ComputeFlow(full_res=False) is for flow computed after '
                'crop/resize; a cache holds flows of the original frames, '
                'which crop/resize need at full resolution')
        self.full_res = full_res
        self.backward = backward
        self.backend_cfg = backend
        self.backend = build_flow_backend(backend)
        self.cache = FlowCache(cache_dir, data_root) if cache_dir else None
        self.cache_mode = cache_mode
        self._read_only = False  # set once a write found it unwritable

    def _compute(self, dense: np.ndarray, backward: bool = False
                 ) -> np.ndarray:
        """Flows of every tube's consecutive dense frames; ``backward``:
        from each frame to the one before it (same indexing)."""
        n, s = dense.shape[:2]
        chain = getattr(self.backend, 'chain', None)  # any callable works
        if chain is not None:
            if backward:
                return np.stack([chain(d[::-1], self.full_res)[::-1]
                                 for d in dense])
            return np.stack([chain(d, self.full_res) for d in dense])
        flows = np.empty((n, s - 1, *dense.shape[2:4], 2), np.float32)
        for i in range(n):
            for j in range(s - 1):
                a, b = dense[i, j], dense[i, j + 1]
                flows[i, j] = self.backend(b, a) if backward else \
                    self.backend(a, b)
        return flows

    def _compute_all(self, results: Dict) -> Dict:
        dense = results['dense_imgs']
        results['flows'] = self._compute(dense)
        if self.backward:
            results['flows_bwd'] = self._compute(dense, backward=True)
        return results

    @property
    def tags(self) -> Dict[str, str]:
        """Cache tag of each flow key this transform produces."""
        tag = self.backend.tag
        return dict(flows=tag, flows_bwd=tag + '-bwd') if self.backward \
            else dict(flows=tag)

    def check_cache(self, video: str, total: int) -> Optional[str]:
        """Why the cache cannot serve ``video`` (``None`` if it can): every
        direction this transform needs must have a usable entry."""
        for key, tag in self.tags.items():
            reason = self.cache.check(video, tag, total)
            if reason is not None:
                return reason if key == 'flows' else f'{reason} (backward)'
        return None

    def transform(self, results: Dict) -> Dict:
        """Compute (or read) the flows."""
        dense = results['dense_imgs']
        if self.cache is None:
            return self._compute_all(results)
        if 'crop_bbox' in results or results.get('flip', False):
            raise RuntimeError(
                'ComputeFlow with a cache must come before crop/resize/flip '
                'in the pipeline: the cache holds flows of original frames.')
        video = results['filename']
        total = int(results['total_frames'])
        reason = self.check_cache(video, total)
        if reason is not None:
            if self.cache_mode == 'read':
                raise FlowCacheError(
                    f'{video}: flow cache entry {reason} in '
                    f'{self.cache.root} (backend {self.backend.tag}). Fill '
                    'the cache with `python tools/data/extract_trajectories.py'
                    " CONFIG` or set cache_mode='readwrite' (or drop "
                    'cache_dir).')
            if self._read_only:
                return self._compute_all(results)
            try:
                self.fill(video, total)
            except FlowCacheReadOnly as e:
                warnings.warn(f'{e}: computing flows on the fly (no caching)'
                              ' from now on in this process.')
                self._read_only = True
                return self._compute_all(results)
        starts = results['dense_frame_inds'][:, :-1]
        for key, tag in self.tags.items():
            results[key] = self.cache.read(video, tag, starts,
                                           dense.shape[2:4])
        return results

    def fill(self, video: str, total: Optional[int] = None,
             reader=None) -> None:
        """Compute and store all consecutive flows of ``video`` (and the
        backward ones if ``backward``).

        Args:
            video (str): Video path.
            total (int, optional): Frame count; defaults to the reader's.
            reader (optional): An already opened reader of ``video``
                (:func:`open_video`), to avoid opening it twice.
        """
        from .video_io import get_frames, open_video
        if reader is None:
            reader = open_video(video)
        total = reader.num_frames if total is None else total
        flows: Dict[str, list] = {key: [] for key in self.tags}
        prev = None
        step = 64
        for start in range(0, total, step):
            idx = list(range(start, min(total, start + step)))
            batch, reader = get_frames(reader, video, idx)  # PyAV fallback
            for frame in batch:
                if prev is not None:
                    flows['flows'].append(
                        self.backend.working_res(prev, frame))
                    if self.backward:
                        flows['flows_bwd'].append(
                            self.backend.working_res(frame, prev))
                prev = frame
        for key, tag in self.tags.items():
            self.cache.write(video, tag, np.stack(flows[key]), total)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(backend={self.backend_cfg}, '
                f'cache_dir={self.cache.root if self.cache else None}, '
                f'cache_mode={self.cache_mode}, full_res={self.full_res}, '
                f'backward={self.backward})')
