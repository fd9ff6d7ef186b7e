"""The tensor implementation of everything after the flow (issue #21)
against the NumPy worker path and against known answers.

Tolerances: positions 1e-4 px (the NumPy sampler weights in float64, the
tensor one in float32; measured max 7.6e-6 px on the Farneback clips here,
0 under release_compat, whose steps are integers), targets 1e-3 (the
position tolerance over PatchStd's std_eps = 0.1 px, the most it can
amplify; measured max 5.7e-5, 1.2e-7 under release_compat), reject fractions
1e-6, motion 1e-5 relative; every mask (in-frame, fb, photometric, shot-cut
pairs, reason codes) and the token validity exactly equal.
The shot-cut statistics on frames larger than ``cut_size`` go through a
resize and a warp that OpenCV computes in fixed point: compared with a
stated tolerance in :func:`test_cut_statistics_close_to_opencv`.
"""
import numpy as np
import pytest
import torch

from mme_plugin.datasets.synthetic import render_clip
from mme_plugin.datasets.transforms import (BuildMMETargets,
                                            CheckTrajectoryReliability,
                                            ComputeFlow, ComputeTrajectories)
from mme_plugin.ops import REJECT_REASONS, resize_flow
from mme_plugin.ops.motion_targets_torch import (clip_targets_torch,
                                                 traj_targets_torch)
from mme_plugin.ops.tracking_torch import (cut_pairs_torch,
                                           cut_statistics_torch,
                                           fb_failures_torch,
                                           gray_blur_torch,
                                           grid_points_torch,
                                           photo_failures_torch,
                                           track_points_torch)

POS_TOL = 1e-4
TARGET_TOL = 1e-3
CODE = {r: i + 1 for i, r in enumerate(REJECT_REASONS)}
T = torch.from_numpy


def _clip(seed, label=4, drift=0.0, cut=False):
    """One clip of 2 tubes x 5 frames (64 x 64) with Farneback forward and
    backward flows from the pipeline; ``drift`` px/frame is added to the
    second tube's forward flow (points leave the frame, fb check fails);
    ``cut`` splices another clip into the first tube."""
    a, _ = render_clip(label, 8, (64, 64), seed=seed)
    dense = np.stack([a[0:5], a[3:8]])
    if cut:
        b, _ = render_clip((label + 3) % 8, 8, (64, 64), seed=seed + 10)
        dense[0, 3:] = b[:2]
    res = ComputeFlow(backward=True)(dict(dense_imgs=dense))
    res['flows'][1] += np.float32(drift)
    return res


def _numpy_path(res, rc=False, grid_step=8, patch=16, scale=None, **kw):
    """The worker path: ComputeTrajectories -> CheckTrajectoryReliability
    -> BuildMMETargets, with every intermediate kept."""
    res = {k: (v.copy() if isinstance(v, np.ndarray) else v)
           for k, v in res.items()}
    if scale is not None:
        res['scale_factor'] = np.array(scale, np.float32)
    res = ComputeTrajectories(grid_step, release_compat=rc)(res)
    snap = dict(positions=res['traj_positions'].copy(),
                in_frame=res['traj_point_valid'].copy(),
                steps=res.get('traj_steps'))
    checker = CheckTrajectoryReliability(release_compat=rc)
    grays = checker._grays(res)
    snap.update(grays=grays, fb=checker.fb_failures(res).any(1),
                photo=checker.photo_failures(res, grays).any(1))
    res = checker(res)
    snap.update(valid=res['traj_point_valid'].copy(),
                reason=res['traj_point_reason'].copy(),
                cut_pairs=res['traj_cut_pairs'].copy())
    res = BuildMMETargets(patch_size=patch, with_hog=False, release_compat=rc,
                          min_valid_fraction=0.0, keep_positions=True,
                          **kw)(res)
    snap.update(target=res['traj_target'].numpy(),
                tok_valid=res['traj_valid'].numpy(),
                reject=res['traj_reject'].numpy(),
                motion=res['traj_motion'])
    return snap


