"""How the benchmark runs the tools (one subprocess each, logged to a file)
and reads what they wrote."""
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from glob import glob
from typing import Dict, List, Optional

from .methods import REPO

__all__ = [
    'CPU_OMP_WAIT_POLICY', 'BenchmarkRun', 'parse_accuracy', 'checkpoints',
    'scalars'
]

#: OpenMP wait policy of every tool run (unless the caller set one).
CPU_OMP_WAIT_POLICY = 'PASSIVE'


class BenchmarkRun:
    """Runs the tools as subprocesses, logging each to a file.

    Not mmengine's ``Runner``: one benchmark run, many tool runs.

    Args:
        work_dir: Where the logs (``logs/<name>.log``) and work dirs go.
        data_root: The generated dataset.
        pretrain_options: ``KEY=VALUE`` overrides of every pretraining
            (``--cfg-options``).
    """

    def __init__(self, work_dir: str, data_root: str,
                 pretrain_options: Optional[List[str]] = None) -> None:
        self.work_dir = work_dir
        self.data_root = data_root
        self.pretrain_options = list(pretrain_options or [])
        self.start = time.time()

    def data_opts(self, test: bool = False) -> List[str]:
        """Point a config at the dataset (the val list is the test list).

        Args:
            test: The test loader instead of the train and val loaders.

        Returns:
            list: ``--cfg-options`` items.
        """
        splits = ('test', ) if test else ('train', 'val')
        out = []
        for split in splits:
            ann = 'train' if split == 'train' else 'val'
            out += [
                f'{split}_dataloader.dataset.ann_file='
                f'{self.data_root}/{ann}.txt',
                f'{split}_dataloader.dataset.data_prefix.video='
                f'{self.data_root}'
            ]
        return out

    def flow_opts(self, config: str) -> List[str]:
        """Keep the pretraining flow cache under the data root (for a
        pipeline that has a ``ComputeFlow``, found by type).

        Args:
            config: A pretraining config (repo-relative).

        Returns:
            list: ``--cfg-options`` items (none without a ``ComputeFlow``).
        """
        from mmengine.config import Config

        from mme_plugin.utils import flow_cache_options
        return [f'{k}={v}' for k, v in flow_cache_options(Config.fromfile(
            osp.join(REPO, config)).train_dataloader.dataset,
            self.data_root).items()]

    def run(self, name: str, args: List[str]) -> str:
        """Run a Python command from the repo root.

        Args:
            name: The log's name (``logs/<name>.log``).
            args: The arguments after the interpreter.

        Returns:
            str: Its output (stdout and stderr).

        Raises:
            SystemExit: It failed (names the step, exit status and log).
        """
        log = osp.join(self.work_dir, 'logs', f'{name}.log')
        os.makedirs(osp.dirname(log), exist_ok=True)
        t0 = time.time()
        print(f'[{time.time() - self.start:6.0f}s] {name} ...', flush=True)
        env = dict(os.environ, PYTHONWARNINGS='ignore')
        # Idle OpenMP threads sleep instead of spinning, so the data
        # loader's workers get the cores (same results bit for bit; the MME
        # pretraining is 1.5x faster on 2 cores; benchmarks/cpu_threads.py).
        env.setdefault('OMP_WAIT_POLICY', CPU_OMP_WAIT_POLICY)
        with open(log, 'w') as f:
            proc = subprocess.run([sys.executable, *args], cwd=REPO,
                                  stdout=f, stderr=subprocess.STDOUT,
                                  env=env)
        with open(log) as f:
            out = f.read()
        if proc.returncode != 0:
            print(out[-4000:])
            raise SystemExit(f'{name} failed ({proc.returncode}); log: {log}')
        print(f'[{time.time() - self.start:6.0f}s] {name} done in '
              f'{time.time() - t0:.0f}s', flush=True)
        return out


def parse_accuracy(output: str) -> Dict[str, float]:
    """The accuracies ``tools/test.py`` printed last.

    Args:
        output: Its output.

    Returns:
        dict: ``{'acc/top1': ..., ...}`` (top1, top5, mean1 as found).
    """
    return {k: float(v) for k, v in re.findall(
        r'(acc/(?:top1|top5|mean1)): ([0-9.]+)', output.split(
            'Test metrics:')[-1])}


def checkpoints(work: str) -> List[str]:
    """The ``epoch_*.pth`` files of a work dir, by epoch.

    Args:
        work: A work dir.

    Returns:
        list: Paths, oldest epoch first.

    Raises:
        SystemExit: There is none.
    """
    ckpts = glob(osp.join(work, 'epoch_*.pth'))
    if not ckpts:
        raise SystemExit(f'no checkpoint in {work}')
    return sorted(ckpts, key=lambda p: int(re.findall(r'epoch_(\d+)', p)[0]))


def scalars(work: str) -> List[Dict]:
    """The records of the newest ``scalars.json`` of a work dir.

    Args:
        work: A work dir.

    Returns:
        list: One dict per logged line (empty without a log).
    """
    files = sorted(glob(osp.join(work, '*', 'vis_data', 'scalars.json')))
    if not files:
        return []
    with open(files[-1]) as f:
        return [json.loads(line) for line in f]
