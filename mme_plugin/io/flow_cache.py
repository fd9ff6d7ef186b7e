"""A lossless on-disk cache of optical flow, safe under concurrent writers,
kills, full disks and read-only directories (``docs/robustness.md``)."""
import errno
import hashlib
import json
import os
import os.path as osp
import uuid
from typing import Dict, Optional, Sequence

import numpy as np

from mme_plugin.ops.flow import to_full_res

__all__ = ['FlowCache', 'FlowCacheError', 'FlowCacheReadOnly']


class FlowCacheError(RuntimeError):
    """A cache entry is missing, stale or corrupt where the cache is
    read-only, or the cache cannot be written (disk full)."""


class FlowCacheReadOnly(FlowCacheError):
    """The cache directory cannot be written (permissions, read-only FS)."""


class FlowCache:
    """A lossless on-disk cache of the consecutive flows of each video.

    One entry per (video, backend settings): ``<root>/<relpath>.<tag>.npy``
    (``tag``: :attr:`FlowBackend.tag <mme_plugin.ops.FlowBackend.tag>`)
    holds int16 flows ``[num_frames - 1, h, w, 2]`` in 1/``QUANT`` px
    (|flow| < 512 px, resolution 1/64 px) at the backend's working resolution
    (:meth:`FlowBackend.working_res <mme_plugin.ops.FlowBackend.working_res>`),
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
                out[k] = to_full_res(arr[i] * inv, full_shape)
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
