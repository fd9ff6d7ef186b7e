"""Repeated sampling: one decoding pass, several MME samples."""
import numpy as np
import pytest
from mmengine.config import Config

from mme_plugin.datasets import RepeatAugVideoDataset
from mme_plugin.io import open_video
from mme_plugin.utils import (effective_pipeline, find_transform,
                              register_all_modules)

register_all_modules()


def _dataset(root, pipeline, **kw):
    return RepeatAugVideoDataset(ann_file=f'{root}/train.txt',
                                 data_prefix=dict(video=root),
                                 pipeline=pipeline, **kw)


HEAD = [dict(type='VideoInit'),
        dict(type='MMESampleFrames', clip_len=4, frame_interval=2,
             traj_len=2),
        dict(type='VideoDecode', extra_keys=('dense_frame_inds', ))]


@pytest.mark.parametrize('sample_once', [False, True])
def test_each_repeat_gets_its_own_sparse_and_dense_frames(synthetic_root,
                                                          sample_once):
    ds = _dataset(synthetic_root, HEAD, num_repeats=3,
                  sample_once=sample_once)
    np.random.seed(0)
    out = ds[5]
    assert len(out) == 3
    reader = open_video(out[0]['filename'])
    offsets = set()
    for r in out:
        offsets.add(int(r['frame_inds'][0]))
        want = reader.get_batch(r['frame_inds'].tolist())
        for got, ref in zip(r['imgs'], want):
            np.testing.assert_array_equal(got, ref)
        assert r['dense_imgs'].shape == (2, 3, 64, 64, 3)
        dense_ref = reader.get_batch(r['dense_frame_inds'].ravel().tolist())
        np.testing.assert_array_equal(
            r['dense_imgs'].reshape(6, 64, 64, 3), np.stack(dense_ref))
        assert 'video_reader' not in r
    # in-place transforms of one repeat must not touch another
    assert out[0]['imgs'][0] is not out[1]['imgs'][0]
    if sample_once:
        assert len(offsets) == 1
    else:  # 32-frame clips, span 7: offsets 0..25 drawn three times
        assert len(offsets) > 1


def test_mme_pretraining_pipeline_runs_per_repeat(synthetic_root, tmp_path):
    cfg = Config.fromfile('configs/mme/pretrain_tiny_synthetic.py')
    pipeline = effective_pipeline(cfg.train_dataloader.dataset)
    find_transform(pipeline, 'ComputeFlow').update(
        cache_dir=str(tmp_path / 'fc'), data_root=synthetic_root)
    ds = _dataset(synthetic_root, pipeline, num_repeats=2)
    np.random.seed(1)
    a, b = ds[0]
    for s in (a, b):
        assert s['inputs'].shape[-3:] == (8, 64, 64)
        assert s['data_samples'].traj_target.abs().mean() > 0.01
        assert s['data_samples'].hog_target.abs().mean() > 0.001
    assert not np.array_equal(a['data_samples'].mask,
                              b['data_samples'].mask)


def test_dense_sampling_needs_our_decoder(synthetic_root):
    head = HEAD[:2] + [dict(type='DecordDecode')]
    with pytest.raises(ValueError, match='VideoDecode'):
        _dataset(synthetic_root, head)
