"""Bad videos give errors that name the file; decord falls back to PyAV."""
import numpy as np
import pytest

from mme_plugin.datasets.synthetic import render_clip
from mme_plugin.datasets.transforms import VideoDecode, VideoInit
from mme_plugin.io import VideoReadError, open_video, write_video


@pytest.fixture(scope='module')
def good(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('v') / 'good.mp4')
    frames, _ = render_clip(0, 16, (64, 64), seed=1)
    write_video(path, frames)
    return path, frames


def test_decode_matches_written_frames(good):
    path, frames = good
    res = VideoDecode()(dict(VideoInit()(dict(filename=path)),
                             frame_inds=np.array([0, 5, 15])))
    assert len(res['imgs']) == 3 and res['img_shape'] == (64, 64)
    # Lossy H.264 of a noisy texture, but frame 5 is the closest original.
    errs = [np.abs(res['imgs'][1].astype(int) - f.astype(int)).mean()
            for f in frames]
    assert int(np.argmin(errs)) == 5 and errs[5] < 20


@pytest.mark.parametrize('backend', ['decord', 'pyav'])
def test_both_backends_decode(good, backend):
    path, _ = good
    reader = open_video(path, backend)
    assert reader.num_frames == 16
    assert reader.get_batch([3])[0].shape == (64, 64, 3)


def test_width_decord_mishandles_falls_back(tmp_path):
    # decord 0.6.0 fails on some widths (48 px seen); PyAV must take over.
    path = str(tmp_path / 'w48.mp4')
    frames, _ = render_clip(0, 8, (64, 48), seed=2)
    write_video(path, frames)
    res = VideoDecode()(dict(VideoInit()(dict(filename=path)),
                             frame_inds=np.arange(8)))
    assert res['imgs'][0].shape == (64, 48, 3)


def test_width_decord_mishandles_passes_the_checker_and_fills_the_cache(
        tmp_path):
    # The dataset checker and the flow-cache filler decode through the same
    # PyAV fallback as the pipeline: a 48-px-wide video is fine for all.
    from mme_plugin.datasets.transforms import ComputeFlow
    from mme_plugin.datasets.video_check import check_video
    path = str(tmp_path / 'w48.mp4')
    frames, _ = render_clip(0, 8, (64, 48), seed=2)
    write_video(path, frames)
    assert check_video(path) is None
    flow = ComputeFlow(cache_dir=str(tmp_path / 'c'), cache_mode='readwrite')
    flow.fill(path)
    assert flow.cache.check(path, flow.backend.tag, 8) is None


def test_missing_empty_and_corrupt_files(tmp_path):
    with pytest.raises(VideoReadError, match='no such video file'):
        VideoInit()(dict(filename=str(tmp_path / 'missing.mp4')))
    empty = tmp_path / 'empty.mp4'
    empty.write_bytes(b'')
    with pytest.raises(VideoReadError, match='empty.mp4.*empty'):
        VideoInit()(dict(filename=str(empty)))
    junk = tmp_path / 'junk.mp4'
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(VideoReadError, match='junk.mp4.*cannot decode'):
        VideoInit()(dict(filename=str(junk)))


def test_truncated_file(good, tmp_path):
    path, _ = good
    data = open(path, 'rb').read()
    cut = tmp_path / 'cut.mp4'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(VideoReadError, match='cut.mp4'):
        res = VideoInit()(dict(filename=str(cut)))
        VideoDecode()(dict(res, frame_inds=np.arange(res['total_frames'])))


def test_repeated_indices_get_distinct_arrays(good):
    # Stock Flip works in place: a frame listed twice must not be shared.
    from mmaction.datasets.transforms import Flip
    path, _ = good
    res = VideoDecode(extra_keys=('dense_frame_inds', ))(dict(
        VideoInit()(dict(filename=path)), frame_inds=np.array([2, 2, 3]),
        dense_frame_inds=np.array([[2, 3]])))
    before = res['imgs'][0].copy()
    res = Flip(flip_ratio=1.0)(dict(res, modality='RGB'))
    np.testing.assert_array_equal(res['imgs'][0], before[:, ::-1])
    np.testing.assert_array_equal(res['imgs'][1], before[:, ::-1])
    np.testing.assert_array_equal(res['dense_imgs'][0, 0], before)
