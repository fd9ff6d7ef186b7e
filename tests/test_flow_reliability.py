"""Known-answer tests of the trajectory reliability checks (issue #14)."""
import numpy as np
import pytest

from mme_plugin.datasets.synthetic import random_texture, render_clip
from mme_plugin.datasets.transforms import (BuildMMETargets,
                                            CheckTrajectoryReliability,
                                            ComputeFlow, ComputeTrajectories,
                                            MotionFlip, MotionResize)
from mme_plugin.io import FlowCacheError
from mme_plugin.ops import REJECT_REASONS, fb_inconsistent, warp_error

CODE = {r: i + 1 for i, r in enumerate(REJECT_REASONS)}


def _track(dense, backend=dict(type='FarnebackFlow'), flows=None,
           flows_bwd=None, step=4):
    """ComputeFlow(backward=True) + ComputeTrajectories on [N, S, H, W, 3]
    frames (or on the given flows)."""
    res = dict(dense_imgs=dense)
    if flows is None:
        res = ComputeFlow(backend=backend, backward=True)(res)
    else:
        res.update(flows=flows, flows_bwd=flows_bwd)
    return ComputeTrajectories(grid_step=step)(res)


def test_fb_test_values():
    """Sundaram et al.'s test: tolerance alpha (|w|^2 + |w_hat|^2) + beta."""
    w = np.array([[3.0, 0.0], [3.0, 0.0], [30.0, 0.0], [1.0, 0.0]])
    w_hat = np.array([[-3.0, 0.0], [0.0, 0.0], [-29.5, 0.0], [-0.2, 0.0]])
    # exact return; no return; 0.5 px off at 30 px (0.25 <= 17.7 + 0.5);
    # 0.8 px off at 1 px (0.64 > 0.0104 + 0.5)
    assert fb_inconsistent(w, w_hat).tolist() == [False, True, False, True]


def _pan(steps=5, dx=2, dy=1, size=96, seed=0):
    tex = random_texture(np.random.default_rng(seed), 200, 200)
    return np.stack([tex[20 + dy * t:20 + dy * t + size,
                         30 + dx * t:30 + dx * t + size]
                     for t in range(steps)])


def test_rigid_motion_exact_flow_every_point_reliable():
    frames = _pan()
    n, s = 1, frames.shape[0]
    h, w = frames.shape[1:3]
    fwd = np.zeros((n, s - 1, h, w, 2), np.float32)
    fwd[..., 0], fwd[..., 1] = -2, -1  # content moves up-left
    res = _track(frames[None], flows=fwd, flows_bwd=-fwd)
    inside = res['traj_point_valid'].copy()
    out = CheckTrajectoryReliability()(res)
    assert inside.mean() > 0.85
    np.testing.assert_array_equal(out['traj_point_valid'], inside)
    assert not out['traj_cut_pairs'].any()


@pytest.mark.parametrize('backend', [
    dict(type='FarnebackFlow'),
    dict(type='DISFlow', preset='ultrafast', scale=0.5)
])
def test_rigid_motion_real_flow_rejects_only_failed_tracks(backend):
    """A rigid pan with real flow: most points are kept, and the rejected
    ones are those the flow really got wrong (the true motion is known)."""
    res = _track(_pan()[None], backend)
    inside = res['traj_point_valid'][0].copy()
    pos = res['traj_positions'][0]
    err = np.linalg.norm(pos[-1] - (pos[0] + 4 * np.array([-2, -1])),
                         axis=-1)
    out = CheckTrajectoryReliability()(res)
    kept = out['traj_point_valid'][0]
    rejected = inside & ~kept
    assert kept[inside].mean() >= 0.9  # measured 0.94 / 0.91
    assert rejected.any()
    assert err[rejected].mean() >= 3 * err[kept].mean()
    assert not out['traj_cut_pairs'].any()


