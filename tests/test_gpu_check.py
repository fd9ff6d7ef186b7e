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
    # issue #21's rows: the device placement's targets and step against
    # VideoMAE's on the same batch
    dev = rows['loader/pretrain_tiny_synthetic_device']
    assert dev['status'] == 'measured' and dev['clips_per_s'] > 0
    targets = rows['targets/device/b4']
    assert targets['status'] == 'measured', targets
    assert targets['ms_per_clip'] > 0 and targets['traj_valid'] > 0.3
    assert targets['unusable'] < 0.5
    mme = rows['step/device_targets/bfloat16/b4']
    vmae = rows['step/videomae/bfloat16/b4']
    assert mme['status'] == vmae['status'] == 'measured', (mme, vmae)
    assert 0 < mme['device_targets_share'] < 1
    assert vmae['device_targets_share'] == 0 and vmae['pointhog_share'] == 0
    assert mme['vs_videomae'] == mme['ms_per_step'] / vmae['ms_per_step']
