"""Farnebäck dense optical flow in PyTorch, batched and device-agnostic.

Two-frame motion estimation by polynomial expansion (G. Farnebäck,
"Two-Frame Motion Estimation Based on Polynomial Expansion", SCIA 2003,
LNCS 2749, pp. 363-370), with the multi-scale scheme, parameters and
border behaviour of OpenCV's CPU ``cv2.calcOpticalFlowFarneback`` so that
its flow can replace OpenCV's in the data pipeline
(``docs/benchmarks.md``, "Farneback in PyTorch vs OpenCV", has the measured
agreement: float32 rounding, ~1e-6 px). Written from the paper and the
documented behaviour of OpenCV:

* ``calcOpticalFlowFarneback``:
  https://docs.opencv.org/4.x/dc/d6b/group__video__track.html
* ``GaussianBlur`` / ``getGaussianKernel`` (kernel for ``sigma <= 0``):
  https://docs.opencv.org/4.x/d4/d86/group__imgproc__filter.html
* ``resize`` (``INTER_LINEAR``, half-pixel centres):
  https://docs.opencv.org/4.x/da/d54/group__imgproc__transform.html

The implementation facts those docs leave open (how the pyramid is built,
the border weights, the treatment of displaced positions outside the frame,
the determinant regulariser, the Gaussian window's sigma; listed below) are
facts about OpenCV's behaviour, each confirmed black-box by comparing this
code's output with ``cv2.calcOpticalFlowFarneback``
(``benchmarks/farneback_agreement.py``; a wrong one moves the flow by far
more than 1e-6 px). No OpenCV code is used.

Algorithm, per pair, coarse to fine:

1. **Pyramid.** Level ``k`` has scale ``s = pyr_scale ** k`` and size
   ``round(W * s) x round(H * s)``; it is made from the *original* frame
   (not from the level below): a Gaussian blur with ``sigma = (1/s - 1)/2``
   and an odd kernel of ``max(3, round(5 sigma) | 1)`` taps (reflect-101
   borders), then a bilinear resize with half-pixel centres. At level 0
   (``sigma = 0``) the 3-tap kernel is the one ``getGaussianKernel`` uses
   for ``sigma <= 0``, ``[1, 2, 1] / 4``. Levels whose width or height
   would fall under 32 px are dropped, and ``levels`` coarser levels are
   used on top of the full-resolution one when the size allows (OpenCV's
   behaviour: ``levels + 1`` layers, one more than its docs say).
2. **Polynomial expansion** of both frames (paper section 2): per pixel a
   weighted least-squares fit ``f(x) ~ x^T A x + b^T x + c`` over a
   ``(2 poly_n + 1)^2`` neighbourhood, with a Gaussian applicability of std
   ``poly_sigma`` (normalised to sum 1). Separable: three vertical and six
   horizontal 1-D correlations, replicated borders, solved with the
   inverse of the 6 x 6 moment matrix.
3. **Displacement** (paper sections 3-4): with the current flow ``d``,
   ``A = (A1(x) + A2(x + d)) / 2`` and ``db = (b1(x) - b2(x + d)) / 2 + A d``,
   the second frame's coefficients sampled bilinearly at ``x + d``. Where
   ``x + d`` leaves the image (the 2 x 2 bilinear cell is not inside it),
   ``A = A1`` and ``db = b1 / 2 + A d``. Within 5 px of the border ``A`` and
   ``db`` are scaled by a per-axis weight (0.14, 0.14, 0.4472, 0.4472,
   0.4472 from the edge inwards; the product of both axes). The per-pixel
   ``G = A^T A`` and ``h = A^T db`` are averaged over a ``winsize`` window
   (box, or with ``gaussian=True`` a Gaussian of std ``0.3 * (winsize//2)``,
   both with replicated borders; the box sum is divided by ``winsize^2``)
   and the new flow solves ``G d = h`` by Cramer's rule with ``1e-3``
   added to the determinant. ``iterations`` times per level, each
   iteration starting from the previous one's flow (Jacobi-style: every
   pixel's update uses the matrices of the previous iteration).
4. The flow goes to the next finer level by a bilinear resize (half-pixel
   centres), multiplied by ``1 / pyr_scale``; the coarsest level starts at 0.

Numerics: everything is elementwise arithmetic, ``pad``, ``interpolate``,
``lerp`` and ``index_select``; no convolution, pooling or matrix product, so
TF32 cannot change a result on a GPU. The separable Gaussian filters are
sums of shifted slices, the box window sums by doubling (``O(log winsize)``
adds per axis). The computation runs in the input's dtype (float32 for
uint8 input) except the 2 x 2 solve, which runs in float64 where the device
has it (OpenCV solves in double too), else in the compute dtype. No host
sync inside: the loop bounds depend on the frame size only. Memory: about
20 MiB per 224 x 224 pair in float32 (measured peak, CPU).
"""
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['farneback_flow', 'farneback_levels', 'pyramid_sizes',
           'poly_expansion']