def _occlusion(speed=4, steps=5, x0=16):
    """A bright 40 x 40 sprite moving right over a dark static background,
    with its exact forward and backward flows. Sprite edges stay 2 px from
    the 4-px grid's points."""
    rng = np.random.default_rng(1)
    bg = (40 + rng.integers(0, 8, (128, 128, 1))).repeat(3, -1)
    spr = (200 + rng.integers(0, 8, (40, 40, 1))).repeat(3, -1)
    frames, fwd, bwd = [], [], []
    for t in range(steps):
        f = bg.copy()
        f[44:84, x0 + speed * t:x0 + speed * t + 40] = spr
        frames.append(f.astype(np.uint8))
        fl = np.zeros((128, 128, 2), np.float32)
        if t < steps - 1:
            fl[44:84, x0 + speed * t:x0 + speed * t + 40, 0] = speed
            fwd.append(fl)
        if t > 0:
            b = np.zeros((128, 128, 2), np.float32)
            b[44:84, x0 + speed * t:x0 + speed * t + 40, 0] = -speed
            bwd.append(b)
    return (np.stack(frames)[None], np.stack(fwd)[None],
            np.stack(bwd)[None])


@pytest.mark.parametrize('check', [
    dict(photo_check=False), dict(fb_check=False)])
def test_occlusion_exact_flow_covered_points_invalid(check):
    """Known answer: the background points the sprite covers within the
    tube, and only they, are rejected (by either check alone)."""
    speed, steps, x0 = 4, 5, 16
    frames, fwd, bwd = _occlusion(speed, steps, x0)
    res = _track(frames, flows=fwd, flows_bwd=bwd)
    out = CheckTrajectoryReliability(**check)(res)
    p = res['traj_positions'][0, 0]
    x, y = p[..., 0], p[..., 1]
    rows = (y >= 44) & (y < 84)
    covered = rows & (x >= x0 + 40) & (x < x0 + 40 + speed * (steps - 1))
    assert covered.sum() >= 30
    valid = out['traj_point_valid'][0]
    assert not valid[covered].any()
    assert valid[~covered].all()
    reason = 'fb_check' if check.get('fb_check', True) else 'photo_check'
    assert (out['traj_point_reason'][0][covered] == CODE[reason]).all()


def test_occlusion_real_flow_rejects_covered_points_far_more_often():
    """With real flow (which smears motion over the sprite's edge) the
    covered points are rejected much more often than points far from the
    sprite; the measured rates are in docs/benchmarks.md."""
    speed, steps, x0 = 4, 5, 16
    frames = _occlusion(speed, steps, x0)[0]
    res = _track(frames, dict(type='FarnebackFlow'))
    out = CheckTrajectoryReliability()(res)
    p = res['traj_positions'][0, 0]
    x, y = p[..., 0], p[..., 1]
    rows = (y >= 44) & (y < 84)
    covered = rows & (x >= x0 + 40) & (x < x0 + 40 + speed * (steps - 1))
    far = (x > 100) | (y < 30) | (y > 98)
    valid = out['traj_point_valid'][0]
    rejected_covered = 1 - valid[covered].mean()
    rejected_far = 1 - valid[far].mean()
    assert rejected_covered >= 0.5, rejected_covered
    assert rejected_far <= 0.02, rejected_far


def test_shot_cut_invalidates_the_tube_across_it():
    a, _ = render_clip(0, 8, (64, 64), seed=1)
    b, _ = render_clip(4, 8, (64, 64), seed=2)
    clip = np.concatenate([a[:4], b[:4]])  # cut between frames 3 and 4
    dense = np.stack([clip[0:5], clip[3:8], a[0:5]])
    res = _track(dense)
    out = CheckTrajectoryReliability()(res)
    np.testing.assert_array_equal(out['traj_cut_pairs'][0],
                                  [False, False, False, True])
    np.testing.assert_array_equal(out['traj_cut_pairs'][1],
                                  [True, False, False, False])
    assert not out['traj_cut_pairs'][2].any()
    assert not out['traj_point_valid'][:2].any()
    assert (out['traj_point_reason'][:2][res['traj_point_valid'][:2]] ==
            CODE['shot_cut']).all()
    assert out['traj_point_valid'][2].mean() > 0.9


