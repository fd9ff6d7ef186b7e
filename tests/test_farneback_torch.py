"""The PyTorch Farneback kernel: known motion, agreement with OpenCV,
batching, dtypes and the ``TorchFarnebackFlow`` backend."""
import cv2
import numpy as np
import pytest
import torch

from mme_plugin.ops import FarnebackFlow, TorchFarnebackFlow, farneback_flow
from mme_plugin.ops.farneback_torch import pyramid_sizes

RELEASE = dict(pyr_scale=0.5, levels=5, winsize=13, iterations=10, poly_n=5,
               poly_sigma=1.1)
BORDER = 16


def _texture(rng, h, w):
    out = np.zeros((h, w))
    for sigma, amp in ((1.5, 25.0), (4.0, 35.0), (12.0, 45.0)):
        n = cv2.GaussianBlur(rng.normal(size=(h, w)), (0, 0), sigma)
        out += amp * n / n.std()
    return np.clip(128 + out, 0, 255)


def _warp_pair(seed, size=128, dx=0.0, dy=0.0, degrees=0.0):
    """Frames where frame 1's pixel p is at R (p - c) + c + (dx, dy) in
    frame 2, and that true forward flow."""
    pad = 32
    base = _texture(np.random.default_rng(seed), size + 2 * pad,
                    size + 2 * pad).astype(np.float32)
    c = (size - 1) / 2
    t = np.deg2rad(degrees)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    p = np.stack([xs - c, ys - c], -1)
    src = (p - (dx, dy)) @ np.linalg.inv(rot).T + c + pad
    f2 = cv2.remap(base, src[..., 0].astype(np.float32),
                   src[..., 1].astype(np.float32), cv2.INTER_LINEAR)
    f1 = base[pad:pad + size, pad:pad + size]
    q = (lambda a: np.clip(a, 0, 255).round().astype(np.uint8))
    return q(f1), q(f2), p @ rot.T + (dx, dy) - p


def _interior(a):
    return a[..., BORDER:-BORDER, BORDER:-BORDER, :]


def _opencv(a, b, gaussian=False, **p):
    p = {**RELEASE, **p}
    return cv2.calcOpticalFlowFarneback(
        a, b, None, p['pyr_scale'], p['levels'], p['winsize'],
        p['iterations'], p['poly_n'], p['poly_sigma'],
        cv2.OPTFLOW_FARNEBACK_GAUSSIAN if gaussian else 0)


def _torch(a, b, **p):
    return farneback_flow(torch.from_numpy(a)[None],
                          torch.from_numpy(b)[None], **p)[0].numpy()


@pytest.mark.parametrize('dx,dy', [(1.3, -0.6), (-3.4, 2.2)])
def test_known_subpixel_translation(dx, dy):
    f1, f2, _ = _warp_pair(0, dx=dx, dy=dy)
    flow = _interior(_torch(f1, f2))
    mean = flow.reshape(-1, 2).mean(0)
    assert np.abs(mean - (dx, dy)).max() < 0.05, mean
    epe = np.linalg.norm(flow - (dx, dy), axis=-1)
    assert epe.mean() < 0.1 and np.percentile(epe, 95) < 0.25


@pytest.mark.parametrize('params', [
    dict(),  # the release's settings, box window
    dict(levels=3, winsize=15, iterations=3, poly_sigma=1.2,
         gaussian=True),
])
def test_agrees_with_opencv(params):
    # Measured (benchmarks/farneback_agreement.py, 224 px): interior mean
    # <= 1e-6 px, p95 <= 3e-6 px, border mean <= 1e-3 px; asserted with
    # two orders of margin.
    f1, f2, truth = _warp_pair(1, dx=0.7, degrees=3.0)
    for a, b in ((f1, f2), (f2, f1)):
        ref = _opencv(a, b, **params)
        mine = _torch(a, b, **{**RELEASE, **params})
        err = np.linalg.norm(mine - ref, axis=-1)
        inner = err[BORDER:-BORDER, BORDER:-BORDER]
        assert inner.mean() < 1e-4 and np.percentile(inner, 95) < 1e-3
        assert err.mean() < 1e-2
    # The agreement matters: both follow the true rotation.
    assert np.linalg.norm(_interior(_torch(f1, f2)) - _interior(truth),
                          axis=-1).mean() < 0.2


def test_batch_equals_one_by_one():
    pairs = [_warp_pair(s, size=96, dx=0.5 * s, dy=-0.3, degrees=s)
             for s in range(3)]
    a = torch.from_numpy(np.stack([p[0] for p in pairs]))
    b = torch.from_numpy(np.stack([p[1] for p in pairs]))
    batch = farneback_flow(a, b)
    for i in range(3):
        single = farneback_flow(a[i:i + 1, None], b[i:i + 1, None])
        torch.testing.assert_close(batch[i:i + 1], single, atol=1e-5,
                                   rtol=0)


def test_float64_matches_float32():
    f1, f2, _ = _warp_pair(2, size=96, dx=1.6, dy=0.4, degrees=2.0)
    a, b = torch.from_numpy(f1)[None], torch.from_numpy(f2)[None]
    f32 = farneback_flow(a.float(), b.float())
    f64 = farneback_flow(a.double(), b.double())
    assert f32.dtype == torch.float32 and f64.dtype == torch.float64
    diff = (f64 - f32.double()).norm(dim=-1)[0]
    assert diff[BORDER:-BORDER, BORDER:-BORDER].max() < 1e-3
    assert diff.mean() < 1e-3


def test_pyramid_levels_follow_opencv():
    # OpenCV uses `levels` coarser levels (>= 32 px) on top of the frame.
    assert pyramid_sizes(224, 224, 5, 0.5) == [(0.25, 56, 56),
                                               (0.5, 112, 112),
                                               (1.0, 224, 224)]
    assert pyramid_sizes(97, 125, 1, 0.5) == [(0.5, 48, 62),
                                              (1.0, 97, 125)]
    assert pyramid_sizes(40, 40, 5, 0.5) == [(1.0, 40, 40)]


def test_rejects_bad_input():
    x = torch.zeros(2, 3, 32, 32)
    with pytest.raises(ValueError, match='grey'):
        farneback_flow(x, x)
    with pytest.raises(ValueError, match='same shape'):
        farneback_flow(torch.zeros(1, 32, 32), torch.zeros(1, 32, 30))
    with pytest.raises(ValueError, match='pyr_scale'):
        farneback_flow(torch.zeros(1, 32, 32), torch.zeros(1, 32, 32),
                       pyr_scale=1.0)


def test_backend_matches_farneback_backend():
    f1, f2, _ = _warp_pair(3, size=96, dx=-1.2, dy=0.8, degrees=1.0)
    rgb = [np.repeat(f[..., None], 3, -1) for f in (f1, f2, f1)]
    ref = FarnebackFlow().chain(rgb)
    mine = TorchFarnebackFlow().chain(rgb)
    assert mine.shape == ref.shape == (2, 96, 96, 2)
    assert mine.dtype == np.float32
    assert np.linalg.norm(_interior(mine - ref), axis=-1).max() < 1e-3
    single = TorchFarnebackFlow(scale=0.5)(rgb[0], rgb[1])
    np.testing.assert_allclose(single, FarnebackFlow(scale=0.5)(rgb[0],
                                                                 rgb[1]),
                               atol=1e-3)
    assert TorchFarnebackFlow().tag != FarnebackFlow().tag
