"""Dense sampling, flow backends and the flow cache."""
import os

import numpy as np
import pytest

import mme_plugin  # noqa: F401
from mme_plugin.datasets.synthetic import random_texture
from mme_plugin.datasets.transforms import (ComputeFlow, MMESampleFrames,
                                            ShortVideoError)
from mme_plugin.io import FlowCacheError
from mme_plugin.ops import DISFlow, FarnebackFlow

from .conftest import decoded


def test_dense_indices_cover_each_tube_span():
    res = MMESampleFrames(clip_len=16, frame_interval=4, traj_len=4,
                          test_mode=True)(dict(total_frames=80,
                                               filename='v.mp4'))
    sparse, dense = res['frame_inds'], res['dense_frame_inds']
    # span = 15 * 4 + 1 = 61 frames; centre offset (80 - 61) // 2 = 9
    assert sparse.tolist() == list(range(9, 9 + 64, 4))
    assert dense.shape == (8, 5)
    # tube m spans its two sparse frames through the 3 raw frames between
    np.testing.assert_array_equal(dense[:, 0], sparse[0::2])
    np.testing.assert_array_equal(dense[:, -1], sparse[1::2])
    assert (np.diff(dense, axis=1) == 1).all()


def test_short_video_error_names_file_and_fix():
    with pytest.raises(ShortVideoError, match=r'clip\.mp4.*40 frames.*61'):
        MMESampleFrames(16, 4, traj_len=4)(dict(total_frames=40,
                                                filename='clip.mp4'))


def test_random_offsets_stay_in_range():
    t = MMESampleFrames(8, 4, traj_len=4)
    for _ in range(50):
        r = t(dict(total_frames=40, filename='v'))
        assert r['dense_frame_inds'].max() < 40 and r['frame_inds'].min() >= 0


def _shifted_pair(dx: int, dy: int):
    rng = np.random.default_rng(0)
    tex = random_texture(rng, 96, 128)
    a = tex[16:80, 16:112]
    b = tex[16 - dy:80 - dy, 16 - dx:112 - dx]
    return a, b


@pytest.mark.parametrize('backend', [FarnebackFlow(), DISFlow(),
                                     FarnebackFlow(scale=0.5)])
def test_flow_backends_recover_a_known_shift(backend):
    a, b = _shifted_pair(2, -1)
    flow = backend(a, b)
    assert flow.shape == (64, 96, 2)
    inner = flow[16:-16, 16:-16]
    assert abs(np.median(inner[..., 0]) - 2) < 0.25
    assert abs(np.median(inner[..., 1]) + 1) < 0.25


@pytest.mark.parametrize('backend', [FarnebackFlow(),
                                     DISFlow(preset='fast', scale=0.5)])
def test_chained_flows_equal_pairwise_flows(backend):
    # chain() converts each frame once; it must not change the flows
    a, b = _shifted_pair(2, -1)
    c, _ = _shifted_pair(4, -2)
    frames = [a, b, c[::-1].copy()]
    got = backend.chain(frames)
    assert got.shape == (2, 64, 96, 2)
    np.testing.assert_array_equal(got[0], backend(a, b))
    np.testing.assert_array_equal(got[1], backend(b, frames[2]))


def test_cache_read_mode_names_the_missing_entry(video, tmp_path):
    t = ComputeFlow(cache_dir=str(tmp_path / 'cache'), cache_mode='read')
    with pytest.raises(FlowCacheError,
                       match=r'a\.mp4.*missing.*extract_trajectories'):
        t(decoded(video))


@pytest.mark.parametrize('scale', [1.0, 0.5])
def test_cache_round_trip_and_stale_detection(video, tmp_path, scale):
    # scale 0.5: stored at half resolution, upsampled on read; the 1/64 px
    # quantum then doubles.
    cache = str(tmp_path / 'cache')
    backend = dict(type='FarnebackFlow', scale=scale)
    tol = 1 / 64 / scale
    fresh = ComputeFlow(backend=backend)(decoded(video))['flows']
    filled = ComputeFlow(backend=backend, cache_dir=cache,
                         cache_mode='readwrite',
                         data_root=str(tmp_path / 'data'))(decoded(video))
    np.testing.assert_allclose(filled['flows'], fresh, atol=tol)
    reader = ComputeFlow(backend=backend, cache_dir=cache, cache_mode='read',
                         data_root=str(tmp_path / 'data'))
    np.testing.assert_allclose(reader(decoded(video))['flows'], fresh,
                               atol=tol)
    # Re-encode the video: the entry is stale and must not be used.
    st = os.stat(video)
    os.utime(video, (st.st_atime, st.st_mtime + 10))
    with pytest.raises(FlowCacheError, match='stale'):
        reader(decoded(video))


def test_cache_must_precede_geometric_augmentation(video, tmp_path):
    res = decoded(video)
    res['crop_bbox'] = np.array([0, 0, 32, 32])
    with pytest.raises(RuntimeError, match='before crop'):
        ComputeFlow(cache_dir=str(tmp_path / 'c'))(res)