#: Levels narrower or lower than this are not used (OpenCV's limit).
MIN_LEVEL_SIZE = 32
#: Border weights of the displacement equations, from the edge inwards.
_BORDER_WEIGHTS = (0.14, 0.14, 0.4472, 0.4472, 0.4472)
#: Regulariser added to the 2 x 2 determinant.
_DET_EPS = 1e-3


def pyramid_sizes(height: int, width: int, levels: int,
                  pyr_scale: float) -> List[Tuple[float, int, int]]:
    """The pyramid levels used, coarsest first: ``(scale, height, width)``.

    Args:
        height (int): Frame height.
        width (int): Frame width.
        levels (int): Coarser levels wanted on top of the full resolution.
        pyr_scale (float): Scale between consecutive levels, in (0, 1).

    Returns:
        list[tuple[float, int, int]]: One entry per level, ending with
        ``(1.0, height, width)``.
    """
    top, scale = 0, 1.0
    while top < levels:
        scale *= pyr_scale
        if width * scale < MIN_LEVEL_SIZE or height * scale < MIN_LEVEL_SIZE:
            break
        top += 1
    out = []
    for k in range(top, -1, -1):
        s = 1.0
        for _ in range(k):
            s *= pyr_scale
        # Python's round() rounds half to even, as OpenCV's cvRound.
        out.append((s, int(round(height * s)), int(round(width * s))))
    return out


def farneback_levels(height: int, width: int, levels: int,
                     pyr_scale: float) -> int:
    """The pyramid levels the worker placement asks OpenCV for
    (:class:`~mme_plugin.ops.FarnebackFlow`): ``levels``, at most
    ``log(min(H, W) / 8) / log(1 / pyr_scale) + 1``, at least 1.

    Args:
        height (int): Frame height.
        width (int): Frame width.
        levels (int): Levels wanted.
        pyr_scale (float): Scale between levels, in (0, 1).

    Returns:
        int: The clamped level count.
    """
    fit = int(math.log(min(height, width) / 8) / math.log(1 / pyr_scale)) + 1
    return max(1, min(levels, fit))


def _taps(values: Sequence[float], like: Tensor) -> List[float]:
    # Taps as Python floats rounded to the compute precision, so that a
    # float32 run multiplies by float32 constants (as OpenCV does). Rounded
    # in NumPy: host values, never a tensor read back (no sync).
    np_dtype = {torch.float32: np.float32, torch.float64: np.float64,
                torch.float16: np.float16}.get(like.dtype)
    if np_dtype is None:  # bfloat16: no NumPy type; a host tensor
        return torch.tensor(list(values), dtype=like.dtype).tolist()
    return np.asarray(list(values), dtype=np_dtype).astype(float).tolist()


def _blur_kernel(sigma: float) -> np.ndarray:
    """Gaussian taps of a pyramid level (``getGaussianKernel`` rules)."""
    ksize = max(3, int(round(sigma * 5)) | 1)
    if sigma <= 0:  # the fixed small kernel used for sigma <= 0
        return np.array([0.25, 0.5, 0.25])
    x = np.arange(ksize) - (ksize - 1) / 2
    k = np.exp(-x * x / (2 * sigma * sigma))
    return k / k.sum()


