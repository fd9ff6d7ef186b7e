"""tools/train.py, tools/test.py and tools/dist_train.sh on a stock recognizer.

A tiny Recognizer3D + mmaction VisionTransformer trains on generated mp4
files, saves, resumes, is evaluated (in process, through the tools'
``main(argv)``), and trains on 2 gloo processes (a launch).
"""
import os.path as osp
import re

from .conftest import (FAST_LOADER, call_tool, data_options, read_scalars,
                       run_logs, run_tool)

CFG = 'configs/recognition/tiny-vit_synthetic.py'


def test_train_resume_and_test(synthetic_root, tmp_path, capsys):
    work = str(tmp_path / 'work')

    def base(name):  # own experiment (logger, visualizer) per run
        return [CFG, '--work-dir', work, '--cfg-options', *FAST_LOADER,
                *data_options(synthetic_root),
                'train_dataloader.batch_size=12', f'experiment_name={name}']
    # 24 train clips / 12 = 2 iterations per epoch.
    call_tool('tools/train.py', base('first') + ['train_cfg.max_epochs=1'],
              capsys)
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    assert 'resumed epoch' not in run_logs(work)
    call_tool('tools/train.py', base('resumed') + [
        'train_cfg.max_epochs=2', 'resume=True'], capsys)
    assert 'resumed epoch: 1' in run_logs(work)
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))
    iters = [r['iter'] for r in read_scalars(work) if 'loss' in r]
    assert iters and max(iters) == 4, iters  # continued, not restarted
    out = call_tool('tools/test.py', [
        CFG, osp.join(work, 'epoch_2.pth'), '--work-dir', work,
        '--cfg-options', *FAST_LOADER, *data_options(synthetic_root),
        'experiment_name=test'], capsys).out
    m = re.search(r'Test metrics:\n  acc/top1: ([0-9.]+)', out)
    assert m and 0.0 <= float(m.group(1)) <= 1.0, out[-2000:]


def test_dist_train_two_processes_and_resume(synthetic_root, tmp_path):
    work = str(tmp_path / 'dist')
    base = ['bash', 'tools/dist_train.sh', CFG, '2', '--work-dir', work,
            '--cfg-options', *FAST_LOADER, *data_options(synthetic_root)]
    proc = run_tool(base + ['train_cfg.max_epochs=1'],
                    env_extra={'PORT': '29681'})
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    proc = run_tool(base + ['train_cfg.max_epochs=2', '--resume'],
                    env_extra={'PORT': '29682'})
    assert 'resumed epoch: 1' in (proc.stdout + proc.stderr)
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))


def test_no_validate_accepts_val_options(tmp_path):
    """--no-validate with options that still name the val loader (a shared
    option list): the options apply, then validation is off; no mmengine
    TypeError about a None base."""
    import sys
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(
        osp.abspath(__file__))), 'tools'))
    import train as train_tool  # tools/train.py
    cfg = train_tool.build_config(train_tool.parse_args([
        'configs/recognition/tiny-vit_synthetic.py', '--work-dir',
        str(tmp_path), '--no-validate', '--cfg-options',
        'val_dataloader.dataset.ann_file=x.txt',
        'train_dataloader.dataset.ann_file=y.txt']))
    assert cfg.val_dataloader is None and cfg.val_cfg is None
    assert cfg.val_evaluator is None
    assert cfg.train_dataloader.dataset.ann_file == 'y.txt'
