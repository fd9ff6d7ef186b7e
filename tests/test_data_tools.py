"""Annotation-list builders, video checks, cache extraction, visualisation.

The tools run in process through their ``main(argv)``."""
import json
import os
import re

import numpy as np
import pytest

from mme_plugin.datasets import AnnotationError, read_video_list
from mme_plugin.datasets.list_builders import (hmdb51_lists, k400_lists,
                                               ssv2_lists, ucf101_lists)
from mme_plugin.datasets.synthetic import render_clip
from mme_plugin.io import write_video
from mme_plugin.datasets.video_check import check_videos

from .conftest import call_tool

# ComputeFlow's arguments by type, not position (CheckedVideoDataset's
# pipeline_edits)
FLOW_EDIT = 'train_dataloader.dataset.pipeline_edits.ComputeFlow'


def test_ucf101_splits(tmp_path):
    d = tmp_path / 'ucfTrainTestlist'
    d.mkdir()
    (d / 'classInd.txt').write_text('1 ApplyEyeMakeup\n2 Archery\n')
    for k in (1, 2, 3):
        (d / f'trainlist0{k}.txt').write_text(
            'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n'
            'Archery/v_Archery_g08_c01.avi 2\n')
        (d / f'testlist0{k}.txt').write_text('Archery/v_Archery_g01_c01.avi\n')
    lists = ucf101_lists(str(d))
    assert len(lists) == 6
    assert lists['ucf101_train_split_2_videos'] == [
        ('ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi', 0),
        ('Archery/v_Archery_g08_c01.avi', 1)]
    assert lists['ucf101_val_split_3_videos'] == [
        ('Archery/v_Archery_g01_c01.avi', 1)]


def test_hmdb51_splits(tmp_path):
    d = tmp_path / 'splits'
    d.mkdir()
    for k in (1, 2, 3):
        (d / f'wave_test_split{k}.txt').write_text(
            'a.avi 1\nb.avi 2\nc.avi 0\n')
        (d / f'brush_hair_test_split{k}.txt').write_text('x.avi 2 \ny.avi 1\n')
    lists = hmdb51_lists(str(d))
    assert lists['hmdb51_train_split_1_videos'] == [('brush_hair/y.avi', 0),
                                                    ('wave/a.avi', 1)]
    assert lists['hmdb51_val_split_3_videos'] == [('brush_hair/x.avi', 0),
                                                  ('wave/b.avi', 1)]


def test_ssv2_labels_from_templates(tmp_path):
    (tmp_path / 'labels.json').write_text(json.dumps({
        'Holding something next to something': '0',
        'Pushing something from left to right': '1'}))
    (tmp_path / 'something-something-v2-train.json').write_text(json.dumps([
        {'id': '7', 'template': 'Pushing [something] from left to right'},
        {'id': '9', 'template': 'Holding [something] next to [something]'}]))
    (tmp_path / 'something-something-v2-validation.json').write_text(
        json.dumps([{'id': '3', 'template': 'Not a template [x]'}]))
    missing = []
    lists = ssv2_lists(str(tmp_path), missing)
    assert lists['sthv2_train_list_videos'] == [('7.webm', 1), ('9.webm', 0)]
    assert lists['sthv2_val_list_videos'] == [] and len(missing) == 1


def test_k400_csv_and_file_names(tmp_path):
    ann = tmp_path / 'ann'
    ann.mkdir()
    header = 'label,youtube_id,time_start,time_end,split\n'
    (ann / 'train.csv').write_text(
        header + 'zumba,abc,10,20,train\nabseiling,def,0,10,train\n'
        'zumba,gone,5,15,train\n')
    (ann / 'validate.csv').write_text(header + 'zumba,ghi,1,11,val\n')
    for split, name in (('train', 'abc_000010_000020.mp4'),
                        ('train', 'sub/def_000000_000010.mkv'),
                        ('val', 'ghi_000001_000011.mp4')):
        p = tmp_path / split / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b'x')
    missing = []
    lists = k400_lists(str(ann), {'train': str(tmp_path / 'train'),
                                  'val': str(tmp_path / 'val')}, missing)
    assert sorted(lists['kinetics400_train_list_videos']) == [
        ('abc_000010_000020.mp4', 1), ('sub/def_000000_000010.mkv', 0)]
    assert lists['kinetics400_val_list_videos'] == [
        ('ghi_000001_000011.mp4', 1)]
    assert missing == ['train: gone']