def _torch_path(clips, grays, rc=False, grid_step=8, patch=16, scale=None,
                **kw):
    """clip_targets_torch on B clips at once (the NumPy path's grey frames
    are passed in, so the photometric check sees the same pixels)."""
    flows = T(np.stack([c['flows'] for c in clips]))
    bwd = T(np.stack([c['flows_bwd'] for c in clips]))
    return clip_targets_torch(flows, grid_step, patch, flows_bwd=bwd,
                              grays=T(np.stack(grays)).float(),
                              scale_factor=scale, release_compat=rc,
                              reliability={}, targets=kw)


def _max_diff(a, b):
    return float(np.abs(np.asarray(a, np.float64) -
                        np.asarray(b, np.float64)).max())


@pytest.mark.parametrize('rc,scale', [(False, None), (True, None),
                                      (False, (0.5, 0.25))])
def test_whole_chain_equals_numpy_worker_path(rc, scale):
    # tube 1 drifts 1.5 px/frame: points leave the frame and fail the
    # forward-backward check; a cut in clip 1 exercises the shot-cut mask
    clips = [_clip(0, drift=1.5), _clip(1, label=6, cut=True)]
    ref = [_numpy_path(c, rc, scale=scale) for c in clips]
    got = _torch_path(clips, [r['grays'] for r in ref], rc, scale=scale)
    diffs = {}
    for i, r in enumerate(ref):
        diffs['pos'] = max(diffs.get('pos', 0), _max_diff(
            got['positions'][i], r['positions']))
        assert diffs['pos'] < POS_TOL
        for key, mine in (('in_frame', 'in_frame'), ('fb', 'fb'),
                          ('photo', 'photo'), ('cut_pairs', 'cut_pairs'),
                          ('reason', 'reason')):
            np.testing.assert_array_equal(got[mine][i].numpy(), r[key],
                                          err_msg=key)
        np.testing.assert_array_equal(got['traj_valid'][i].numpy(),
                                      r['tok_valid'])
        diffs['target'] = max(diffs.get('target', 0), _max_diff(
            got['traj_target'][i], r['target']))
        assert diffs['target'] < TARGET_TOL
        np.testing.assert_allclose(got['traj_reject'][i].numpy(),
                                   r['reject'], atol=1e-6)
        np.testing.assert_allclose(float(got['motion'][i]), r['motion'],
                                   rtol=1e-5)
    # every reason is exercised by these clips
    reasons = np.concatenate([r['reason'].ravel() for r in ref])
    for name in ('left_frame', 'fb_check', 'shot_cut'):
        assert (reasons == CODE[name]).any(), name
    # photometric failures exist (their reason is mostly taken by fb / cut)
    assert any(r['photo'][r['in_frame']].any() for r in ref)
    assert ref[1]['cut_pairs'][0].any() and not ref[1]['cut_pairs'][1].any()
    if not rc:
        assert not ref[1]['valid'][0].any()  # the cut tube is rejected
    print(f"release_compat={rc} scale={scale}: max |diff| {diffs}, reasons "
          f"{np.bincount(reasons, minlength=6)}")


def test_release_steps_equal_numpy_exactly():
    clip = _clip(2, label=0, drift=-7.0)
    ref = _numpy_path(clip, rc=True)
    pos, valid, steps = track_points_torch(
        T(clip['flows']), grid_points_torch(64, 64, 8), release_compat=True)
    np.testing.assert_array_equal(steps.numpy(), ref['steps'])
    np.testing.assert_array_equal(pos.numpy(), ref['positions'])
    np.testing.assert_array_equal(valid.numpy(), ref['in_frame'])
    assert not valid[1].all() and valid[0].any()


