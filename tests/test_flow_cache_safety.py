"""The flow cache fails safe: corrupt entries, concurrent writers, a full
disk, an unwritable directory, and a video replaced behind its back."""
import errno
import multiprocessing as mp
import os

import numpy as np
import pytest

import mme_plugin  # noqa: F401
from mme_plugin.datasets.transforms import ComputeFlow
from mme_plugin.io import FlowCache, FlowCacheError

from .conftest import decoded


def _flow(tmp_path, mode):
    return ComputeFlow(backend=dict(type='DISFlow', preset='ultrafast'),
                       cache_dir=str(tmp_path / 'cache'), cache_mode=mode,
                       data_root=str(tmp_path / 'data'))


def _entry(tmp_path, video):
    t = _flow(tmp_path, 'readwrite')
    return t.cache.paths(video, t.backend.tag)


@pytest.mark.parametrize('damage', ['truncate', 'zeros'])
def test_corrupt_entry_is_recomputed_or_named(video, tmp_path, damage):
    want = _flow(tmp_path, 'readwrite')(decoded(video))['flows']
    arr, _ = _entry(tmp_path, video)
    size = os.path.getsize(arr)
    with open(arr, 'r+b') as f:
        if damage == 'truncate':
            f.truncate(size // 2)
        else:
            f.write(b'\0' * size)
    with pytest.raises(FlowCacheError,
                       match=r'a\.mp4: flow cache entry corrupt.*'
                       r'extract_trajectories'):
        _flow(tmp_path, 'read')(decoded(video))
    got = _flow(tmp_path, 'readwrite')(decoded(video))['flows']
    np.testing.assert_array_equal(got, want)  # recomputed and replaced
    assert _flow(tmp_path, 'read').cache.check(
        video, _flow(tmp_path, 'read').backend.tag,
        decoded(video)['total_frames']) is None


def _write_many(args):
    root, video, n = args
    cache = FlowCache(root, os.path.dirname(video))
    flows = np.ones((23, 8, 8, 2), np.float32)
    for _ in range(n):
        cache.write(video, 'tag', flows, 24)
    return 'ok'


def test_concurrent_writers_of_one_entry_never_fail(video, tmp_path):
    root = str(tmp_path / 'cache')
    with mp.get_context('fork').Pool(4) as pool:
        out = pool.map(_write_many, [(root, video, 40)] * 4)
    assert out == ['ok'] * 4
    cache = FlowCache(root, os.path.dirname(video))
    assert cache.check(video, 'tag', 24) is None
    left = [f for _, _, fs in os.walk(root) for f in fs if '.tmp' in f]
    assert left == []


def test_full_disk_cleans_up_and_names_the_cache_dir(video, tmp_path,
                                                     monkeypatch):
    real_save = np.save

    def full(path, arr, *a, **k):
        real_save(path, arr[:1], *a, **k)  # a partial file, then ENOSPC
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(np, 'save', full)
    with pytest.raises(FlowCacheError,
                       match=r'to .*cache failed \(No space left on device\)'
                       r'.*nothing partial'):
        _flow(tmp_path, 'readwrite')(decoded(video))
    files = [f for _, _, fs in os.walk(tmp_path / 'cache') for f in fs]
    assert files == []


def test_unwritable_cache_dir_computes_on_the_fly_with_one_warning(
        video, tmp_path, monkeypatch):
    def denied(*a, **k):
        raise PermissionError(errno.EACCES, 'Permission denied')

    monkeypatch.setattr(np, 'save', denied)
    t = _flow(tmp_path, 'readwrite')
    want = ComputeFlow(backend=dict(type='DISFlow', preset='ultrafast'))(
        decoded(video))['flows']
    with pytest.warns(UserWarning, match='not writable.*on the fly'):
        got = t(decoded(video))['flows']
    np.testing.assert_array_equal(got, want)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # only one warning per process
        t(decoded(video))


def test_same_size_replacement_with_kept_mtime_is_stale(video, tmp_path):
    t = _flow(tmp_path, 'readwrite')
    total = decoded(video)['total_frames']
    t(decoded(video))
    assert t.cache.check(video, t.backend.tag, total) is None
    st = os.stat(video)
    data = open(video, 'rb').read()
    other = bytes(reversed(data))  # same size, other content
    with open(video, 'wb') as f:
        f.write(other)
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))  # rsync -t
    assert os.stat(video).st_size == st.st_size
    reason = t.cache.check(video, t.backend.tag, total)
    assert reason == 'stale (the video changed after the cache was written)'
