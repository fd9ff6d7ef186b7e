"""HOG features against known answers."""
import numpy as np
import pytest

from mme_plugin.datasets.transforms import (ComputeHOG, cell_histogram_map,
                                            pixel_orientation_votes)


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
    # (mme-spec.md 8.5); the whole magnitude must land in bin 2.
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