def _corr_v(x: Tensor, taps: Sequence[float], mode: str) -> Tensor:
    """Vertical correlation of ``[N, C, H, W]`` with odd symmetric ``taps``
    (elementwise: a sum of shifted slices)."""
    r = len(taps) // 2
    h = x.shape[-2]
    p = F.pad(x, (0, 0, r, r), mode=mode)
    out = p[..., r:r + h, :] * taps[r]
    for k in range(1, r + 1):
        out = out + (p[..., r - k:r - k + h, :] +
                     p[..., r + k:r + k + h, :]) * taps[r + k]
    return out


def _corr_h(x: Tensor, taps: Sequence[float], mode: str) -> Tensor:
    """Horizontal counterpart of :func:`_corr_v`."""
    r = len(taps) // 2
    w = x.shape[-1]
    p = F.pad(x, (r, r, 0, 0), mode=mode)
    out = p[..., r:r + w] * taps[r]
    for k in range(1, r + 1):
        out = out + (p[..., r - k:r - k + w] +
                     p[..., r + k:r + k + w]) * taps[r + k]
    return out


def _poly_basis(poly_n: int, poly_sigma: float
                ) -> Tuple[np.ndarray, float, float, float, float]:
    """1-D applicability ``g`` (2 poly_n + 1 taps, sum 1) and the entries of
    the inverse moment matrix that the coefficients need."""
    x = np.arange(-poly_n, poly_n + 1, dtype=np.float64)
    g = np.exp(-x * x / (2 * poly_sigma * poly_sigma))
    g /= g.sum()
    # Moment matrix of the basis (1, x, y, x^2, y^2, xy) under g(x) g(y).
    xx, yy = np.meshgrid(x, x, indexing='xy')
    w = np.outer(g, g)
    basis = np.stack([np.ones_like(xx), xx, yy, xx * xx, yy * yy, xx * yy])
    gram = np.einsum('ihw,jhw,hw->ij', basis, basis, w)
    inv = np.linalg.inv(gram)
    # Only these are needed: the (x^2, y^2) entry of the inverse is 0.
    return g, inv[1, 1], inv[0, 3], inv[3, 3], inv[5, 5]


def poly_expansion(img: Tensor, poly_n: int, poly_sigma: float) -> Tensor:
    """Quadratic polynomial expansion of every pixel (paper section 2).

    Args:
        img (Tensor): ``[N, H, W]`` float frames.
        poly_n (int): Half-width of the neighbourhood (``2 n + 1`` taps).
        poly_sigma (float): Std of the Gaussian applicability.

    Returns:
        Tensor: ``[5, N, H, W]``: ``b_x, b_y, A_xx, A_yy, c_xy`` where the
        fit is ``A_xx x^2 + A_yy y^2 + c_xy x y + b_x x + b_y y + c``
        (``x`` right, ``y`` down, in pixels).
    """
    g, ig11, ig03, ig33, ig55 = _poly_basis(poly_n, poly_sigma)
    x = np.arange(-poly_n, poly_n + 1)
    tg = _taps(g, img)
    txg = _taps(x * g, img)
    txxg = _taps(x * x * g, img)
    n = poly_n
    h, w = img.shape[-2:]
    p = F.pad(img[:, None], (0, 0, n, n), mode='replicate')[:, 0]

    def row(k):
        return p[:, n + k:n + k + h]

    v0 = row(0) * tg[n]
    v1 = torch.zeros_like(img)
    v2 = torch.zeros_like(img)  # x * x * g is 0 at the centre
    for k in range(1, n + 1):
        s, d = row(k) + row(-k), row(k) - row(-k)
        v0 = v0 + s * tg[n + k]
        v1 = v1 + d * txg[n + k]
        v2 = v2 + s * txxg[n + k]
    v = F.pad(torch.stack([v0, v1, v2], 1), (n, n, 0, 0),
              mode='replicate')

    def col(c, k):
        return v[:, c, :, n + k:n + k + w]

    b1 = col(0, 0) * tg[n]  # g(x) g(y)
    b3 = col(1, 0) * tg[n]  # g(x) y g(y)
    b5 = col(2, 0) * tg[n]  # g(x) y^2 g(y)
    b2 = torch.zeros_like(img)  # x g(x) g(y)
    b4 = torch.zeros_like(img)  # x^2 g(x) g(y)
    b6 = torch.zeros_like(img)  # x g(x) y g(y)
    for k in range(1, n + 1):
        s0, d0 = col(0, k) + col(0, -k), col(0, k) - col(0, -k)
        s1, d1 = col(1, k) + col(1, -k), col(1, k) - col(1, -k)
        s2 = col(2, k) + col(2, -k)
        b1 = b1 + s0 * tg[n + k]
        b2 = b2 + d0 * txg[n + k]
        b4 = b4 + s0 * txxg[n + k]
        b3 = b3 + s1 * tg[n + k]
        b6 = b6 + d1 * txg[n + k]
        b5 = b5 + s2 * tg[n + k]
    return torch.stack([b2 * ig11, b3 * ig11, b1 * ig03 + b4 * ig33,
                        b1 * ig03 + b5 * ig33, b6 * ig55])


