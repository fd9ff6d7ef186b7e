"""Optical flow backends: subclasses of :class:`FlowBackend`.

The release computes Farneback flow offline with a CUDA OpenCV binary,
stores it as uint8-quantized lossy mp4 and forgets to de-quantize it when
reading (release spec sections 2.1 and 8.1). Here flow is computed in float
pixels by a backend registered in ``TASK_UTILS`` (OpenCV Farneback at the
release's settings, DIS, or the same Farneback in PyTorch:
``TorchFarnebackFlow``), so a GPU flow model can replace it: a backend is
a :class:`FlowBackend` subclass (one abstract method, ``compute``), called
``(prev, next) -> HxWx2 float32`` on uint8 RGB frames; a plain callable is
wrapped (:class:`CallableFlow`, no cache). The ``ComputeFlow`` transform
runs it on every tube; :mod:`mme_plugin.io` keeps a lossless cache of its
output, keyed by the backend's ``tag``.
"""
import hashlib
from abc import ABCMeta, abstractmethod
from typing import Sequence

import cv2
import numpy as np
import torch

from mme_plugin.registry import TASK_UTILS
from .farneback_torch import farneback_flow, farneback_levels

__all__ = ['FlowBackend', 'CallableFlow', 'FarnebackFlow', 'DISFlow',
           'TorchFarnebackFlow', 'build_flow_backend', 'resize_flow',
           'to_full_res']


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


class FlowBackend(metaclass=ABCMeta):
    """Base class of the flow backends: what :class:`ComputeFlow` and the
    flow cache (:class:`~mme_plugin.io.FlowCache`) need.

    A backend turns each frame into its working input once
    (:meth:`prepare`: grayscale, resized by ``scale``), computes flow
    between prepared frames at that working resolution (:meth:`compute`,
    the one abstract method; :meth:`compute_batch` for many pairs, e.g. in
    one batch on a GPU), and gives it back in full-resolution pixels
    (:meth:`__call__`), at the working resolution (:meth:`working_res`,
    what the cache stores), or along a tube (:meth:`chain`). :attr:`tag`
    names the backend and its settings (the cache key). A GPU backend
    overrides :meth:`compute_batch`, an RGB one :meth:`prepare`.

    Args:
        scale (float): Compute flow on frames resized by this factor (speed);
            the result is resized back and given in full-resolution pixels.
            Defaults to 1.0.
    """

    def __init__(self, scale: float = 1.0) -> None:
        if not 0 < scale <= 1:
            raise ValueError(f'scale must be in (0, 1], got {scale}')
        self.scale = float(scale)

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """One frame (uint8 RGB or gray) as :meth:`compute` takes it: gray,
        resized by ``scale``."""
        return _to_gray(frame, self.scale)

    @abstractmethod
    def compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow ``h x w x 2`` from ``prev`` to ``nxt``, both prepared
        (:meth:`prepare`), in working-resolution pixels."""

    def compute_batch(self, prevs: Sequence[np.ndarray],
                      nexts: Sequence[np.ndarray]) -> np.ndarray:
        """Flows of prepared pairs, ``[N, h, w, 2]`` float32 (one
        :meth:`compute` per pair)."""
        return np.stack([self.compute(a, b).astype(np.float32)
                         for a, b in zip(prevs, nexts)])

    def working_res(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow at the working resolution (``scale`` x frame size), in
        working-resolution pixels; what
        :class:`~mme_plugin.io.FlowCache` stores."""
        return self.compute(self.prepare(prev),
                            self.prepare(nxt)).astype(np.float32)

    def chain(self, frames: Sequence[np.ndarray],
              full_res: bool = True) -> np.ndarray:
        """Flows between consecutive ``frames``: ``[len - 1, H, W, 2]``,
        like ``__call__`` on each pair, each frame prepared once
        (:meth:`compute_batch` on all pairs). With ``full_res=False`` they
        stay at the working resolution, in its pixels (what
        :meth:`working_res` gives)."""
        prepared = [self.prepare(f) for f in frames]
        flows = self.compute_batch(prepared[:-1], prepared[1:])
        if full_res:
            shape = np.shape(frames[0])[:2]
            flows = np.stack([to_full_res(f, shape) for f in flows])
        return flows

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow from ``prev`` to ``nxt`` (uint8 RGB or gray), HxWx2 float32.

        ``flow[y, x] = (dx, dy)``: the pixel at (x, y) in ``prev`` moves to
        (x + dx, y + dy) in ``nxt``. Full frame resolution and pixels.
        """
        return to_full_res(self.working_res(prev, nxt), prev.shape[:2])

    @property
    def tag(self) -> str:
        """Identifies the backend and its settings (the cache key): the
        class name and a hash of the public attributes (those not starting
        with ``_``; keep settings that do not change the flow, e.g. a
        device, private)."""
        items = sorted((k, v) for k, v in vars(self).items()
                       if not k.startswith('_'))
        return type(self).__name__ + hashlib.sha1(
            repr(items).encode()).hexdigest()[:8]


#: Former private name of :class:`FlowBackend`.
_FlowBackend = FlowBackend


class CallableFlow(FlowBackend):
    """A plain callable ``(prev, next) -> H x W x 2`` (full-resolution RGB
    frames in, full-resolution pixels out) as a :class:`FlowBackend`, what
    :func:`build_flow_backend` makes of one. It has no :attr:`tag`: to
    cache its flow, subclass :class:`FlowBackend` instead.

    Args:
        fn (callable): The flow function.
    """

    def __init__(self, fn) -> None:
        super().__init__(1.0)
        self._fn = fn

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """The frame as is."""
        return frame

    def compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """``fn(prev, nxt)``."""
        return self._fn(prev, nxt)

    @property
    def tag(self) -> str:
        raise TypeError(
            f'flow backend {self._fn!r} is a plain callable, which the flow '
            'cache cannot key: subclass mme_plugin.ops.FlowBackend, register '
            'it in TASK_UTILS and give ComputeFlow its config (or drop '
            'cache_dir)')

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self._fn!r})'


@TASK_UTILS.register_module()
class FarnebackFlow(FlowBackend):
    """OpenCV Farneback flow with the CUDA defaults the release used.

    Defaults follow ``cv::cuda::FarnebackOpticalFlow::create()`` (levels 5,
    pyramid scale 0.5, window 13, 10 iterations, poly_n 5, sigma 1.1), the
    flow of the authors' ``dense_flow`` binary (``docs/release_spec.md`` 2.1).

    Args:
        scale (float): See :class:`FlowBackend`. Defaults to 1.0.
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

    def compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """OpenCV Farneback on two gray frames."""
        # Pyramid levels beyond what the frame size allows would fail.
        levels = max(1, min(self.levels,
                            int(np.log(min(prev.shape) / 8) /
                                np.log(1 / self.pyr_scale)) + 1))
        return cv2.calcOpticalFlowFarneback(
            prev, nxt, None, self.pyr_scale, levels, self.winsize,
            self.iterations, self.poly_n, self.poly_sigma, 0)


