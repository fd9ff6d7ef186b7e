"""HOG features against known answers."""
import numpy as np
import pytest

from mme_plugin.datasets.transforms import ComputeHOG
from mme_plugin.ops import cell_histogram_map, pixel_orientation_votes


def _edge(vertical: bool, size: int = 32) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    if vertical:
        img[:, size // 2:] = 255
    else:
        img[size // 2:] = 255
    return img


def test_vertical_edge_votes_bin_zero_only():
    m = cell_histogram_map(_edge(True), channels='gray')
    # A unit step gives gradient 0.5 on the 2 pixels beside it; the cell
    # centred at x=12 holds one such column of 8 pixels: 8 * 0.5 / 64.
    np.testing.assert_allclose(m[4, 12], [1 / 16] + [0] * 8, atol=1e-6)
    np.testing.assert_allclose(m[4, 20], [1 / 16] + [0] * 8, atol=1e-6)
    np.testing.assert_allclose(m[4, 4], 0, atol=1e-7)  # flat: no bias


def test_horizontal_edge_splits_between_80_and_100_degrees():
    m = cell_histogram_map(_edge(False), channels='gray')
    np.testing.assert_allclose(m[12, 4],
                               [0, 0, 0, 0, 1 / 32, 1 / 32, 0, 0, 0],
                               atol=1e-6)


def test_votes_on_a_bin_centre_keep_the_magnitude():
    # 40 degrees is bin 2's centre: the release's ceil/floor vote drops it
    # (docs/release_spec.md 8.5); the whole magnitude must land in bin 2.
    ys, xs = np.mgrid[0:16, 0:16].astype(np.float32)
    theta = np.deg2rad(40)
    img = (np.cos(theta) * xs + np.sin(theta) * ys) / 40.0
    v = pixel_orientation_votes(img)[8, 8]
    assert v.argmax() == 2
    assert v[2] == pytest.approx(v.sum(), rel=1e-4) and v.sum() > 0


def test_rgb_channels_and_l2_norm():
    img = _edge(True)
    img[..., 1:] = 0  # only the red channel has the edge
    hog_t = ComputeHOG(mode='static', cell_size=8, channels='rgb',
                       norm='l2', eps=1e-6)
    res = hog_t(dict(imgs=[img, img], tubelet_size=2))
    hog = res['hog']  # [1 tube, 1 step, 4, 4, 27]
    assert hog.shape == (1, 1, 4, 4, 27)
    cell = hog[0, 0, 0, 1]  # the cell at x = 12 (covers the edge)
    np.testing.assert_allclose(cell[:9], [1] + [0] * 8, atol=1e-4)
    np.testing.assert_allclose(cell[9:], 0, atol=1e-6)


def test_trajectory_hog_follows_the_points():
    # Frame 1 is frame 0 shifted right by 8 px; a point tracked to x + 8
    # must see the same histogram as at x in frame 0.
    f0 = _edge(True, 32)
    f1 = np.roll(f0, 8, axis=1)
    f1[:, :8] = 0
    pos = np.zeros((1, 2, 4, 4, 2), np.float32)
    gx, gy = np.meshgrid(4 + 8 * np.arange(4), 4 + 8 * np.arange(4))
    pos[0, 0] = np.stack([gx, gy], -1)
    pos[0, 1] = pos[0, 0] + [8, 0]
    res = ComputeHOG(mode='trajectory', cell_size=8, channels='gray',
                     norm='none')(dict(dense_imgs=np.stack([[f0, f1]]),
                                       traj_positions=pos))
    hog = res['hog'][0]
    np.testing.assert_allclose(hog[1, :, :3], hog[0, :, :3], atol=1e-6)
    assert hog[0, 1, 1, 0] > 0  # the edge cell is not empty


# --- the on-device (PyTorch) HOG agrees with the NumPy reference ---------

def _textured_frames(n: int, size: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = (rng.random((n, size, size, 3)) * 255).astype(np.uint8)
    frames[:, 10:30, 12:20] = (200, 40, 90)  # strong edges in every channel
    return frames


@pytest.mark.parametrize('channels,atol', [('rgb', 1e-5), ('gray', 1e-3)])
def test_torch_hog_matches_numpy_at_subpixel_and_outside_points(
        channels, atol):
    import torch

    from mme_plugin.ops import sample_bilinear
    from mme_plugin.ops import hog_at_points
    frames = _textured_frames(3)
    rng = np.random.default_rng(1)
    pts = rng.uniform(-5, 52, (3, 6, 6, 2)).astype(np.float32)
    pts[0, 0, 0] = (47, 47)  # last pixel centre
    ref = np.stack([
        sample_bilinear(cell_histogram_map(frames[i], channels=channels),
                        pts[i]) for i in range(3)
    ])
    got = hog_at_points(torch.from_numpy(frames), torch.from_numpy(pts),
                        channels=channels, chunk=2).numpy()
    assert got.shape == ref.shape == (3, 6, 6, 27 if channels == 'rgb' else 9)
    assert ref.max() > 0.01
    # gray: cv2's fixed-point luma may round a pixel to the other integer
    np.testing.assert_allclose(got, ref, atol=atol)


def test_torch_hog_known_answer_on_a_vertical_edge():
    import torch

    from mme_plugin.ops import hog_cell_maps
    m = hog_cell_maps(torch.from_numpy(_edge(True))[None], channels='gray')
    np.testing.assert_allclose(m[0, :, 4, 12].numpy(), [1 / 16] + [0] * 8,
                               atol=1e-6)
    np.testing.assert_allclose(m[0, :, 4, 4].numpy(), 0, atol=1e-7)


@pytest.mark.parametrize('mode', ['trajectory', 'static'])
def test_model_hog_targets_equal_pipeline_hog_targets(mode):
    """PrepareHOGInputs + PointHOG == ComputeHOG + BuildMMETargets."""
    import copy

    import torch

    from mme_plugin.datasets.transforms import (BuildMMETargets,
                                                PrepareHOGInputs)
    from mme_plugin.models import PointHOG
    from mme_plugin.registry import TRANSFORMS  # noqa: F401
    n, s, size, step = 2, 3, 32, 8
    dense = _textured_frames(n * s, size).reshape(n, s, size, size, 3)
    gx, gy = np.meshgrid(4 + 8 * np.arange(4), 4 + 8 * np.arange(4))
    grid = np.stack([gx, gy], -1).astype(np.float32)
    rng = np.random.default_rng(2)
    pos = grid + np.cumsum(rng.normal(0, 0.7, (n, s, 4, 4, 2)), 1)
    pos = pos.astype(np.float32)
    results = dict(dense_imgs=dense, traj_positions=pos,
                   traj_point_valid=np.ones((n, 4, 4), bool),
                   traj_grid_step=step,
                   imgs=list(dense[:, 0]) * 2, tubelet_size=2)
    build = BuildMMETargets(patch_size=16, min_valid_fraction=0)
    if mode == 'static':  # n tubes of 2 frames each
        results['imgs'] = [f for i in range(n) for f in dense[i, :2]]
    ref = build(ComputeHOG(mode=mode, channels='rgb', norm='l2')(
        copy.deepcopy(results)))
    out = build(PrepareHOGInputs(mode=mode)(copy.deepcopy(results)))
    assert 'hog_target' not in out and 'dense_imgs' not in out
    torch.testing.assert_close(out['hog_valid'], ref['hog_valid'])
    got = PointHOG(channels='rgb', norm='l2')(out['hog_frames'][None],
                                              out['hog_points'][None], 16)
    assert got.shape == (1, ) + tuple(ref['hog_target'].shape)
    torch.testing.assert_close(got[0], ref['hog_target'], atol=1e-5,
                               rtol=1e-4)


def test_build_targets_without_any_hog_input_names_both_transforms():
    from mme_plugin.datasets.transforms import BuildMMETargets
    pos = np.zeros((1, 2, 2, 2, 2), np.float32) + 4
    with pytest.raises(KeyError, match='ComputeHOG.*PrepareHOGInputs'):
        BuildMMETargets(patch_size=16, min_valid_fraction=0)(dict(
            traj_positions=pos, traj_point_valid=np.ones((1, 2, 2), bool),
            traj_grid_step=8))


def test_point_windows_equal_cell_maps_and_masked_tokens_equal_all():
    """The point-window HOG equals the per-pixel maps sampled at the points,
    and PointHOG(token_idx) the selected tokens of the full result."""
    import torch

    from mme_plugin.models import PointHOG
    from mme_plugin.ops import hog_at_points, hog_cell_maps
    frames = torch.from_numpy(_textured_frames(4, 32, seed=4))
    rng = np.random.default_rng(5)
    pts = torch.from_numpy(rng.uniform(-3, 35, (4, 4, 4, 2)).astype(
        np.float32))
    got = hog_at_points(frames, pts, chunk=3)
    maps = hog_cell_maps(frames).permute(0, 2, 3, 1).numpy()
    from mme_plugin.ops import sample_bilinear
    ref = np.stack([sample_bilinear(maps[i], pts[i].numpy())
                    for i in range(4)])
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-6)
    # 2 tubes x 2 steps of 32 x 32 frames, patch 16: 8 tokens
    fr = frames.reshape(1, 2, 2, 32, 32, 3)
    grid = torch.stack(torch.meshgrid(torch.arange(4) * 8. + 4,
                                      torch.arange(4) * 8. + 4,
                                      indexing='xy'), -1)
    p = (grid + torch.from_numpy(rng.normal(0, 1, (1, 2, 2, 4, 4, 2)))
         ).float()
    hog = PointHOG(chunk=2)
    full = hog(fr, p, 16)
    idx = torch.tensor([[1, 2, 4, 7]])
    torch.testing.assert_close(hog(fr, p, 16, token_idx=idx),
                               full[:, idx[0]])
