"""Shared fixtures: a tiny generated synthetic dataset and tool runners."""
import json
import os
import os.path as osp
import subprocess
import sys
from glob import glob
from typing import List

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import mme_plugin  # noqa: E402,F401

# The distributed tests run 2 gloo processes on this CPU-only machine: opt in
# (mme_plugin/utils/cuda_setup.py refuses a CPU launch otherwise; subprocess
# environments copy this). tests/test_dist_guard.py removes it to test the
# refusal.
os.environ.setdefault('MME_ALLOW_CPU_DIST', '1')

# Single-process data loading: fast and deterministic tests on 2 cores.
FAST_LOADER = [
    f'{split}_dataloader.{key}'
    for split in ('train', 'val', 'test')
    for key in ('num_workers=0', 'persistent_workers=False')
]


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> str:
    """A synthetic motion dataset with 3 train / 1 val clips per class."""
    from mme_plugin.datasets.synthetic import make_synthetic_dataset
    root = str(tmp_path_factory.mktemp('synthetic'))
    make_synthetic_dataset(root, dict(train=3, val=1), num_frames=32,
                           size=(64, 64), seed=0)
    return root


def data_options(root: str) -> List[str]:
    """``--cfg-options`` that point every split of a config at ``root``."""
    opts = []
    for split, ann in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        opts += [
            f'{split}_dataloader.dataset.ann_file={root}/{ann}.txt',
            f'{split}_dataloader.dataset.data_prefix.video={root}'
        ]
    return opts


def run_tool(args: List[str], timeout: int = 600,
             env_extra: dict = None) -> subprocess.CompletedProcess:
    """Run a command from the repo root; fail with its output if it fails."""
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1',
               PYTHON=sys.executable, **(env_extra or {}))
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}')
    return proc


def read_scalars(work_dir: str) -> List[dict]:
    """The records of the newest ``scalars.json`` under ``work_dir``."""
    logs = sorted(glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    assert logs, f'no scalars.json under {work_dir}'
    with open(logs[-1]) as f:
        return [json.loads(line) for line in f]


@pytest.fixture()
def video(tmp_path) -> str:
    """A 20-frame 64 x 64 mp4 of a texture panning 1 px/frame, under
    ``tmp_path / 'data'``."""
    import numpy as np

    from mme_plugin.datasets.synthetic import random_texture
    from mme_plugin.io import write_video
    rng = np.random.default_rng(2)
    tex = random_texture(rng, 64, 128)
    frames = np.stack([tex[:, 40 - t:104 - t] for t in range(20)])
    path = str(tmp_path / 'data' / 'a.mp4')
    write_video(path, frames)
    return path


def decoded(video: str) -> dict:
    """``video`` through VideoInit, MMESampleFrames(4, 4, L=4, test mode)
    and VideoDecode: sparse and dense frames."""
    from mme_plugin.datasets.transforms import (MMESampleFrames,
                                                VideoDecode, VideoInit)
    res = VideoInit()(dict(filename=video))
    res = MMESampleFrames(4, 4, traj_len=4, test_mode=True)(res)
    return VideoDecode(extra_keys=('dense_frame_inds', ))(res)
