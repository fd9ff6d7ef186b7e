"""Optical flow backends: any callable ``(prev, next) -> H x W x 2``.

The release computes Farneback flow offline with a CUDA OpenCV binary,
stores it as uint8-quantized lossy mp4 and forgets to de-quantize it when
reading (release spec sections 2.1 and 8.1). Here flow is computed in float
pixels by a backend registered in ``TASK_UTILS`` (OpenCV Farneback at the
release's settings, DIS, or the same Farneback in PyTorch:
``TorchFarnebackFlow``), so a GPU flow model can replace it: a backend is
any callable ``(prev, next) -> HxWx2 float32`` on uint8 RGB frames. The
``ComputeFlow`` transform runs it on every tube; :mod:`mme_plugin.io` keeps
a lossless cache of its output.
"""
import hashlib
from typing import Sequence

import cv2
import numpy as np
import torch

from mme_plugin.registry import TASK_UTILS
from .farneback_torch import farneback_flow

__all__ = ['FarnebackFlow', 'DISFlow', 'TorchFarnebackFlow',
           'build_flow_backend', 'resize_flow', 'to_full_res']


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


def to_full_res(flow: np.ndarray, shape: Sequence[int]) -> np.ndarray:
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
        working-resolution pixels; what
        :class:`~mme_plugin.io.FlowCache` stores."""
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
            flows = [to_full_res(f, shape) for f in flows]
        return np.stack(flows)

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow from ``prev`` to ``nxt`` (uint8 RGB or gray), HxWx2 float32.

        ``flow[y, x] = (dx, dy)``: the pixel at (x, y) in ``prev`` moves to
        (x + dx, y + dy) in ``nxt``. Full frame resolution and pixels.
        """
        return to_full_res(self.working_res(prev, nxt), prev.shape[:2])

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


@TASK_UTILS.register_module()
class TorchFarnebackFlow(_FlowBackend):
    """Farneback flow by the PyTorch kernel
    :func:`~mme_plugin.ops.farneback_torch.farneback_flow`.

    The same algorithm, parameters (defaults: the release's, as
    :class:`FarnebackFlow`) and level clamping as :class:`FarnebackFlow`;
    its flow agrees with OpenCV's to float rounding (``docs/benchmarks.md``,
    "Farneback in PyTorch vs OpenCV"). :meth:`chain` computes all pairs of
    a tube in one batch. On the CPU it is slower than OpenCV; it is the
    kernel that can move flow onto the training device.

    Args:
        scale (float): See :class:`_FlowBackend`. Defaults to 1.0.
        levels (int): Pyramid levels. Defaults to 5.
        pyr_scale (float): Pyramid scale. Defaults to 0.5.
        winsize (int): Averaging window. Defaults to 13.
        iterations (int): Iterations per level. Defaults to 10.
        poly_n (int): Pixel neighbourhood of the polynomial. Defaults to 5.
        poly_sigma (float): Gaussian sigma of the polynomial. Defaults to 1.1.
        gaussian (bool): Gaussian window (OpenCV's
            ``OPTFLOW_FARNEBACK_GAUSSIAN``). Defaults to False, as the
            release.
        device (str): Torch device to compute on (not part of the cache
            tag: every device gives the same flow to float rounding).
            Defaults to ``'cpu'``.
    """

    def __init__(self, scale: float = 1.0, levels: int = 5,
                 pyr_scale: float = 0.5, winsize: int = 13,
                 iterations: int = 10, poly_n: int = 5,
                 poly_sigma: float = 1.1, gaussian: bool = False,
                 device: str = 'cpu') -> None:
        super().__init__(scale)
        self.levels = levels
        self.pyr_scale = pyr_scale
        self.winsize = winsize
        self.iterations = iterations
        self.poly_n = poly_n
        self.poly_sigma = poly_sigma
        self.gaussian = bool(gaussian)
        self._device = device

    def _batch(self, prevs: Sequence[np.ndarray],
               nexts: Sequence[np.ndarray]) -> np.ndarray:
        """Flows of gray uint8 pairs, ``[N, H, W, 2]`` float32."""
        shape = np.shape(prevs[0])
        # The same level clamp as FarnebackFlow.
        levels = max(1, min(self.levels,
                            int(np.log(min(shape) / 8) /
                                np.log(1 / self.pyr_scale)) + 1))
        a = torch.from_numpy(np.stack(prevs)).to(self._device)
        b = torch.from_numpy(np.stack(nexts)).to(self._device)
        flow = farneback_flow(a, b, self.pyr_scale, levels, self.winsize,
                              self.iterations, self.poly_n, self.poly_sigma,
                              self.gaussian)
        return flow.float().cpu().numpy()

    def _flow(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        return self._batch([prev], [nxt])[0]

    def chain(self, frames: Sequence[np.ndarray],
              full_res: bool = True) -> np.ndarray:
        """As :meth:`_FlowBackend.chain`, all pairs in one batch."""
        grays = [_to_gray(f, self.scale) for f in frames]
        flows = self._batch(grays[:-1], grays[1:])
        if full_res:
            shape = np.shape(frames[0])[:2]
            flows = np.stack([to_full_res(f, shape) for f in flows])
        return flows


def build_flow_backend(cfg) -> _FlowBackend:
    """Build a flow backend from a config dict (or return a callable as is)."""
    if callable(cfg):
        return cfg
    return TASK_UTILS.build(cfg)
