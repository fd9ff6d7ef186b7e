"""A bad training sample is replaced, logged and counted, not fatal; past a
limit, or for a programming error, the run still stops."""
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest

from mme_plugin.datasets import CheckedVideoDataset, SeededIndex
from mme_plugin.datasets.skip_bad_samples import (BadSampleLimitError,
                                                  replacement,
                                                  skipped_records)
from mme_plugin.datasets.transforms.motion_targets import \
    UnusableTargetsError
from mme_plugin.io import FlowCacheError, VideoReadError
from mme_plugin.utils import register_all_modules

from .conftest import FAST_LOADER, run_tool

register_all_modules()

PIPELINE = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=1, num_clips=1),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs', meta_keys=('img_shape', 'filename'))
]


def _corrupt(path: str) -> str:
    with open(path, 'wb') as f:
        f.write(b'\x00\x00\x00\x18ftypmp42' + bytes(range(256)) * 8)
    return path


def _list(tmp_path, synthetic_root, bad=(), n=6, name='list.txt'):
    """A list of ``n`` synthetic clips (absolute paths) with the corrupt
    clips ``bad`` inserted at their positions; returns its path."""
    with open(osp.join(synthetic_root, 'train.txt')) as f:
        good = [line.split() for line in f if line.strip()][:n]
    lines = [f'{osp.join(synthetic_root, rel)} {label}' for rel, label in good]
    for pos, fname in bad:
        lines.insert(pos, f'{_corrupt(str(tmp_path / fname))} 0')
    path = tmp_path / name
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def _dataset(ann, pipeline=PIPELINE, **kwargs):
    return CheckedVideoDataset(ann, pipeline=list(pipeline),
                               data_prefix=dict(video=''), **kwargs)


def test_replacement_rule_is_deterministic_resume_stable_and_never_itself():
    draws = [replacement(SeededIndex(3, 7, 2), a, 10) for a in (1, 2, 3)]
    # the same (seed, epoch, index, attempt) -> the same draw, in any
    # process (a resumed run, another worker or rank)
    assert draws == [replacement(SeededIndex(3, 7, 2), a, 10)
                     for a in (1, 2, 3)]
    picks = [replacement(SeededIndex(i, 0, e), 1, 5)[0]
             for i in range(5) for e in range(40)]
    assert all(p != i for p, i in zip(picks, np.repeat(range(5), 40)))
    assert set(picks) == set(range(5))  # every other sample can be drawn
    # the epoch and the seed change the draw (not always: 9 choices)
    by_epoch = {replacement(SeededIndex(3, 7, e), 1, 10) for e in range(20)}
    by_seed = {replacement(SeededIndex(3, s, 2), 1, 10) for s in range(20)}
    assert len(by_epoch) > 5 and len(by_seed) > 5


def test_corrupt_clip_is_replaced_the_same_way_in_a_fresh_process(
        synthetic_root, tmp_path):
    ann = _list(tmp_path, synthetic_root, bad=[(2, 'bad.mp4')])
    ds = _dataset(ann)
    idx = SeededIndex(2, 5, 3)
    out = ds[idx]
    skipped = out['data_samples'].metainfo['skipped_samples']
    assert [s['file'] for s in skipped] == [str(tmp_path / 'bad.mp4')]
    assert skipped[0]['error'].startswith('VideoReadError')
    # known answer: the replacement drawn from (seed 5, epoch 3, index 2)
    j, _ = replacement(idx, 1, len(ds))
    assert out['data_samples'].metainfo['filename'] == \
        ds.get_data_info(j)['filename']
    # a fresh dataset (a resumed run, another worker) gives the same sample
    again = _dataset(ann)[SeededIndex(2, 5, 3)]
    assert out['inputs'].equal(again['inputs'])
    # good samples are untouched: no skip record, same as without skipping
    good = ds[SeededIndex(1, 5, 3)]
    plain = _dataset(ann, skip_bad_samples=False)[SeededIndex(1, 5, 3)]
    assert 'skipped_samples' not in good['data_samples'].metainfo
    assert good['inputs'].equal(plain['inputs'])
    records, limit = skipped_records(
        dict(inputs=[out['inputs'], good['inputs']],
             data_samples=[out['data_samples'], good['data_samples']]))
    assert records == skipped and limit == 1