class _NoiseFlow:
    """A broken flow backend: Gaussian noise of 3 px."""

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def __call__(self, prev, nxt):
        return self.rng.normal(0, 3, prev.shape[:2] + (2, )).astype(
            np.float32)


def test_noise_flow_mostly_rejected_and_targets_refused():
    res = _track(_pan()[None], _NoiseFlow())
    inside = res['traj_point_valid'].copy()
    out = CheckTrajectoryReliability()(res)
    assert out['traj_point_valid'].sum() <= 0.05 * inside.sum()
    with pytest.raises(RuntimeError, match='fb_check'):
        BuildMMETargets(patch_size=8, with_hog=False)(out)


def test_reasons_counted_and_logged_fractions():
    frames, fwd, bwd = _occlusion()
    res = CheckTrajectoryReliability()(_track(frames, flows=fwd,
                                              flows_bwd=bwd))
    expected = [(res['traj_point_reason'] == k + 1).mean()
                for k in range(len(REJECT_REASONS))]
    out = BuildMMETargets(patch_size=8, with_hog=False,
                          min_valid_fraction=0.0)(res)
    np.testing.assert_allclose(out['traj_reject'].numpy(), expected,
                               rtol=1e-6)
    assert out['traj_reject'][REJECT_REASONS.index('fb_check')] > 0


def test_release_compat_rejects_nothing():
    frames, fwd, bwd = _occlusion()
    res = _track(frames, flows=fwd, flows_bwd=bwd)
    before = res['traj_point_valid'].copy()
    out = CheckTrajectoryReliability(release_compat=True)(res)
    np.testing.assert_array_equal(out['traj_point_valid'], before)
    assert (out['traj_point_reason'] == CODE['fb_check']).any()


def test_fb_check_without_backward_flow_names_the_fix():
    res = ComputeTrajectories(grid_step=4)(
        ComputeFlow()(dict(dense_imgs=_pan()[None])))
    with pytest.raises(KeyError, match=r'ComputeFlow\(backward=True\)'):
        CheckTrajectoryReliability()(res)
    out = CheckTrajectoryReliability(fb_check=False)(res)
    assert out['traj_point_valid'].any()


def test_backward_flow_is_the_reverse_chain():
    frames = _pan()
    res = ComputeFlow(backward=True)(dict(dense_imgs=frames[None]))
    one = ComputeFlow().backend
    for t in range(frames.shape[0] - 1):
        np.testing.assert_array_equal(res['flows_bwd'][0, t],
                                      one(frames[t + 1], frames[t]))
        np.testing.assert_array_equal(res['flows'][0, t],
                                      one(frames[t], frames[t + 1]))


def test_backward_flow_cache(tmp_path):
    from mme_plugin.io import write_video
    video = str(tmp_path / 'v.mp4')
    frames = _pan(steps=10, size=64)
    write_video(video, frames, lossless=True)
    fwd_only = ComputeFlow(cache_dir=str(tmp_path / 'c'),
                           cache_mode='readwrite')
    fwd_only.fill(video)
    both = ComputeFlow(cache_dir=str(tmp_path / 'c'), cache_mode='read',
                       backward=True)
    assert 'backward' in both.check_cache(video, 10)
    with pytest.raises(FlowCacheError, match='backward'):
        both(dict(dense_imgs=frames[None, :3], filename=video,
                  total_frames=10, dense_frame_inds=np.array([[0, 1, 2]])))
    both.cache_mode = 'readwrite'
    from mme_plugin.io import get_frames, open_video
    decoded = np.stack(get_frames(open_video(video), video, range(10))[0])
    res = both(dict(dense_imgs=decoded[None, 2:5], filename=video,
                    total_frames=10, dense_frame_inds=np.array([[2, 3, 4]])))
    assert both.check_cache(video, 10) is None
    direct = ComputeFlow(backward=True)(dict(dense_imgs=decoded[None, 2:5]))
    for key in ('flows', 'flows_bwd'):
        np.testing.assert_allclose(res[key], direct[key], atol=1 / 64)


