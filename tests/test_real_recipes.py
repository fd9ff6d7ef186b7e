"""Every shipped config runs for real: real model size, pipeline, hooks,
optimizer constructor and schedulers; train, save, resume; fine-tunes and
their ``_test5x3`` variants through ``tools/test.py`` with their multi-view
test pipelines; linear probes and fine-tunes from a converted pretraining
checkpoint (``tests/recipe_driver.py`` does the runs, in one process).

Slow (about a quarter of an hour on 2 CPU cores, most of it the multi-view
ViT-B tests); ``.ci/run`` runs it.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from .recipe_driver import all_configs

from .conftest import REPO

pytestmark = pytest.mark.slow


def _steps(config):
    name = osp.basename(config)
    if '_test' in name:
        return ['test']
    steps = ['train', 'resume']
    if 'finetune' in name or 'linear' in name:
        steps.insert(0, 'convert')
    if 'finetune' in name:
        steps.append('test')
    return steps


CASES = [(c, s) for c in all_configs() for s in _steps(c)]


# What the runs may take on disk at once (measured peak 3.6 GiB on
# 2026-11-26, README "Tests"); CI machines have limited /tmp.
DISK_BUDGET_GIB = 6.0


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp('recipes')
    env = dict(os.environ, PYTHONWARNINGS='ignore',
               OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '2'))
    proc = subprocess.run([sys.executable, 'tests/recipe_driver.py',
                           str(out)], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=3000)
    path = out / 'results.json'
    assert proc.returncode == 0 and path.is_file(), (
        proc.stdout[-4000:] + proc.stderr[-4000:])
    outcome = json.loads(path.read_text())
    shutil.rmtree(out, ignore_errors=True)  # gigabytes of data and logs
    return outcome


def test_every_config_is_covered():
    names = {osp.basename(c) for c in all_configs()}
    assert {'pretrain_k400.py', 'pretrain_ssv2.py', 'finetune_ssv2.py',
            'linear_hmdb51.py', 'finetune_k400_test5x3.py'} <= names
    assert len(CASES) >= 3 * len(names) - 10


def test_recipe_runs_stay_within_disk_budget(results):
    run = results['_run']
    assert 0 < run['peak_disk_gib'] <= DISK_BUDGET_GIB, run


@pytest.mark.parametrize('config,step', CASES,
                         ids=[f'{osp.basename(c)}-{s}' for c, s in CASES])
def test_real_recipe(results, config, step):
    outcome = results.get(config, {}).get(step, 'not run')
    assert outcome == 'ok', f'{config} {step}:\n{outcome}'
