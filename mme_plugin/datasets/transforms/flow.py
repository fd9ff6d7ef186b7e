"""The ``ComputeFlow`` transform: flows between consecutive dense frames of
every tube, computed by a backend of :mod:`mme_plugin.ops.flow` or read
from the cache of :mod:`mme_plugin.io.flow_cache`.
"""
import warnings
from typing import Dict, Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mme_plugin.io.flow_cache import (FlowCache, FlowCacheError,
                                      FlowCacheReadOnly)
from mme_plugin.ops.flow import FlowBackend, build_flow_backend
from mme_plugin.registry import TRANSFORMS

__all__ = ['ComputeFlow']


@TRANSFORMS.register_module()
class ComputeFlow(BaseTransform):
    """Flows between consecutive dense frames of every tube.

    With a cache the transform must come before any geometric augmentation
    (the cache holds flows of the original frames; a ``crop_bbox`` or
    ``flip`` key is an error).

    Required Keys:

        - dense_imgs (np.ndarray): ``[N_tubes, L + 1, H, W, 3]`` uint8.
        - filename (str), dense_frame_inds (np.ndarray,
          ``[N_tubes, L + 1]``), total_frames (int): only with a cache.

    Added Keys:

        - flows (np.ndarray): ``[N_tubes, L, H, W, 2]`` float32, pixels of
          the current frame size; with ``full_res=False``
          ``[N_tubes, L, h, w, 2]`` at the backend's working resolution, in
          its pixels.
        - flows_bwd (np.ndarray): Only with ``backward=True``: the flows
          from each dense frame to the one before it, same shape and units.

    Args:
        backend (dict | FlowBackend): Flow backend config, e.g.
            ``dict(type='FarnebackFlow')`` or
            ``dict(type='DISFlow', preset='fast', scale=0.5)``
            (a :class:`~mme_plugin.ops.FlowBackend`; a plain callable is
            wrapped, without cache support).
        cache_dir (str, optional): Flow cache directory
            (:class:`~mme_plugin.io.FlowCache`), filled by
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
        self.backend: FlowBackend = build_flow_backend(backend)
        self.cache = FlowCache(cache_dir, data_root) if cache_dir else None
        self.cache_mode = cache_mode
        self._read_only = False  # set once a write found it unwritable

    def _compute(self, dense: np.ndarray, backward: bool = False
                 ) -> np.ndarray:
        """Flows of every tube's consecutive dense frames; ``backward``:
        from each frame to the one before it (same indexing)."""
        if backward:
            return np.stack([self.backend.chain(d[::-1], self.full_res)[::-1]
                             for d in dense])
        return np.stack([self.backend.chain(d, self.full_res)
                         for d in dense])

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
        from mme_plugin.io.video import get_frames, open_video
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
