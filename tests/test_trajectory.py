"""Trajectory tracker and targets against known answers."""
import numpy as np
import pytest

from mme_plugin.datasets.transforms import (BuildMMETargets,
                                            ComputeTrajectories)
from mme_plugin.ops import grid_points, track_points


def _constant_flows(num, h, w, dx, dy):
    f = np.zeros((num, h, w, 2), np.float32)
    f[..., 0], f[..., 1] = dx, dy
    return f


def _rotation_flows(num, h, w, omega):
    """Flow of a rigid rotation by ``omega`` rad/frame about the centre."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    c, s = np.cos(omega), np.sin(omega)
    rx, ry = xs - cx, ys - cy
    f = np.stack([c * rx - s * ry - rx, s * rx + c * ry - ry], -1)
    return np.repeat(f[None].astype(np.float32), num, 0)


def _targets(flows, grid_step=8, patch=16, **kw):
    res = ComputeTrajectories(grid_step=grid_step)(dict(flows=flows))
    res = BuildMMETargets(patch_size=patch, with_hog=False, **kw)(res)
    return res


def test_grid_has_two_by_two_points_per_patch():
    g = grid_points(32, 48, 8)
    assert g.shape == (4, 6, 2)
    assert g[0, 0].tolist() == [4, 4] and g[1, 2].tolist() == [20, 12]


def test_uniform_translation_subpixel():
    flows = _constant_flows(4, 64, 64, 0.7, -0.3)
    pos, valid = track_points(flows, grid_points(64, 64, 8))
    assert valid[1:-1, 1:-1].all()
    np.testing.assert_allclose(pos[4] - pos[0], np.broadcast_to(
        [2.8, -1.2], pos[0].shape), atol=1e-4)


def test_release_compat_truncates_subpixel_motion():
    # The release reads flow at the nearest pixel and truncates it with
    # int(): 0.7 px/frame becomes no motion (docs/release_spec.md 8.2).
    flows = _constant_flows(4, 64, 64, 0.7, 1.6)
    pos, _ = track_points(flows, grid_points(64, 64, 8), release_compat=True)
    d = pos[4] - pos[0]
    assert np.allclose(d[..., 0], 0) and np.allclose(d[2:5, 2:5, 1], 4.0)


def test_uniform_translation_gives_zero_patch_std_and_all_valid():
    res = _targets(np.stack([_constant_flows(4, 64, 64, 1.3, -0.6)] * 2))
    assert res['traj_target'].shape == (2 * 4 * 4, 2 * 4 * 4)
    assert res['traj_target'].abs().max().item() < 1e-3
    # 1.3 px x 4 steps leaves the frame only for the last point column:
    # x = 60 + 5.2 > 63, so the right-most patch column is invalid.
    valid = res['traj_valid'].reshape(2, 4, 4)
    assert valid[:, :, :3].all() and not valid[:, :, 3].any()


def test_none_norm_keeps_the_translation():
    res = _targets(_constant_flows(4, 64, 64, 1.0, 0.5)[None], norm='none',
                   traj_scale=2.0)
    tgt = res['traj_target'].reshape(16, 2, 4, 4)  # coord, step, points
    assert np.allclose(tgt[:, 0].numpy(), 0.5, atol=1e-5)
    assert np.allclose(tgt[:, 1].numpy(), 0.25, atol=1e-5)


@pytest.mark.parametrize('omega', [0.02, -0.02])
def test_rotation_gives_the_expected_patch_pattern(omega):
    eps = 0.1
    res = _targets(_rotation_flows(4, 64, 64, omega)[None], std_eps=eps)
    tgt = res['traj_target'].reshape(16, 2, 4, 4).numpy()  # tok,c,step,pt
    # Small rotation: a point's displacement relative to its patch centre is
    # omega x (p - centre): dx = -omega * ry, dy = omega * rx, with the 2x2
    # points at rx, ry = +-4 px (row-major: (-,-), (+,-), (-,+), (+,+)).
    rx = np.array([-4, 4, -4, 4.])
    ry = np.array([-4, -4, 4, 4.])
    for c, rel in ((0, -omega * ry), (1, omega * rx)):
        std = rel.std(ddof=1)
        expected = rel / (std + eps)
        # interior token of the first step; rotation barely changes over 4
        # steps, so every step and token shows the same pattern
        got = tgt[5, c, 0]
        np.testing.assert_allclose(got, expected, atol=0.02)
        assert np.abs(tgt[:, c] - expected).max() < 0.05
    # the top-left point (ry = -4) moves along +x for omega > 0 and along -x
    # for omega < 0: the two rotation senses give opposite targets
    assert np.sign(tgt[5, 0, 0, 0]) == np.sign(omega)


def test_point_leaving_the_frame_is_invalid():
    # A point that leaves on the LAST step is invalid too (the release only
    # checks before each step, docs/release_spec.md 8.11).
    flows = _constant_flows(4, 32, 32, 0.0, 0.0)
    flows[3, ..., 0] = 10.0  # last step jumps 10 px right
    pos, valid = track_points(flows, grid_points(32, 32, 8))
    # x = 4, 12, 20, 28 -> 14, 22, 30, 38: only the last column leaves.
    assert valid[:, :3].all() and not valid[:, 3].any()
    _, valid_rel = track_points(flows, grid_points(32, 32, 8),
                                release_compat=True)
    assert valid_rel.all()


def test_broken_flow_is_refused_not_trained_on():
    # The release's undequantized uint8 flow moves every point by ~128 px:
    # all trajectories invalid. We raise instead of training on zeros.
    flows = _constant_flows(4, 64, 64, 128.0, 128.0)[None]
    with pytest.raises(RuntimeError, match='valid trajectories'):
        _targets(flows)


def test_all_tubes_at_once_equal_tracking_each_tube():
    # ComputeTrajectories tracks every tube in one vectorized pass; it must
    # match track_points tube by tube, points leaving the frame included.
    from mme_plugin.datasets.transforms import ComputeTrajectories
    from mme_plugin.ops import grid_points, track_points
    rng = np.random.default_rng(0)
    flows = rng.normal(0, 3, (3, 4, 32, 48, 2)).astype(np.float32)
    flows[1] += (9.0, 0.0)  # tube 1 drifts right: points leave the frame
    res = ComputeTrajectories(grid_step=8)(dict(flows=flows))
    start = grid_points(32, 48, 8)
    for i in range(3):
        pos, valid = track_points(flows[i], start)
        np.testing.assert_array_equal(res['traj_positions'][i], pos)
        np.testing.assert_array_equal(res['traj_point_valid'][i], valid)
    valid = res['traj_point_valid']
    assert not valid[1].all() and valid[0].any()


def test_tracking_on_half_resolution_flow_matches_upsampled_flow():
    # ComputeFlow(full_res=False) keeps DIS/Farneback flow at scale 0.5;
    # tracking there must agree with tracking the upsampled flow.
    from mme_plugin.datasets.transforms import ComputeTrajectories
    from mme_plugin.ops import resize_flow
    yy, xx = np.mgrid[0:16, 0:24].astype(np.float32)
    # smooth, non-uniform half-resolution flow (in half-res pixels); a
    # half-pixel error in the coordinate mapping moves points ~0.9 px here
    low = np.stack([1.0 + 0.8 * np.sin(xx / 2.5), 0.5 * np.cos(yy / 2.0)],
                   -1)
    low = np.broadcast_to(low, (2, 3, 16, 24, 2)).copy()
    low[1] *= -1.5
    full = np.stack([[resize_flow(f, (48, 32)) for f in tube]
                     for tube in low])
    dense = np.zeros((2, 4, 32, 48, 3), np.uint8)
    t = ComputeTrajectories(grid_step=8)
    ref = t(dict(flows=full, dense_imgs=dense))
    got = t(dict(flows=low, dense_imgs=dense))
    assert got['traj_positions'].shape == ref['traj_positions'].shape
    moved = np.abs(ref['traj_positions'][:, -1] - ref['traj_positions'][:, 0])
    assert moved.max() > 3  # real motion, several pixels
    inner = ref['traj_point_valid'] & got['traj_point_valid']
    assert inner.mean() > 0.5
    np.testing.assert_allclose(got['traj_positions'],
                               ref['traj_positions'], atol=0.05)
    np.testing.assert_array_equal(got['traj_point_valid'],
                                  ref['traj_point_valid'])


def test_half_resolution_flow_before_a_crop_is_refused():
    from mme_plugin.datasets.transforms import (ComputeFlow,
                                                MotionMultiScaleCrop)
    with pytest.raises(ValueError, match='full_res=False'):
        ComputeFlow(cache_dir='x', full_res=False)
    res = dict(imgs=[np.zeros((32, 48, 3), np.uint8)] * 2,
               dense_imgs=np.zeros((1, 2, 32, 48, 3), np.uint8),
               flows=np.zeros((1, 1, 16, 24, 2), np.float32),
               img_shape=(32, 48), modality='RGB')
    with pytest.raises(RuntimeError, match='must come after all crop'):
        MotionMultiScaleCrop(input_size=16)(res)


# Parity switches: the release's +-20 px clamp, its displacements of points
# that left the frame, and its PatchStd epsilon.

def _one_jump(jump, scale=(1.0, 1.0), **kw):
    """One tube of 64x64 flows: the top-left point jumps by ``jump`` px in
    x at step 0 (flow only around it), everything else still."""
    flows = np.zeros((1, 4, 64, 64, 2), np.float32)
    flows[0, 0, :8, :8, 0] = jump
    res = ComputeTrajectories(grid_step=8, release_compat=kw.pop(
        'tracker_compat', False))(dict(flows=flows, scale_factor=np.array(
            scale, np.float32)))
    return BuildMMETargets(patch_size=16, with_hog=False,
                           min_valid_fraction=0.0, **kw)(res)


def test_steps_beyond_the_bound_invalidate_the_point_by_default():
    # 30 px > 20: the top-left patch's token is invalid, the rest valid
    res = _one_jump(30.0, step_overflow='invalid', norm='none',
                    traj_scale=1.0)
    assert not res['traj_valid'][0] and res['traj_valid'][1:].all()
    assert BuildMMETargets().step_overflow == 'invalid'  # the default
    # 15 px is within the bound: valid
    res = _one_jump(15.0, norm='none', traj_scale=1.0)
    assert res['traj_valid'][0]


def test_clamp_switch_clips_displacements_like_the_release():
    res = _one_jump(30.0, step_overflow='clamp', norm='none', traj_scale=1.0)
    assert res['traj_valid'][0]
    # token 0 layout (coord, step, 2x2 points): dx of step 0, point (0, 0)
    assert res['traj_target'][0, 0].item() == pytest.approx(20.0)


def test_bound_is_in_pixels_of_the_decoded_video():
    # frames downscaled by 2 after decoding: 12 px here = 24 px there
    res = _one_jump(12.0, scale=(0.5, 0.5), norm='none', traj_scale=1.0)
    assert not res['traj_valid'][0]
    res = _one_jump(12.0, scale=(1.0, 1.0), norm='none', traj_scale=1.0)
    assert res['traj_valid'][0]


def test_release_compat_takes_the_flow_read_at_the_clamped_edge():
    # The top-left point (4, 4) moves -10 px in x at step 0 (to x = -6,
    # outside the frame). At step 1 the release reads the flow at the
    # clamped position x = 0, +3 px, and records 3 as the displacement; the
    # difference of the positions would be 3 - (-6) = 9.
    flows = np.zeros((4, 64, 64, 2), np.float32)
    flows[0, :8, :8, 0] = -10.0
    flows[1, :8, 0, 0] = 3.0
    pos, valid, steps = track_points(flows, grid_points(64, 64, 8),
                                     release_compat=True, return_steps=True)
    assert steps[0, 0, 0, 0] == -10 and steps[1, 0, 0, 0] == 3
    diff = pos[2, 0, 0, 0] - pos[1, 0, 0, 0]
    assert diff == 9  # what the unclamped positions would give
    res = ComputeTrajectories(grid_step=8, release_compat=True)(
        dict(flows=flows[None]))
    out = BuildMMETargets(patch_size=16, with_hog=False, norm='none',
                          traj_scale=1.0, release_compat=True,
                          min_valid_fraction=0.0)(res)
    # token 0, dx of step 1 of point (0, 0): index coord 0, step 1 -> 4
    assert out['traj_target'][0, 4].item() == 3.0
    assert out['traj_valid'][0]  # 'any' of the 4 points (release)


def test_release_compat_patch_std_epsilon_matches_the_release_formula():
    t = BuildMMETargets(release_compat=True)
    assert (t.std_eps, t.token_valid, t.step_overflow) == (2e-5, 'any',
                                                           'clamp')
    from mme_plugin.datasets.transforms.motion_targets import patch_std
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 4)).astype(np.float64) * 0.01  # tiny spreads
    z = v / 20  # the release divides by 20, then adds 1e-6 to the std
    release = (z - z.mean(-1, keepdims=True)) / (
        z.std(-1, ddof=1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(patch_std(v, 2e-5), release, rtol=1e-9)