def _border_weights(h: int, w: int, like: Tensor) -> Tensor:
    """``[H, W]`` weight of each pixel's equations near the border."""
    def axis(n):
        wt = torch.ones(n, dtype=torch.float64)
        b = torch.tensor(_BORDER_WEIGHTS, dtype=torch.float64)
        k = min(len(b), n)
        wt[:k] *= b[:k]
        wt[n - k:] *= b[:k].flip(0)
        return wt

    return (axis(h)[:, None] * axis(w)[None]).to(like)


def _matrices(r0: Tensor, r1: Tensor, flow: Tensor,
              border: Tensor) -> Tensor:
    """Per-pixel ``G = A^T A`` and ``h = A^T db`` of the current flow.

    Args:
        r0 (Tensor): ``[5, N, H, W]`` expansion of the first frames.
        r1 (Tensor): ``[5, N * H * W]`` expansion of the second frames.
        flow (Tensor): ``[2, N, H, W]`` current flow (x, y).
        border (Tensor): ``[H, W]`` border weights.

    Returns:
        Tensor: ``[5, N, H, W]``: ``G_xx, G_xy, G_yy, h_x, h_y``.
    """
    _, n, h, w = r0.shape
    dx, dy = flow[0], flow[1]
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype)
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype)[:, None]
    fx, fy = xs + dx, ys + dy
    x1, y1 = torch.floor(fx), torch.floor(fy)
    ax, ay = fx - x1, fy - y1
    # The 2 x 2 bilinear cell must lie inside the frame (NaN: outside).
    inside = (x1 >= 0) & (x1 < w - 1) & (y1 >= 0) & (y1 < h - 1)
    zero = flow.new_zeros(())
    x1 = torch.where(inside, x1, zero).long()
    y1 = torch.where(inside, y1, zero).long()
    base = ((torch.arange(n, device=flow.device)[:, None, None] * h + y1)
            * w + x1).view(-1)

    def at(off):
        return r1.index_select(1, base + off).view(5, n, h, w)

    top = torch.lerp(at(0), at(1), ax)
    r1d = torch.lerp(top, torch.lerp(at(w), at(w + 1), ax), ay)
    r1d = torch.where(inside, r1d, zero)
    # Inside: A = (A1 + A2) / 2; outside: A = A1 and b2 taken as 0.
    half = torch.where(inside, 0.5, 1.0).to(flow.dtype) * border
    axx = (r0[2] + r1d[2]) * half
    ayy = (r0[3] + r1d[3]) * half
    axy = (r0[4] + r1d[4]) * (half * 0.5)
    hx = (r0[0] - r1d[0]) * (0.5 * border) + axx * dx + axy * dy
    hy = (r0[1] - r1d[1]) * (0.5 * border) + axy * dx + ayy * dy
    out = flow.new_empty(5, n, h, w)
    torch.add(axx * axx, axy * axy, out=out[0])
    torch.mul(axx + ayy, axy, out=out[1])
    torch.add(ayy * ayy, axy * axy, out=out[2])
    torch.add(axx * hx, axy * hy, out=out[3])
    torch.add(axy * hx, ayy * hy, out=out[4])
    return out