def test_batched_clips_equal_one_by_one():
    clips = [_clip(s, label=s % 8, drift=3.0 * s) for s in range(3)]
    grays = [CheckTrajectoryReliability()._grays(
        ComputeTrajectories(8)(dict(c))) for c in clips]
    both = _torch_path(clips, grays, scale=None)
    for i, c in enumerate(clips):
        one = _torch_path([c], [grays[i]])
        for key in ('traj_target', 'traj_valid', 'traj_reject', 'reason',
                    'positions', 'cut_pairs'):
            torch.testing.assert_close(both[key][i], one[key][0], rtol=0,
                                       atol=0, msg=key)


def test_half_resolution_flow_matches_numpy():
    yy, xx = np.mgrid[0:16, 0:24].astype(np.float32)
    low = np.stack([1.0 + 0.8 * np.sin(xx / 2.5), 0.5 * np.cos(yy / 2.0)],
                   -1)
    low = np.broadcast_to(low, (2, 3, 16, 24, 2)).copy()
    low[1] *= -1.5
    dense = np.zeros((2, 4, 32, 48, 3), np.uint8)
    ref = ComputeTrajectories(grid_step=8)(dict(flows=low, dense_imgs=dense))
    pos, valid, _ = track_points_torch(T(low), grid_points_torch(32, 48, 8),
                                       (48, 32))
    assert _max_diff(pos, ref['traj_positions']) < POS_TOL
    np.testing.assert_array_equal(valid.numpy(), ref['traj_point_valid'])
    # and against the upsampled flow, as the NumPy test does
    full = np.stack([[resize_flow(f, (48, 32)) for f in t] for t in low])
    pos_full, _, _ = track_points_torch(T(full),
                                        grid_points_torch(32, 48, 8))
    assert _max_diff(pos, pos_full) < 0.05


def _occlusion(speed=4, steps=5, x0=16):
    rng = np.random.default_rng(1)
    bg = (40 + rng.integers(0, 8, (128, 128, 1))).repeat(3, -1)
    spr = (200 + rng.integers(0, 8, (40, 40, 1))).repeat(3, -1)
    frames, fwd, bwd = [], [], []
    for t in range(steps):
        f = bg.copy()
        f[44:84, x0 + speed * t:x0 + speed * t + 40] = spr
        frames.append(f.astype(np.uint8))
        if t < steps - 1:
            fl = np.zeros((128, 128, 2), np.float32)
            fl[44:84, x0 + speed * t:x0 + speed * t + 40, 0] = speed
            fwd.append(fl)
        if t > 0:
            b = np.zeros((128, 128, 2), np.float32)
            b[44:84, x0 + speed * t:x0 + speed * t + 40, 0] = -speed
            bwd.append(b)
    return (np.stack(frames)[None], np.stack(fwd)[None],
            np.stack(bwd)[None])


def test_occlusion_known_answer_per_check():
    """Exact flows of a sprite over a static background: the covered
    background points, and only they, fail each of the fb and photometric
    checks (the NumPy test's known answer, on the tensor checks)."""
    speed, steps, x0 = 4, 5, 16
    frames, fwd, bwd = _occlusion(speed, steps, x0)
    start = grid_points_torch(128, 128, 4)
    pos, valid, _ = track_points_torch(T(fwd), start)
    p = start.numpy()
    x, y = p[..., 0], p[..., 1]
    covered = ((y >= 44) & (y < 84) & (x >= x0 + 40)
               & (x < x0 + 40 + speed * (steps - 1)))
    fb = fb_failures_torch(pos, T(bwd)).any(1)[0].numpy()
    grays = gray_blur_torch(T(frames), 1.0)
    photo = photo_failures_torch(grays, pos).any(1)[0].numpy()
    for name, fail in (('fb', fb), ('photo', photo)):
        inside = valid[0].numpy()
        np.testing.assert_array_equal(fail[inside], covered[inside],
                                      err_msg=name)
    assert covered.sum() >= 30