def test_geometry_carries_backward_flows():
    frames = _pan(steps=3, size=64)
    res = ComputeFlow(backward=True)(dict(dense_imgs=frames[None]))
    res.update(imgs=list(frames), img_shape=(64, 64), modality='RGB')
    flipped = MotionFlip(flip_ratio=1.0)(dict(res))
    np.testing.assert_allclose(flipped['flows_bwd'][..., 0],
                               -res['flows_bwd'][..., ::-1, 0])
    resized = MotionResize(scale=(128, 128), keep_ratio=False)(dict(res))
    assert resized['flows_bwd'].shape[2:4] == (128, 128)
    np.testing.assert_allclose(resized['flows_bwd'][..., 0].mean(),
                               2 * res['flows_bwd'][..., 0].mean(),
                               rtol=0.05)


def test_warp_error_known_answer():
    frames = _pan(steps=2, dx=3, dy=0)
    flow = np.zeros(frames.shape[1:3] + (2, ), np.float32)
    flow[..., 0] = -3
    err = warp_error(frames[0], frames[1], flow)
    inside = np.isfinite(err)
    assert inside[:, 3:].all() and not inside[:, :3].any()
    assert np.nanmax(err) <= 1.0  # grey rounding only


def _load_tool(name):
    import importlib.util
    import os.path as osp
    path = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                    'tools', 'analysis', f'{name}.py')
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_flow_report_on_user_videos(tmp_path, capsys):
    """The report runs on any video: a normal clip has no cut, a video of
    two spliced clips has its cut pair flagged by every flow choice."""
    from mme_plugin.io import write_video
    a, _ = render_clip(0, 12, (96, 128), seed=1)
    b, _ = render_clip(5, 12, (96, 128), seed=2)
    normal, spliced = str(tmp_path / 'n.mp4'), str(tmp_path / 's.avi')
    write_video(normal, a)
    write_video(spliced, np.concatenate([a[:6], b[:6]]))
    tool = _load_tool('flow_report')
    flows = ['farneback (release)', 'dis ultrafast scale 0.5']
    rep = tool.main([normal, '--starts', '2', '--size', '96', '--flows',
                     *flows])
    assert set(rep) == set(flows)
    assert all(r['cut_pairs'] == 0 for r in rep.values())
    assert rep['farneback (release)']['vs_release_px'] == 0
    assert all(0.5 < r['reliable'] <= 1 for r in rep.values())
    # one window centred on the splice (frames 4-8 of 12)
    rep = tool.main([spliced, '--starts', '1', '--size', '96', '--flows',
                     *flows, '--out', str(tmp_path / 'r.json')])
    assert all(r['cut_pairs'] == 0.25 for r in rep.values())  # 1 of 4 pairs
    assert all(r['rejected_shot_cut'] > 0.9 for r in rep.values())
    out = capsys.readouterr().out
    assert 'dis ultrafast scale 0.5' in out and 'reliable' in out
    assert (tmp_path / 'r.json').is_file()
    with pytest.raises(SystemExit, match='no such video'):
        tool.main([str(tmp_path / 'missing.mp4')])


def test_every_reason_has_a_colour_in_the_pictures(tmp_path):
    from mme_plugin.visualization import (REASON_COLORS, draw_clip_targets,
                                          point_reasons)
    assert sorted(REASON_COLORS) == list(range(len(REJECT_REASONS) + 1))
    assert len({c for _, c in REASON_COLORS.values()}) == len(REASON_COLORS)
    frames, fwd, bwd = _occlusion()
    res = CheckTrajectoryReliability()(_track(frames, flows=fwd,
                                              flows_bwd=bwd))
    codes = point_reasons(res, 0, res['traj_point_reason'][0].size)
    assert (codes == CODE['fb_check']).any() and (codes == 0).any()
    res.update(imgs=list(frames[0]), mask=np.zeros(2 * 16 * 16, bool))
    out = draw_clip_targets(res, 8, str(tmp_path / 'r.png'))
    assert (tmp_path / 'r.png').stat().st_size > 1000 and out.endswith('png')