def _box(x: Tensor, size: int, dim: int) -> Tensor:
    """Sums of ``size`` consecutive entries along ``dim`` (output shorter by
    ``size - 1``), by doubling: ``O(log size)`` adds, no scan."""
    out_len = x.shape[dim] - size + 1
    out, off, part, span = None, 0, x, 1
    while True:
        if size & span:
            piece = part.narrow(dim, off, out_len)
            out = piece if out is None else out + piece
            off += span
        if span * 2 > size:
            return out
        n = part.shape[dim] - span
        part = part.narrow(dim, 0, n) + part.narrow(dim, span, n)
        span *= 2


def _window(m: Tensor, winsize: int, gaussian: bool) -> Tensor:
    """Average ``[5, N, H, W]`` over the window (replicated borders)."""
    r = winsize // 2
    if gaussian:
        sigma = 0.3 * r
        x = np.arange(-r, r + 1)
        k = np.exp(-x * x / (2 * sigma * sigma)) if r > 0 else np.ones(1)
        taps = _taps(k / k.sum(), m)
        return _corr_h(_corr_v(m, taps, 'replicate'), taps, 'replicate')
    # Box sums of 2 r + 1 (winsize rounded up to odd) divided by winsize^2.
    size = 2 * r + 1
    p = F.pad(m, (r, r, r, r), mode='replicate')
    return _box(_box(p, size, -2), size, -1) * (1.0 / (winsize * winsize))


def _solve(m: Tensor, out_dtype: torch.dtype) -> Tensor:
    """Flow ``[2, N, H, W]`` from the windowed ``G, h``."""
    if m.device.type != 'mps':
        m = m.double()
    gxx, gxy, gyy, hx, hy = m.unbind(0)
    det = gxx * gyy - gxy * gxy + _DET_EPS
    return torch.stack([(gyy * hx - gxy * hy) / det,
                        (gxx * hy - gxy * hx) / det]).to(out_dtype)


def _as_frames(x: Tensor, name: str) -> Tensor:
    if x.dim() == 4:
        if x.shape[1] != 1:
            raise ValueError(f'{name} must be [N, H, W] or [N, 1, H, W] grey '
                             f'frames, got shape {tuple(x.shape)}')
        x = x[:, 0]
    if x.dim() != 3:
        raise ValueError(f'{name} must be [N, H, W] or [N, 1, H, W] grey '
                         f'frames, got shape {tuple(x.shape)}')
    if not x.is_floating_point():
        x = x.float()
    return x