def test_gray_blur_within_one_level_of_opencv():
    frames = np.stack([render_clip(4, 3, (48, 64), seed=3)[0]])[None]
    ref = CheckTrajectoryReliability()._grays(dict(dense_imgs=frames[0]))
    got = gray_blur_torch(T(frames[0]), 1.0).numpy()
    assert np.abs(got - ref).max() <= 1
    exact = gray_blur_torch(T(frames[0]), 0.0).numpy()
    ref0 = CheckTrajectoryReliability(photo_sigma=0)._grays(
        dict(dense_imgs=frames[0]))
    np.testing.assert_array_equal(exact, ref0)


def test_shot_cut_known_answer_on_tensor_grays():
    a, _ = render_clip(0, 8, (64, 64), seed=1)
    b, _ = render_clip(4, 8, (64, 64), seed=2)
    clip = np.concatenate([a[:4], b[:4]])
    dense = np.stack([clip[0:5], clip[3:8], a[0:5]])
    flows = ComputeFlow()(dict(dense_imgs=dense))['flows']
    cuts = cut_pairs_torch(gray_blur_torch(T(dense), 1.0), T(flows))
    np.testing.assert_array_equal(
        cuts.numpy(), [[False, False, False, True],
                       [True, False, False, False],
                       [False] * 4])


def test_cut_statistics_close_to_opencv():
    """128 x 128 frames: the checker reduces them to 64 x 64 (area) and
    resizes the flows; the tensor path does the same in float. The cut
    decisions agree exactly; the fractions of pixels that fail to warp
    within 0.02 (cv2.remap warps at 1/32 px; measured 1.4e-3), the mean
    warp error within 0.5 grey levels (measured 7e-3)."""
    from mme_plugin.ops import cut_statistics
    a, _ = render_clip(1, 8, (128, 128), seed=5)
    b, _ = render_clip(5, 8, (128, 128), seed=6)
    clip = np.concatenate([a[:4], b[:4]])
    dense = np.stack([clip[0:5], clip[2:7], a[3:8]])
    res = ComputeFlow()(dict(dense_imgs=dense))
    checker = CheckTrajectoryReliability()
    grays = checker._grays(res)
    ref = checker.cut_pairs(res, grays)
    got = cut_pairs_torch(T(grays).float(), T(res['flows']))
    np.testing.assert_array_equal(got.numpy(), ref)
    assert ref[0, 3] and ref[1, 1] and not ref[2].any()
    # the statistics themselves, on the same reduced inputs
    small = T(grays).float().reshape(-1, 1, 128, 128)
    small = torch.floor(torch.nn.functional.avg_pool2d(small, 2) + 0.5)
    small = small.reshape(3, 5, 64, 64)
    fl = np.stack([resize_flow(f, (64, 64)) for f in
                   res['flows'].reshape(-1, 128, 128, 2)])
    prev, nxt = small[:, :-1].reshape(-1, 64, 64), small[:, 1:].reshape(
        -1, 64, 64)
    st_ref = cut_statistics(prev.numpy(), nxt.numpy(), fl)
    st = cut_statistics_torch(prev, nxt, T(fl))
    assert _max_diff(st['warp_fail'], st_ref['warp_fail']) < 0.02
    assert _max_diff(st['hist_distance'], st_ref['hist_distance']) < 1e-5
    assert _max_diff(st['warp_error'], st_ref['warp_error']) < 0.5


def _const(num, h, w, dx, dy):
    f = torch.zeros(1, 1, num, h, w, 2)
    f[..., 0], f[..., 1] = dx, dy
    return f


def test_uniform_translation_zero_targets_and_frame_exit():
    out = clip_targets_torch(_const(4, 64, 64, 1.3, -0.6))
    assert out['traj_target'].abs().max() < 1e-3
    valid = out['traj_valid'].reshape(4, 4)
    # x = 60 + 5.2 > 63: the right-most patch column leaves the frame
    assert valid[:, :3].all() and not valid[:, 3].any()
    # ... but only its right point column (1 of 8) is outside
    assert out['traj_reject'][0, CODE['left_frame'] - 1] == 1 / 8


