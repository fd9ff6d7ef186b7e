"""Every shipped config runs for real: real model size, pipeline, hooks,
optimizer constructor and schedulers; train and save, and resume (one ViT-B
config per kind, every tiny one); fine-tunes and their ``_test5x3``
variants through ``tools/test.py``, their multi-view test pipelines making
every view; linear probes and fine-tunes from a converted pretraining
checkpoint (``tests/recipe_driver.py`` does the runs, two processes at once,
one per half of its :func:`shards`; its docstring says what is run how).

Slow (minutes on 2 CPU cores); ``.ci/run`` runs it.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

import pytest

from .recipe_driver import (FULL_REPEATS, FULL_VIEW_TESTS, RESUMED,
                            all_configs, disk_used, shards, steps_of)

from .conftest import REPO

pytestmark = pytest.mark.slow


CASES = [(c, s) for c in all_configs() for s in steps_of(c)]
#: Views of the shipped test pipelines (clips x 3 crops): the release's
#: 7x3 (K400), 2x3 (SSv2) and 10x3 (UCF101, HMDB51), mmaction's 5x3.
TEST_VIEWS = {'finetune_k400.py': 21, 'finetune_ssv2.py': 6,
              'finetune_ucf101.py': 30, 'finetune_hmdb51.py': 30,
              'finetune_k400_test5x3.py': 15,
              'finetune_ucf101_test5x3.py': 15,
              'finetune_hmdb51_test5x3.py': 15}


# What the runs may take on disk at once, both halves together (measured
# peak 6.2 GiB on 2026-12-05, 3.6 GiB per half; one process: 3.6 GiB on
# 2026-11-26; README "Tests"); CI machines have limited /tmp.
DISK_BUDGET_GIB = 8.0


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    """Both halves of :func:`shards` at once, one driver process each (the
    runs are mostly single-threaded Python; one process took 452-660 s),
    merged; ``_run`` has the wall time and the peak disk use of both
    together (sampled every second)."""
    out = tmp_path_factory.mktemp('recipes')
    env = dict(os.environ, PYTHONWARNINGS='ignore',
               OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    t0 = time.time()
    procs: list = []
    peak = 0
    try:
        for i, part in enumerate(shards(all_configs())):
            log = open(out / f'shard{i}.log', 'w')
            try:
                proc = subprocess.Popen(
                    [sys.executable, 'tests/recipe_driver.py',
                     str(out / f'shard{i}'), *part], cwd=REPO, stdout=log,
                    stderr=subprocess.STDOUT, env=env)
            except BaseException:
                log.close()
                raise
            procs.append((proc, log))
        # below pytest-timeout's 3000 s, so the children are stopped here
        while any(p.poll() is None for p, _ in procs):
            peak = max(peak, disk_used(str(out)))
            failed = [i for i, (p, _) in enumerate(procs)
                      if p.poll() not in (None, 0)]
            assert not failed, (out / f'shard{failed[0]}.log').read_text(
            )[-6000:]
            assert time.time() - t0 < 2700, 'recipe runs took over 2700 s'
            time.sleep(1.0)
    finally:  # never leave a driver running (CPU, gigabytes under /tmp)
        for p, log in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            log.close()
    outcome = {}
    for i, (proc, _) in enumerate(procs):
        path = out / f'shard{i}' / 'results.json'
        text = (out / f'shard{i}.log').read_text()
        assert proc.returncode == 0 and path.is_file(), text[-6000:]
        part = json.loads(path.read_text())
        outcome.setdefault('_shards', []).append(part.pop('_run'))
        outcome.update(part)
    outcome['_run'] = dict(seconds=round(time.time() - t0),
                           peak_disk_gib=round(peak / 2**30, 2))
    shutil.rmtree(out, ignore_errors=True)  # gigabytes of data and logs
    return outcome


def test_every_config_is_covered():
    names = {osp.basename(c) for c in all_configs()}
    assert {'pretrain_k400.py', 'pretrain_ssv2.py', 'finetune_ssv2.py',
            'linear_hmdb51.py', 'finetune_k400_test5x3.py'} <= names
    assert set(RESUMED) | set(FULL_VIEW_TESTS) | set(TEST_VIEWS) | \
        set(FULL_REPEATS) <= names
    # the resumed fine-tune trains with its repeats in full
    assert set(FULL_REPEATS) & set(RESUMED)
    steps = {osp.basename(c): steps_of(c) for c in all_configs()}
    for name, s in steps.items():  # every config trains or is tested
        assert ('train' in s) != (s == ['test']), (name, s)
        assert ('test' in s) == ('finetune' in name), (name, s)
        assert ('convert' in s) == (('finetune' in name or 'linear' in name)
                                    and '_test' not in name), (name, s)
    # each kind of ViT-B recipe resumes once; every tiny config resumes
    for kind in ('pretrain', 'finetune', 'linear'):
        assert [n for n in RESUMED if n.startswith(kind)], kind
    assert all('resume' in s for n, s in steps.items()
               if 'tiny_synthetic' in n)


def test_test_pipelines_make_every_view_and_the_model_sees_them(results):
    """Each fine-tune's test pipeline made all its views of the video; the
    model ran on all of them (FULL_VIEW_TESTS) or on one clip's crops."""
    views = {osp.basename(c): r.get('test_views') for c, r in results.items()
             if not c.startswith('_')}
    for name, n in TEST_VIEWS.items():
        full = name in FULL_VIEW_TESTS
        assert views[name] == [n, n if full else 3], (name, views[name])


def test_recipe_runs_stay_within_disk_budget(results):
    run = results['_run']
    assert 0 < run['peak_disk_gib'] <= DISK_BUDGET_GIB, run


@pytest.mark.parametrize('config,step', CASES,
                         ids=[f'{osp.basename(c)}-{s}' for c, s in CASES])
def test_real_recipe(results, config, step):
    outcome = results.get(config, {}).get(step, 'not run')
    assert outcome == 'ok', f'{config} {step}:\n{outcome}'