@torch.no_grad()
def farneback_flow(prev: Tensor,
                   nxt: Tensor,
                   pyr_scale: float = 0.5,
                   levels: int = 5,
                   winsize: int = 13,
                   iterations: int = 10,
                   poly_n: int = 5,
                   poly_sigma: float = 1.1,
                   gaussian: bool = False,
                   init_flow: Optional[Tensor] = None) -> Tensor:
    """Dense Farnebäck flow from each ``prev`` frame to its ``nxt`` frame.

    The defaults are the release's settings (``cv::cuda`` Farneback's
    defaults, release spec 2.1; :class:`~mme_plugin.ops.FarnebackFlow`):
    5 levels, pyramid scale 0.5, box window 13, 10 iterations, poly_n 5,
    poly_sigma 1.1, no Gaussian window (OpenCV ``flags=0``). The arguments
    mean what they mean for ``cv2.calcOpticalFlowFarneback``.

    Args:
        prev (Tensor): ``[N, H, W]`` or ``[N, 1, H, W]`` grey frames in
            [0, 255] (float, or uint8 which is computed in float32).
        nxt (Tensor): The frames to track into, same shape and device.
        pyr_scale (float): Scale between pyramid levels, in (0, 1).
            Defaults to 0.5.
        levels (int): Coarser levels on top of the original resolution, as
            many as fit (>= 32 px). Defaults to 5.
        winsize (int): Averaging window. Defaults to 13.
        iterations (int): Iterations per level. Defaults to 10.
        poly_n (int): Neighbourhood half-width of the polynomial fit
            (``2 poly_n + 1`` taps). Defaults to 5.
        poly_sigma (float): Std of the fit's Gaussian weights.
            Defaults to 1.1.
        gaussian (bool): Gaussian instead of box window
            (``cv2.OPTFLOW_FARNEBACK_GAUSSIAN``). Defaults to False.
        init_flow (Tensor, optional): ``[N, H, W, 2]`` initial flow
            (``cv2.OPTFLOW_USE_INITIAL_FLOW``), used at the coarsest level
            after resizing. Defaults to None (zero).

    Returns:
        Tensor: ``[N, H, W, 2]`` flow in pixels, ``(dx, dy)``: the pixel
        ``(x, y)`` of ``prev`` is at ``(x + dx, y + dy)`` in ``nxt``. Same
        dtype as the (floating) input.

    Raises:
        ValueError: Shapes that differ or are not grey frame batches, or a
            parameter out of range.
    """
    prev, nxt = _as_frames(prev, 'prev'), _as_frames(nxt, 'nxt')
    if prev.shape != nxt.shape:
        raise ValueError(f'prev {tuple(prev.shape)} and nxt '
                         f'{tuple(nxt.shape)} must have the same shape')
    nxt = nxt.to(prev.dtype)
    if not 0 < pyr_scale < 1:
        raise ValueError(f'pyr_scale must be in (0, 1), got {pyr_scale}')
    if winsize < 1 or iterations < 1 or poly_n < 1 or levels < 0:
        raise ValueError('winsize, iterations and poly_n must be >= 1 and '
                         f'levels >= 0: got {winsize}, {iterations}, '
                         f'{poly_n}, {levels}')
    n, height, width = prev.shape
    if height < 2 or width < 2:
        raise ValueError(f'frames must be at least 2 x 2, got {height} x '
                         f'{width}')
    dtype = prev.dtype
    both = torch.cat([prev, nxt])[:, None]
    flow = None
    for scale, h, w in pyramid_sizes(height, width, levels, pyr_scale):
        sigma = (1 / scale - 1) * 0.5
        taps = _taps(_blur_kernel(sigma), both)
        img = _corr_h(_corr_v(both, taps, 'reflect'), taps, 'reflect')
        if (h, w) != (height, width):
            img = F.interpolate(img, size=(h, w), mode='bilinear',
                                align_corners=False)
        r = poly_expansion(img[:, 0], poly_n, poly_sigma)
        r0, r1 = r[:, :n], r[:, n:].reshape(5, -1)
        if flow is None:
            flow = prev.new_zeros(2, n, h, w)
            if init_flow is not None:
                flow = F.interpolate(
                    init_flow.to(dtype).permute(0, 3, 1, 2), size=(h, w),
                    mode='bilinear', align_corners=False
                ).transpose(0, 1) * scale
        else:
            flow = F.interpolate(
                flow.transpose(0, 1), size=(h, w), mode='bilinear',
                align_corners=False).transpose(0, 1) * (1 / pyr_scale)
        flow = flow.contiguous()
        border = _border_weights(h, w, flow)
        m = _matrices(r0, r1, flow, border)
        for it in range(iterations):
            flow = _solve(_window(m, winsize, gaussian), dtype)
            if it < iterations - 1:
                m = _matrices(r0, r1, flow, border)
    return flow.permute(1, 2, 3, 0).contiguous()