@pytest.fixture(scope='module')
def mixed_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp('mixed')
    frames, _ = render_clip(0, 24, (64, 64), seed=0)
    write_video(str(root / 'Good' / 'v_good.mp4'), frames)
    write_video(str(root / 'Short' / 'v_short.mp4'), frames[:6])
    (root / 'Bad').mkdir()
    (root / 'Bad' / 'v_bad.mp4').write_bytes(b'\x00' * 2048)
    return root


def test_check_videos_reports_short_and_corrupt(mixed_videos):
    paths = [str(p) for p in sorted(mixed_videos.rglob('*.mp4'))]
    bad = dict(check_videos(paths, min_frames=20, workers=2))
    assert set(os.path.basename(p) for p in bad) == {'v_short.mp4',
                                                     'v_bad.mp4'}
    assert any('too short: 6 frames' in r for r in bad.values())


def test_build_lists_cli_drops_bad_videos(mixed_videos, tmp_path, capsys):
    d = tmp_path / 'splits'
    d.mkdir()
    (d / 'classInd.txt').write_text('1 Bad\n2 Good\n3 Short\n')
    for k in (1, 2, 3):
        (d / f'trainlist0{k}.txt').write_text(
            'Good/v_good.mp4 2\nBad/v_bad.mp4 1\nShort/v_short.mp4 3\n')
        (d / f'testlist0{k}.txt').write_text('Good/v_good.mp4\n')
    out = tmp_path / 'out'
    proc = call_tool('tools/data/build_lists.py', [
        'ucf101', '--split-dir', str(d), '--video-dir', str(mixed_videos),
        '--out', str(out), '--check', '--min-frames', '20', '--workers', '1'],
        capsys)
    assert '2 bad, left out' in proc.out
    assert (out / 'ucf101_train_split_1_videos.txt').read_text() == \
        'Good/v_good.mp4 1\n'
    assert 'v_bad.mp4' in (out / 'bad_videos.txt').read_text()


def test_annotation_errors_name_file_and_line(tmp_path):
    f = tmp_path / 'list.txt'
    f.write_text('a.mp4 1\nb.mp4 one\n')
    with pytest.raises(AnnotationError, match=r'list\.txt:2: label .one.'):
        read_video_list(str(f))
    f.write_text('a.mp4 1\n\nc.mp4\n')
    with pytest.raises(AnnotationError, match=r'list\.txt:3: expected'):
        read_video_list(str(f))
    f.write_text('a.mp4 9\n')
    with pytest.raises(AnnotationError, match=r'outside \[0, 8\)'):
        read_video_list(str(f), num_classes=8)
    f.write_text('my video.mp4 3\n')
    assert read_video_list(str(f)) == [('my video.mp4', 3)]


def test_extract_trajectories_tool_is_resumable(synthetic_root, tmp_path,
                                                capsys):
    args = ['configs/mme/pretrain_tiny_synthetic.py', '--cache-dir',
            str(tmp_path / 'cache'), '--data-root', synthetic_root,
            '--ann-file', f'{synthetic_root}/val.txt', '--workers', '2']
    first = call_tool('tools/data/extract_trajectories.py', args, capsys,
                      fresh=True)  # a forked pool: see call_tool
    assert 'done 8 skipped 0 failed 0' in first.out
    entries = [p.name for p in (tmp_path / 'cache').rglob('*.npy')]
    # the tiny config checks forward-backward: both directions per video
    assert len([e for e in entries if not e.endswith('-bwd.npy')]) == 8
    assert len([e for e in entries if e.endswith('-bwd.npy')]) == 8
    second = call_tool('tools/data/extract_trajectories.py', args, capsys,
                       fresh=True)
    assert 'done 0 skipped 8 failed 0' in second.out