@pytest.mark.parametrize('omega', [0.02, -0.02])
def test_rotation_analytic_pattern(omega):
    h = w = 64
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    rx, ry = xs - (w - 1) / 2, ys - (h - 1) / 2
    c, s = np.cos(omega), np.sin(omega)
    f = np.stack([c * rx - s * ry - rx, s * rx + c * ry - ry], -1)
    flows = T(np.repeat(f[None].astype(np.float32), 4, 0))[None, None]
    tgt = clip_targets_torch(flows)['traj_target'][0].reshape(
        16, 2, 4, 4).numpy()
    px = np.array([-4, 4, -4, 4.])
    py = np.array([-4, -4, 4, 4.])
    for coord, rel in ((0, -omega * py), (1, omega * px)):
        expected = rel / (rel.std(ddof=1) + 0.1)
        assert np.abs(tgt[:, coord] - expected).max() < 0.05


def test_step_bound_invalid_and_clamp_in_decoded_pixels():
    disp = torch.zeros(1, 1, 4, 8, 8, 2)
    disp[0, 0, 0, 0, 0, 0] = 12.0  # 24 px of the decoded video at scale 0.5
    valid = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    out = traj_targets_torch(disp, valid, 2, scale_factor=(0.5, 0.5),
                             norm='none', traj_scale=1.0)
    assert not out['traj_valid'][0, 0] and out['traj_valid'][0, 1:].all()
    assert out['traj_reject'][0, CODE['too_far'] - 1] == 1 / 64
    out = traj_targets_torch(disp, valid, 2, scale_factor=(0.5, 0.5),
                             norm='none', traj_scale=1.0,
                             step_overflow='clamp')
    assert out['traj_valid'].all() and out['traj_target'][0, 0, 0] == 10.0
    out = traj_targets_torch(disp, valid, 2, norm='none', traj_scale=1.0)
    assert out['traj_valid'].all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_equals_cpu_without_host_syncs():
    """On the training device: same results as on CPU, and no
    synchronizing call (sync debug mode raises on one)."""
    clips = [_clip(0, drift=1.5), _clip(1, label=6, cut=True)]
    grays = [CheckTrajectoryReliability()._grays(
        ComputeTrajectories(8)(dict(c))) for c in clips]
    cpu = _torch_path(clips, grays)
    flows = T(np.stack([c['flows'] for c in clips])).cuda()
    bwd = T(np.stack([c['flows_bwd'] for c in clips])).cuda()
    g = T(np.stack(grays)).float().cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        gpu = clip_targets_torch(flows, flows_bwd=bwd, grays=g,
                                 reliability={})
    finally:
        torch.cuda.set_sync_debug_mode('default')
    for key in ('traj_valid', 'reason', 'cut_pairs'):
        np.testing.assert_array_equal(gpu[key].cpu().numpy(),
                                      cpu[key].numpy(), err_msg=key)
    assert _max_diff(gpu['traj_target'].cpu(), cpu['traj_target']) < \
        TARGET_TOL


def test_missing_inputs_and_bad_options_name_the_fix():
    flows = _const(2, 32, 32, 0.5, 0.0)
    with pytest.raises(ValueError, match='flows_bwd'):
        clip_targets_torch(flows, reliability={})
    with pytest.raises(ValueError, match='grays'):
        clip_targets_torch(flows, flows_bwd=-flows, reliability={})
    with pytest.raises(ValueError, match='full-size flows'):
        track_points_torch(flows[0], grid_points_torch(64, 64, 8), (64, 64),
                           release_compat=True)
    with pytest.raises(ValueError, match='step_overflow'):
        clip_targets_torch(flows, targets=dict(step_overflow='wrap'))
    # an unusable clip is reported, not raised on (no host sync)
    out = clip_targets_torch(_const(2, 32, 32, 40.0, 0.0))
    assert out['valid_fraction'][0] == 0 and out['finite'][0]
    assert torch.isnan(out['motion'][0])
