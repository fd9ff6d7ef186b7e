"""benchmarks/gpu_check.py --tiny: every row present, CPU rows measured."""
import json
import os.path as osp
import sys

from .conftest import REPO


def test_gpu_check_tiny_reports_every_row(tmp_path):
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    import gpu_check
    out = str(tmp_path / 'gpu_check.json')
    report = gpu_check.main(['--tiny', '--out', out, '--steps', '1'])
    with open(out) as f:
        saved = json.load(f)
    assert saved['rows'].keys() == report['rows'].keys()
    rows = saved['rows']
    assert set(gpu_check.row_names(True)) <= set(rows)
    errors = {n: r['status'] for n, r in rows.items()
              if r['status'].startswith('error')}
    assert not errors, errors
    cuda_only = ('pointhog/', 'precision/cuda_')
    for name, row in rows.items():
        if name.startswith(cuda_only):
            assert row['status'] == 'measured' or \
                row['status'] == gpu_check.NO_CUDA, (name, row)
    for name in ('step/bfloat16/b2', 'step/float16/b4', 'deterministic',
                 'precision/cpu_bf16_vs_cpu_fp32',
                 'loader/pretrain_tiny_synthetic'):
        assert rows[name]['status'] == 'measured', (name, rows[name])
    step = rows['step/bfloat16/b4']
    assert step['ms_per_step'] > 0 and 0 < step['pointhog_share'] < 1
    assert step['syncs_per_step'] <= 1  # the deferred checks at most
    assert rows['deterministic']['works'] is True
    assert rows['deterministic']['bitwise_equal'] is True
    assert rows['precision/cpu_bf16_vs_cpu_fp32']['grad_cosine'] > 0.99
    assert rows['loader/pretrain_tiny_synthetic']['clips_per_s'] > 0
