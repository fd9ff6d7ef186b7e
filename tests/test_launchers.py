"""Launchers as users call them (shell scripts: subprocesses), and
annotation lists that are missing, empty or not UTF-8 (``tools/train.py``
in process)."""
import os
import os.path as osp
import stat
import subprocess

import pytest

from mme_plugin.datasets import AnnotationError, read_video_list

from .conftest import FAST_LOADER, REPO, call_tool, data_options

VENV_PY = osp.join(REPO, '.venv', 'bin', 'python')


def _bare_env(**extra):
    """An environment whose PATH has no project Python (no activated venv)
    and no PYTHON variable."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHON', 'VIRTUAL_ENV', 'PYTHONPATH')}
    env['PATH'] = '/usr/bin:/bin'
    env.update(PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', **extra)
    return env


@pytest.mark.skipif(not osp.isfile(VENV_PY),
                    reason='needs the project .venv (tools/setup_env.sh)')
def test_dist_train_uses_the_project_env_and_a_config_path_with_a_space(
        synthetic_root, tmp_path):
    folder = tmp_path / 'my configs'
    folder.mkdir()
    cfg = folder / 'tiny copy.py'
    cfg.write_text("_base_ = ['" + osp.join(
        REPO, 'configs/recognition/tiny-vit_synthetic.py') + "']\n")
    work = tmp_path / 'work dir'
    out = subprocess.run(
        ['bash', 'tools/dist_train.sh', str(cfg), '1', '--work-dir',
         str(work), '--cfg-options', *FAST_LOADER,
         *data_options(synthetic_root), 'train_cfg.max_epochs=1'],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=_bare_env(PORT='29693'))
    assert out.returncode == 0, out.stderr[-3000:]
    assert (work / 'epoch_1.pth').is_file()


def test_launcher_without_a_usable_python_names_the_fix(tmp_path):
    out = subprocess.run(
        ['bash', 'tools/dist_train.sh', 'configs/mme/pretrain_k400.py', '1'],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env=_bare_env(PYTHON='/bin/false'))
    assert out.returncode != 0
    assert 'cannot import torch' in out.stderr
    assert 'tools/setup_env.sh' in out.stderr


@pytest.mark.skipif(not osp.isfile(VENV_PY),
                    reason='needs the project .venv (tools/setup_env.sh)')
def test_slurm_train_passes_each_argument_whole(tmp_path):
    fake = tmp_path / 'bin'
    fake.mkdir()
    srun = fake / 'srun'
    srun.write_text('#!/bin/sh\nfor a in "$@"; do echo "ARG[$a]"; done\n')
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    env = _bare_env()
    env['PATH'] = f'{fake}:/usr/bin:/bin'
    out = subprocess.run(
        ['bash', 'tools/slurm_train.sh', 'part', 'job', 'my dir/a b.py',
         '--work-dir', 'w d', '--cfg-options', 'x=1'],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    args = [line[4:-1] for line in out.stdout.splitlines()
            if line.startswith('ARG[')]
    assert osp.realpath(args[args.index('-u') - 1]) == osp.realpath(VENV_PY)
    assert 'my dir/a b.py' in args and 'w d' in args
    assert args[-3:] == ['w d', '--cfg-options', 'x=1']


def test_missing_list_of_a_real_recipe_names_the_list_and_the_builder(
        tmp_path, capsys):
    out = call_tool('tools/train.py', [
        'configs/mme/pretrain_k400.py', '--work-dir', str(tmp_path / 'w')],
        capsys, check=False)
    assert out.code != 0
    message = f'{out.code}\n{out.out}'
    assert ('annotation list data/kinetics400/kinetics400_train_list_'
            'videos.txt does not exist') in message
    assert 'python tools/data/build_lists.py k400' in message


@pytest.mark.parametrize('path,sub', [
    ('data/sthv2/sthv2_train_list_videos.txt', 'ssv2'),
    ('data/ucf101/ucf101_train_split_1_videos.txt', 'ucf101'),
    ('data/hmdb51/hmdb51_val_split_1_videos.txt', 'hmdb51')])
def test_missing_list_hint_per_dataset(path, sub):
    with pytest.raises(AnnotationError,
                       match=f'build_lists.py {sub} .*--out'):
        read_video_list(path)


def test_empty_list_is_an_error_naming_it(tmp_path):
    ann = tmp_path / 'empty.txt'
    ann.write_text('\n\n')
    with pytest.raises(AnnotationError, match=r'empty\.txt has no entries'):
        read_video_list(str(ann))


def test_latin1_list_names_the_file_and_the_line(tmp_path):
    ann = tmp_path / 'list.txt'
    ann.write_bytes('a.mp4 1\ncaf\xe9.mp4 2\n'.encode('latin-1'))
    with pytest.raises(AnnotationError, match=r'list\.txt:2: not UTF-8'):
        read_video_list(str(ann))


def test_comma_in_a_path_option_is_a_clear_error(tmp_path, capsys):
    out = call_tool('tools/train.py', [
        'configs/mme/pretrain_k400.py', '--work-dir', str(tmp_path / 'w'),
        '--cfg-options', 'train_dataloader.dataset.ann_file=data/a,b.txt'],
        capsys, check=False)
    assert out.code != 0
    assert "became the list ['data/a', 'b.txt']" in f'{out.code}\n{out.out}'
    assert not (tmp_path / 'w').exists()