@TASK_UTILS.register_module()
class DISFlow(FlowBackend):
    """OpenCV DIS flow: 4x (medium) to 20x (fast) faster than Farneback.

    Args:
        scale (float): See :class:`FlowBackend`. Defaults to 1.0.
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

    def compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """OpenCV DIS on two gray frames."""
        if self._dis is None:  # not picklable: create lazily per worker
            self._dis = cv2.DISOpticalFlow_create(self._PRESETS[self.preset])
        return self._dis.calc(prev, nxt, None)

    def __getstate__(self) -> dict:
        state = dict(vars(self))
        state['_dis'] = None
        return state


@TASK_UTILS.register_module()
class TorchFarnebackFlow(FlowBackend):
    """Farneback flow by the PyTorch kernel
    :func:`~mme_plugin.ops.farneback_torch.farneback_flow`.

    The same algorithm, parameters (defaults: the release's, as
    :class:`FarnebackFlow`) and level clamping as :class:`FarnebackFlow`;
    its flow agrees with OpenCV's to float rounding (``docs/benchmarks.md``,
    "Farneback in PyTorch vs OpenCV"). :meth:`chain` computes all pairs of
    a tube in one batch. On the CPU it is slower than OpenCV; it is the
    kernel that can move flow onto the training device.

    Args:
        scale (float): See :class:`FlowBackend`. Defaults to 1.0.
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

    def compute_batch(self, prevs: Sequence[np.ndarray],
                      nexts: Sequence[np.ndarray]) -> np.ndarray:
        """Flows of gray uint8 pairs, ``[N, H, W, 2]`` float32, in one
        batch."""
        shape = np.shape(prevs[0])
        # The same level clamp as FarnebackFlow.
        levels = farneback_levels(shape[0], shape[1], self.levels,
                                  self.pyr_scale)
        a = torch.from_numpy(np.stack(prevs)).to(self._device)
        b = torch.from_numpy(np.stack(nexts)).to(self._device)
        flow = farneback_flow(a, b, self.pyr_scale, levels, self.winsize,
                              self.iterations, self.poly_n, self.poly_sigma,
                              self.gaussian)
        return flow.float().cpu().numpy()

    def compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """One pair (:meth:`compute_batch` of one)."""
        return self.compute_batch([prev], [nxt])[0]


def build_flow_backend(cfg) -> FlowBackend:
    """Build a flow backend from a config dict; a :class:`FlowBackend` is
    returned as is, another callable wrapped (:class:`CallableFlow`).

    Raises:
        TypeError: If the config builds something that is not a
            :class:`FlowBackend`.
    """
    if isinstance(cfg, FlowBackend):
        return cfg
    if callable(cfg):
        return CallableFlow(cfg)
    backend = TASK_UTILS.build(cfg)
    if not isinstance(backend, FlowBackend):
        if callable(backend):
            return CallableFlow(backend)
        raise TypeError(f'flow backend {cfg} built {type(backend).__name__},'
                        ' which is not a mme_plugin.ops.FlowBackend')
    return backend