def test_extract_trajectories_reports_failures(tmp_path, capsys):
    root = tmp_path / 'd'
    root.mkdir()
    (root / 'bad.mp4').write_bytes(b'junk')
    (root / 'list.txt').write_text('bad.mp4 0\n')
    proc = call_tool('tools/data/extract_trajectories.py', [
        'configs/mme/pretrain_tiny_synthetic.py', '--cache-dir',
        str(tmp_path / 'c'), '--data-root', str(root), '--ann-file',
        str(root / 'list.txt'), '--workers', '1'], capsys, check=False,
        fresh=True)
    assert proc.code == 1 and 'FAILED' in proc.out
    assert 'bad.mp4' in (tmp_path / 'c' / 'failed.txt').read_text()


def test_visualize_tool_writes_png_and_gif(synthetic_root, tmp_path,
                                          capsys):
    from PIL import Image
    video = f'{synthetic_root}/val/rotate_cw_0000.mp4'
    proc = call_tool('tools/analysis/visualize_mme.py', [
        'configs/mme/pretrain_tiny_synthetic.py', video, '--out',
        str(tmp_path), '--gif'], capsys)
    assert 'rotate_cw_0000.png' in proc.out
    png = Image.open(tmp_path / 'rotate_cw_0000.png')
    assert png.size[0] > 400 and np.asarray(png).std() > 10
    gif = Image.open(tmp_path / 'rotate_cw_0000.gif')
    assert gif.n_frames == 5  # L + 1 dense frames of tube 0


def test_dataloader_benchmark_runs_past_the_end_of_an_epoch(
        synthetic_root, tmp_path, capsys):
    # 24 clips in batches of 12: 2 per epoch; warm-up 1 + 3 timed batches
    proc = call_tool('tools/analysis/bench_dataloader.py', [
        'configs/mme/pretrain_tiny_synthetic.py', '--workers', '0',
        '--batch-size', '12', '--batches', '3', '--warmup', '1',
        '--cfg-options',
        f'train_dataloader.dataset.ann_file={synthetic_root}/train.txt',
        f'train_dataloader.dataset.data_prefix.video={synthetic_root}',
        f'{FLOW_EDIT}.cache_dir={tmp_path}/fc',
        f'{FLOW_EDIT}.data_root={synthetic_root}'], capsys)
    m = re.search(r'([\d.]+) clips/s with 0 workers \(([\d.]+) per worker\)'
                  r', batch 12', proc.out)
    assert m and float(m.group(1)) > 0 and m.group(1) == m.group(2)


def test_dataset_names_missing_videos_and_bad_lines(tmp_path):
    from mme_plugin.registry import DATASETS
    from mme_plugin.utils import register_all_modules
    register_all_modules()
    (tmp_path / 'a.mp4').write_bytes(b'x')
    ann = tmp_path / 'list.txt'
    ann.write_text('a.mp4 0\nb.mp4 1\n')
    with pytest.raises(AnnotationError, match=r'list\.txt: 1 listed videos do'
                       r' not exist.*b\.mp4 \(entry 2\)'):
        DATASETS.build(dict(type='CheckedVideoDataset', ann_file=str(ann),
                            data_prefix=dict(video=str(tmp_path)),
                            pipeline=[]))
    ann.write_text('a.mp4 0\na.mp4 x\n')
    with pytest.raises(AnnotationError, match=r'list\.txt:2: label'):
        DATASETS.build(dict(type='CheckedVideoDataset', ann_file=str(ann),
                            data_prefix=dict(video=str(tmp_path)),
                            pipeline=[]))


def test_mask_overlay_greys_masked_patches_only():
    from mme_plugin.visualization import _mask_overlay
    img = np.full((32, 32, 3), (250, 10, 10), np.uint8)
    mask = np.zeros((2, 2), bool)
    mask[0, 1] = True
    out = _mask_overlay(img, mask, 16)
    np.testing.assert_array_equal(out[:16, :16], img[:16, :16])
    np.testing.assert_array_equal(out[16:], img[16:])
    patch = out[:16, 16:].astype(int)
    assert np.ptp(patch[0, 0]) < 40  # near grey: channels close together
    assert abs(int(patch[0, 0, 0]) - 131) <= 1  # 0.15 * 250 + 0.85 * 110