def test_repeated_augmentation_dataset_skips_a_bad_video(synthetic_root,
                                                         tmp_path):
    from mme_plugin.datasets import RepeatAugVideoDataset
    ann = _list(tmp_path, synthetic_root, bad=[(0, 'bad.mp4')])
    ds = RepeatAugVideoDataset(ann, pipeline=list(PIPELINE), num_repeats=2,
                               data_prefix=dict(video=''))
    out = ds[SeededIndex(0, 1, 0)]
    assert len(out) == 2  # both copies come from the replacement video
    metas = [o['data_samples'].metainfo for o in out]
    assert metas[0]['filename'] == metas[1]['filename'] != str(
        tmp_path / 'bad.mp4')
    # counted once, on the first copy
    assert metas[0]['skipped_samples'][0]['file'] == str(tmp_path / 'bad.mp4')
    assert 'skipped_samples' not in metas[1]


class _Fail:
    """A pipeline step that raises ``error`` on the clips named ``names``."""

    def __init__(self, error, names=('',)):
        self.error, self.names = error, names

    def __call__(self, results):
        if any(n in results['filename'] for n in self.names):
            raise self.error(f"{results['filename']}: broken on purpose")
        return results


@pytest.mark.parametrize('error', [VideoReadError, FlowCacheError,
                                   UnusableTargetsError])
def test_each_data_error_is_skipped(synthetic_root, tmp_path, error):
    ann = _list(tmp_path, synthetic_root)
    name = _dataset(ann).get_data_info(1)['filename']
    ds = _dataset(ann, PIPELINE[:3] + [_Fail(error, [name])] + PIPELINE[3:])
    out = ds[SeededIndex(1, 0, 0)]
    assert out['data_samples'].metainfo['skipped_samples'][0]['file'] == name


@pytest.mark.parametrize('error', [KeyError, TypeError, ValueError])
def test_a_programming_error_is_not_skipped(synthetic_root, tmp_path, error):
    ann = _list(tmp_path, synthetic_root)
    ds = _dataset(ann, PIPELINE[:3] + [_Fail(error)] + PIPELINE[3:])
    with pytest.raises(error, match='broken on purpose'):
        ds[SeededIndex(0, 0, 0)]
    # a misconfigured pipeline (Resize before decoding): KeyError, not skipped
    wrong = _dataset(ann, [PIPELINE[0], PIPELINE[3]] + PIPELINE[1:3])
    with pytest.raises(KeyError):
        wrong[SeededIndex(0, 0, 0)]


def test_past_the_limit_the_run_stops_naming_the_files(synthetic_root,
                                                       tmp_path):
    ann = _list(tmp_path, synthetic_root,
                bad=[(0, 'bad_a.mp4'), (3, 'bad_b.mp4')])
    ds = _dataset(ann, skip_bad_samples=dict(max_skipped=1))
    # a seed whose replacements of bad_a (index 0) in epochs 0 and 1 are
    # not bad_b (index 3)
    seed = next(s for s in range(100) if all(
        replacement(SeededIndex(0, s, e), 1, len(ds))[0] != 3
        for e in (0, 1)))
    assert 'skipped_samples' in ds[SeededIndex(0, seed, 0)][
        'data_samples'].metainfo
    with pytest.raises(BadSampleLimitError, match='bad_a.mp4.*bad_b.mp4'):
        ds[SeededIndex(3, seed, 0)]
    # the count is per epoch: the next epoch starts again
    assert 'skipped_samples' in ds[SeededIndex(0, seed, 1)][
        'data_samples'].metainfo
    # default limit: 0.1 % of the samples, at least 1
    assert _dataset(ann)._skipper.policy.limit(len(ds)) == 1
    assert _dataset(ann)._skipper.policy.limit(240_000) == 240


def test_a_data_wide_failure_stops_after_max_attempts(synthetic_root,
                                                      tmp_path):
    ann = _list(tmp_path, synthetic_root)
    ds = _dataset(ann, PIPELINE[:3] + [_Fail(VideoReadError)] + PIPELINE[3:],
                  skip_bad_samples=dict(max_skipped=100, max_attempts=3))
    with pytest.raises(BadSampleLimitError,
                       match='sample 0 and its 3 replacements all failed'):
        ds[SeededIndex(0, 0, 0)]


def test_test_and_val_datasets_fail_loudly_unless_asked(synthetic_root,
                                                        tmp_path):
    ann = _list(tmp_path, synthetic_root, bad=[(0, 'bad.mp4')])
    with pytest.raises(VideoReadError, match='bad.mp4'):
        _dataset(ann, test_mode=True)[0]
    out = _dataset(ann, test_mode=True, skip_bad_samples=True)[0]
    assert 'skipped_samples' in out['data_samples'].metainfo


def _runner(messages):
    logger = SimpleNamespace(warning=messages.append)
    return SimpleNamespace(epoch=0, logger=logger)


