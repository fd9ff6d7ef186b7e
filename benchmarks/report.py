"""Markdown tables from the JSON written by the benchmark scripts.

Example:
    python benchmarks/report.py work_dirs/benchmarks_data.json \
        work_dirs/benchmarks_model.json
"""
import json
import os
import os.path as osp
import sys
from typing import Dict


def write_report(report: Dict, path: str) -> None:
    """Write a benchmark's JSON report (the input of this script)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(report, f, indent=1)
    print(f'wrote {path}')


def data_tables(rep: Dict) -> str:
    """Pipeline throughput and stage breakdown, and flow-choice accuracy."""
    runs = rep['runs']
    stages: list = []
    for r in runs.values():  # union, in pipeline order
        stages += [s for s in r['ms_per_clip'] if s not in stages]
    out = [f"Machine: {rep['machine']}; torch {rep['torch']}, OpenCV "
           f"{rep['opencv']}; pipeline {rep['pipeline']}.", '',
           '| flow | clips/s (1 worker) | ' +
           ' | '.join(f'{s} ms' for s in stages) + ' |',
           '|---|---|' + '---|' * len(stages)]
    for name, r in runs.items():
        cells = ' | '.join(f"{r['ms_per_clip'].get(s, 0):.0f}"
                           for s in stages)
        out.append(f"| {name} | {r['clips_per_s']:.2f} | {cells} |")
    if rep.get('repeats'):
        out += ['', '| pipeline | samples/s (1 worker), num_repeats=2 | '
                'num_repeats=4 |', '|---|---|---|']
        out += [f"| {k} | {v['2']:.2f} | {v['4']:.2f} |"
                for k, v in rep['repeats'].items()]
    out += ['', '| flow | trajectory end-point error vs release Farneback '
            '(px, L=4, 224 px) | error vs true sprite motion (px) |',
            '|---|---|---|']
    for name, e in rep['trajectory_error_px'].items():
        out.append(f"| {name} | {e['vs_release']:.2f} | {e['vs_truth']:.2f} "
                   '|')
    return '\n'.join(out)


def model_table(rep: Dict) -> str:
    """Forward+backward time and peak memory per case."""
    rows = rep['rows']
    base = next((r['seconds'] for r in rows if r['case'] == 'stock'
                 and r['frames'] == 16 and r['size'] == 224), None)
    out = [f"Device: {rep['device']} ({rep['machine']}, {rep['cores']} cores,"
           f" {rep['threads']} torch threads), torch {rep['torch']}, batch "
           f"{rows[0]['batch']}.", '',
           '| case | frames x size | visible / all tokens | fwd+bwd (s) | '
           'vs stock | peak memory (MiB) |', '|---|---|---|---|---|---|']
    for r in rows:
        rel = f"{r['seconds'] / base:.2f}" if base else '-'
        out.append(f"| {r['case']} | {r['frames']} x {r['size']} | "
                   f"{r['visible_tokens']} / {r['tokens']} | "
                   f"{r['seconds']:.2f} | {rel} | {r['peak_mib']:.0f} |")
    return '\n'.join(out)


def scaling_table(rep: Dict) -> str:
    """Pipeline cost over clip length, L and crop size."""
    out = [f"Machine: {rep['machine']}; pipeline {rep['pipeline']}.", '',
           '| sparse frames | L | crop | dense frames | clips/s (1 worker) '
           '| ms per clip | decode ms | flow ms | trajectories ms |',
           '|---|---|---|---|---|---|---|---|---|']
    for r in rep['scaling']:
        ms = r['ms_per_clip']
        out.append(
            f"| {r['clip_len']} | {r['traj_len']} | {r['size']} | "
            f"{r['dense_frames']} | {r['clips_per_s']:.2f} | "
            f"{1000 / r['clips_per_s']:.0f} | "
            f"{ms.get('VideoInit', 0) + ms.get('VideoDecode', 0):.0f} | "
            f"{ms.get('ComputeFlow', 0):.0f} | "
            f"{ms.get('ComputeTrajectories', 0):.0f} |")
    return '\n'.join(out)


def decode_table(rep: Dict) -> str:
    """Decoding one clip's frames by offset, GOP and decoder."""
    out = [f"Machine: {rep['machine']}.", '',
           '| keyframe interval | file KiB | clip offset | decord ms | '
           'PyAV ms |', '|---|---|---|---|---|']
    for r in rep['decode']:
        out.append(f"| {r['gop']} | {r['kib']} | {r['offset']} | "
                   f"{r['decord_ms']:.0f} | {r['pyav_ms']:.0f} |")
    return '\n'.join(out)


def hog_table(rep: Dict) -> str:
    """HOG along the trajectories: worker vs training device."""
    def mib(v):
        return '-' if v is None else f'{v:.0f}'
    runs = rep.get('device_runs') or {
        'PointHOG, PyTorch': dict(ms_per_clip=rep['device_ms_per_clip'],
                                  peak_mib=rep['device_peak_mib'])}
    diff = rep['max_abs_diff']
    diff = ', '.join(f'{k} {v:.1e}' for k, v in diff.items()) \
        if isinstance(diff, dict) else f'{diff:.1e}'
    peak_kind = 'peak device memory' if 'cuda' in str(rep['device']) or \
        'GPU' in str(rep['device']) else 'peak RSS rise'
    return '\n'.join([
        f"Machine: {rep['machine']}; device {rep['device']}; torch "
        f"{rep['torch']}; device batch {rep['batch']} clips.", '',
        f'| where | ms per clip | {peak_kind} per batch (MiB) |',
        '|---|---|---|',
        f"| worker (ComputeHOG, NumPy, 1 thread) | "
        f"{rep['worker_ms_per_clip']:.0f} | - |"] + [
        f"| device: {name} | {r['ms_per_clip']:.0f} | "
        f"{mib(r['peak_mib'])} |" for name, r in runs.items()] + [
        '', f'Largest differences: {diff}.'])


def main() -> None:
    """Entry point."""
    for path in sys.argv[1:]:
        with open(path) as f:
            rep = json.load(f)
        if 'decode' in rep:
            print(decode_table(rep))
        elif 'scaling' in rep:
            print(scaling_table(rep))
        elif 'runs' in rep:
            print(data_tables(rep))
        elif 'worker_ms_per_clip' in rep:
            print(hog_table(rep))
        else:
            print(model_table(rep))
        print()


if __name__ == '__main__':
    main()