def test_synthetic_dataset_decodes_identically_when_regenerated(tmp_path):
    # Lossy x264 encoded the same frames differently now and then (one clip
    # in 24, depending on the process state); the built-in dataset is
    # lossless so that every machine and run trains on the same frames.
    from mme_plugin.datasets.synthetic import make_synthetic_dataset
    from mme_plugin.io import open_video

    def frames(root):
        make_synthetic_dataset(str(root), dict(train=3), num_frames=16,
                               size=(64, 64), seed=0)
        out = {}
        for p in sorted((root / 'train').glob('*.mp4')):
            reader = open_video(str(p))
            out[p.name] = np.stack(reader.get_batch(range(16)))
        return out

    runs = [frames(tmp_path / r) for r in 'abc']
    assert len(runs[0]) == 24
    for other in runs[1:]:
        for name, f in runs[0].items():
            np.testing.assert_array_equal(other[name], f, err_msg=name)


def test_check_dataset_reports_every_list_problem_and_goes_on(
        synthetic_root, tmp_path, capsys):
    """Out-of-range labels (all of them), an empty list and a non-UTF-8
    list are each reported; no split's report is lost."""
    train = tmp_path / 'train.txt'
    lines = open(os.path.join(synthetic_root,
                              'train.txt')).read().splitlines()
    lines[0] = lines[0].rsplit(' ', 1)[0] + ' 8'
    lines[5] = lines[5].rsplit(' ', 1)[0] + ' 12'
    train.write_text('\n'.join(lines) + '\n')
    val = tmp_path / 'val.txt'
    val.write_text('\n')
    test = tmp_path / 'test.txt'
    test.write_bytes(b'caf\xe9.mp4 1\n')
    opts = []
    for split, ann in (('train', train), ('val', val), ('test', test)):
        opts += [f'{split}_dataloader.dataset.ann_file={ann}',
                 f'{split}_dataloader.dataset.data_prefix.video='
                 f'{synthetic_root}']
    out = call_tool('tools/analysis/check_dataset.py', [
        'configs/mme/finetune_tiny_synthetic.py', '--workers', '1',
        '--out', str(tmp_path / 'report.tsv'), '--cfg-options', *opts],
        capsys, check=False)
    assert out.code == 1 and 'problems' in out.out
    report = (tmp_path / 'report.tsv').read_text()
    assert 'entry 1\tlabel 8 outside [0, 8)' in report
    assert 'entry 6\tlabel 12 outside [0, 8)' in report
    assert 'val.txt has no entries' in report
    assert 'test.txt:1: not UTF-8' in report


def test_split_names_with_spaces_and_quotes_are_kept_or_reported(tmp_path):
    d = tmp_path / 'hmdb'
    d.mkdir()
    (d / 'wave_test_split1.txt').write_text(
        "Bob's wave (take 2).avi 1 \nplain.avi 2\nbroken line\n\n")
    dropped = []
    lists = hmdb51_lists(str(d), dropped)
    assert lists['hmdb51_train_split_1_videos'] == [
        ("wave/Bob's wave (take 2).avi", 0)]
    assert lists['hmdb51_val_split_1_videos'] == [('wave/plain.avi', 0)]
    assert dropped == ["wave_test_split1.txt:3: 'broken line'"]
    u = tmp_path / 'ucf'
    u.mkdir()
    (u / 'classInd.txt').write_text('1 Apply Eye Makeup\n')
    for k in (1, 2, 3):
        (u / f'trainlist0{k}.txt').write_text(
            'Apply Eye Makeup/v a b.avi 1\nNoSuchClass/x.avi 2\n')
        (u / f'testlist0{k}.txt').write_text('Apply Eye Makeup/v c.avi\n')
    dropped = []
    lists = ucf101_lists(str(u), dropped)
    assert lists['ucf101_train_split_1_videos'] == [
        ('Apply Eye Makeup/v a b.avi', 0)]
    assert lists['ucf101_val_split_2_videos'] == [
        ('Apply Eye Makeup/v c.avi', 0)]
    assert len(dropped) == 3 and 'NoSuchClass/x.avi' in dropped[0]
    # the written list reads back whole (the last field is the label)
    ann = tmp_path / 'list.txt'
    ann.write_text("wave/Bob's wave (take 2).avi 0\n")
    assert read_video_list(str(ann)) == [("wave/Bob's wave (take 2).avi", 0)]