def _batch(*files, limit=2):
    from mmaction.structures import ActionDataSample
    samples = []
    for f in files:
        s = ActionDataSample()
        if f:
            s.set_metainfo(dict(skipped_samples=[
                dict(file=f, error='VideoReadError: x')], skip_limit=limit))
        samples.append(s)
    return dict(inputs=[None] * len(files), data_samples=samples)


def test_hook_logs_each_epochs_skips_and_stops_past_the_limit():
    from mme_plugin.engine import SkippedSamplesHook
    hook, messages = SkippedSamplesHook(), []
    runner = _runner(messages)
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, _batch('a.mp4', None))
    hook.after_train_iter(runner, 1, _batch(None, 'a.mp4'))
    hook.after_train_epoch(runner)
    assert len(messages) == 1
    assert 'epoch 1: 2 bad samples skipped' in messages[0]
    assert 'a.mp4 (VideoReadError: x) x2' in messages[0]
    runner.epoch = 1
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, _batch(None))
    hook.after_train_epoch(runner)
    assert len(messages) == 1  # nothing skipped, nothing logged
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, _batch('a.mp4', 'b.mp4'))
    with pytest.raises(BadSampleLimitError, match='a.mp4.*b.mp4'):
        hook.after_train_iter(runner, 1, _batch('c.mp4'))


def test_the_limit_counts_bad_files_not_reads(synthetic_root, tmp_path):
    """One bad clip read twice in an epoch (a distributed sampler's padded
    repeat, repeated augmentation) is one bad file: with a limit of 1 it
    does not stop the run; a second bad file does."""
    from mme_plugin.engine import SkippedSamplesHook
    hook, messages = SkippedSamplesHook(), []
    runner = _runner(messages)
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, _batch('a.mp4', limit=1))
    hook.after_train_iter(runner, 1, _batch('a.mp4', limit=1))
    hook.after_train_epoch(runner)
    assert '2 bad samples skipped and replaced (1 bad file; limit 1 per ' \
        'epoch): a.mp4 (VideoReadError: x) x2' in messages[0]
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, _batch('a.mp4', 'a.mp4', limit=1))
    with pytest.raises(BadSampleLimitError,
                       match='2 bad files in one epoch .*a.mp4.*b.mp4'):
        hook.after_train_iter(runner, 1, _batch('b.mp4', limit=1))
    # the dataset's own per-process count too
    ann = _list(tmp_path, synthetic_root, bad=[(0, 'bad_a.mp4'),
                                               (3, 'bad_b.mp4')])
    ds = _dataset(ann, skip_bad_samples=dict(max_skipped=1))
    seed = next(s for s in range(100)
                if replacement(SeededIndex(0, s, 0), 1, len(ds))[0] != 3)
    for _ in range(3):  # the same bad clip, three reads in epoch 0
        assert 'skipped_samples' in ds[SeededIndex(0, seed, 0)][
            'data_samples'].metainfo
    with pytest.raises(BadSampleLimitError, match='2 bad files'):
        ds[SeededIndex(3, seed, 0)]


def test_two_process_run_skips_a_corrupt_clip_and_finishes(synthetic_root,
                                                           tmp_path):
    """Done-when: 2 gloo ranks (MME_ALLOW_CPU_DIST=1, tests/conftest.py),
    a dataloader worker per rank, a corrupt clip in the list: skipped,
    logged with its file name, exit 0. The clip is read by both ranks: 25
    lines on 2 ranks, unshuffled, so the sampler pads rank 1's share with
    index 0, the corrupt clip; the limit of 1 counts files, not reads (it
    counted reads, and a random shuffle that padded with the corrupt clip
    ended the run, 1 time in 25)."""
    ann = _list(tmp_path, synthetic_root, bad=[(0, 'corrupt_clip.mp4')],
                n=24)
    work = str(tmp_path / 'work')
    proc = run_tool(
        ['bash', 'tools/dist_train.sh', 'configs/recognition/'
         'tiny-vit_synthetic.py', '2', '--work-dir', work, '--cfg-options',
         *FAST_LOADER, 'train_dataloader.num_workers=1',
         f'train_dataloader.dataset.ann_file={ann}',
         'train_dataloader.dataset.data_prefix.video=',
         'train_dataloader.sampler.shuffle=False',
         'train_dataloader.batch_size=13', 'train_cfg.max_epochs=1',
         '--no-validate'], env_extra={'PORT': '29713'})
    log = proc.stdout + proc.stderr
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    bad = str(tmp_path / 'corrupt_clip.mp4')
    assert f'epoch 1: 2 bad samples skipped and replaced (1 bad file; limit ' \
        f'1 per epoch): {bad} (VideoReadError' in log, log[-3000:]
