"""Run every shipped config for real, in one process (used by
``tests/test_real_recipes.py``; also runnable by hand).

For each config under ``configs/mme/``, at its real size (model, pipeline,
hooks, optimizer constructor, schedulers): train one iteration (batch 1, one
video) through ``tools/train.py``'s code and save, then ``--resume`` from
the work dir and train a second iteration; fine-tune configs are also tested
through ``tools/test.py``'s code with their multi-view test pipelines (the
``_test5x3`` variants test their parent's checkpoint); linear probes and
fine-tunes start from a pretraining checkpoint converted with
``tools/convert/mme_to_recognizer.py``. The videos are generated and shaped
like the datasets the configs target: Kinetics-like 340x256 H.264 mp4,
Something-Something-like 426x240 VP9 webm at 12 fps, UCF101/HMDB51-like
320x240 MPEG-4 avi. Only data paths, batch size 1, in-process loading and
the epoch count are overridden.

One process runs all configs (the imports cost more than a tiny step);
each runner gets its own experiment name and work dir. A failure of one
step is recorded with its traceback and the next config goes on. Every
checkpoint is deleted as soon as the last config that reads it is done
(kept, the ViT-B checkpoints took 24 GB and filled CI's disk); the peak
disk use, sampled every second, is recorded in ``results['_run']``.

Usage:
    python tests/recipe_driver.py OUT_DIR [CONFIG ...]
Writes ``OUT_DIR/results.json``: ``{config: {step: "ok" | traceback}}``.
"""
import json
import os
import os.path as osp
import sys
import threading
import time
import traceback
from glob import glob
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tools'))
sys.path.insert(0, osp.join(REPO, 'tools', 'convert'))

import mme_plugin  # noqa: E402,F401
from mme_plugin.datasets.synthetic import (make_synthetic_dataset,  # noqa
                                           render_clip, write_video)
from mme_plugin.utils import (add_pipeline_edit,  # noqa: E402
                              effective_pipeline, find_transform)

# name -> (file name, (height, width), frames, fps)
SHAPES = {
    'k400': ('k400_clip.mp4', (256, 340), 96, 30),
    'ssv2': ('ssv2_clip.webm', (240, 426), 48, 12),
    'ucf101': ('ucf101_clip.avi', (240, 320), 80, 25),
    'hmdb51': ('hmdb51_clip.avi', (240, 320), 80, 30),
}


def all_configs() -> List[str]:
    """Every config under ``configs/mme`` (repo-relative)."""
    return sorted(
        osp.relpath(p, REPO)
        for p in glob(osp.join(REPO, 'configs', 'mme', '*.py')))


def dataset_of(config: str) -> str:
    """Which generated dataset a config reads."""
    name = osp.basename(config)
    if 'tiny_synthetic' in name:
        return 'synthetic'
    for key in SHAPES:
        if key in name:
            return key
    raise ValueError(f'no generated dataset for {config}')


def make_data(root: str) -> Dict[str, tuple]:
    """Generate one clip per dataset shape; returns name -> (ann, prefix)."""
    out = {}
    for i, (name, (fname, size, frames, fps)) in enumerate(SHAPES.items()):
        folder = osp.join(root, name)
        os.makedirs(folder, exist_ok=True)
        clip, _ = render_clip(i % 8, frames, size, seed=i)
        write_video(osp.join(folder, fname), clip, fps=fps)
        ann = osp.join(folder, 'list.txt')
        with open(ann, 'w') as f:
            f.write(f'{fname} 0\n')
        out[name] = (ann, folder)
    syn = osp.join(root, 'synthetic')
    make_synthetic_dataset(syn, dict(train=1, val=1), num_frames=32,
                           size=(64, 64), seed=0)
    # one clip per list: one iteration per epoch at batch 1
    for split in ('train', 'val'):
        path = osp.join(syn, f'{split}.txt')
        with open(path) as f:
            first = f.readline()
        with open(path, 'w') as f:
            f.write(first)
    out['synthetic'] = (osp.join(syn, 'train.txt'), syn)
    return out


def point_at_data(cfg, ann: str, prefix: str, cache: str) -> None:
    """Data paths, batch 1 and in-process loading for every loader."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        loader.batch_size = 1
        loader.num_workers = 0
        loader.persistent_workers = False
        ds = loader.dataset
        ds.ann_file = ann
        ds.data_prefix = dict(video=prefix)
        flow = find_transform(effective_pipeline(ds), 'ComputeFlow',
                              required=False)
        if flow is not None and flow.get('cache_dir'):
            add_pipeline_edit(ds, 'ComputeFlow', cache_dir=cache,
                              data_root=prefix)


def train(config: str, work: str, data: tuple, cache: str, epochs: int,
          resume: bool = False, load_from: str = None) -> None:
    """One ``tools/train.py`` run (in process)."""
    import train as train_tool
    argv = [config, '--work-dir', work, '--cfg-options',
            f'train_cfg.max_epochs={epochs}',
            f'experiment_name={osp.basename(work)}_{epochs}']
    if resume:
        argv.insert(1, '--resume')
    cfg = train_tool.build_config(train_tool.parse_args(argv))
    point_at_data(cfg, *data, cache)
    if load_from and not resume:
        cfg.load_from = load_from
    train_tool.run(cfg)


def test(config: str, ckpt: str, work: str, data: tuple) -> Dict:
    """One ``tools/test.py`` run (in process)."""
    import test as test_tool
    argv = [config, ckpt, '--work-dir', work, '--cfg-options',
            f'experiment_name={osp.basename(work)}_test']
    cfg = test_tool.build_config(test_tool.parse_args(argv))
    point_at_data(cfg, *data, osp.join(work, 'fc'))
    return test_tool.run(cfg)


def convert(src: str, dst: str, config: str) -> None:
    """``tools/convert/mme_to_recognizer.py`` (in process)."""
    import mme_to_recognizer
    mme_to_recognizer.convert(src, dst, config)


def _pretrain_for(config: str) -> str:
    name = osp.basename(config)
    if 'tiny_synthetic' in name:
        return 'configs/mme/pretrain_tiny_synthetic.py'
    if 'ssv2' in name:
        return 'configs/mme/pretrain_ssv2.py'
    return 'configs/mme/pretrain_k400.py'


def order(configs: List[str]) -> List[str]:
    """Each pretraining config, then the configs that start from its
    checkpoint, each fine-tune followed by its test-only variants; so every
    checkpoint can be deleted as soon as its last reader is done."""
    def parent(c):
        return c.split('_test')[0] + '.py' if '_test' in c else None

    def readers(pre):
        return sorted(c for c in configs
                      if ('finetune' in c or 'linear' in c)
                      and '_test' not in c and _pretrain_for(c) == pre)

    out: List[str] = []
    pretrains = sorted(c for c in configs
                       if 'pretrain' in c or 'videomae' in c)
    for pre in pretrains:
        out.append(pre)
        for c in readers(pre):
            out.append(c)
            out.extend(sorted(t for t in configs if parent(t) == c))
    out.extend(c for c in sorted(configs) if c not in out)
    return out


def last_readers(configs: List[str]) -> Dict[str, str]:
    """config -> the last config in ``configs`` that reads its checkpoint
    (itself when nobody else does)."""
    last = {c: c for c in configs}
    for c in configs:
        if '_test' in c:
            last[c.split('_test')[0] + '.py'] = c
        elif 'finetune' in c or 'linear' in c:
            last[_pretrain_for(c)] = c
    return last


def free_checkpoints(work: str, keep: str = None) -> int:
    """Delete the checkpoints of a finished config (logs stay), except the
    file named ``keep``; returns the bytes freed. ViT-B checkpoints with
    optimizer state are about 1 GB each: keeping all of them took 24 GB and
    filled CI's disk."""
    freed = 0
    for path in glob(osp.join(work, '*.pth')) + glob(
            osp.join(work, 'last_checkpoint')):
        if keep and osp.basename(path) == keep:
            continue
        freed += osp.getsize(path)
        os.remove(path)
    return freed


def disk_used(path: str) -> int:
    """Bytes under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += osp.getsize(osp.join(root, f))
            except OSError:
                pass
    return total


def main() -> None:
    """Entry point."""
    out_dir = osp.abspath(sys.argv[1])
    configs = sys.argv[2:] or all_configs()
    needed = set(configs)
    for c in list(configs):  # parents and pretraining checkpoints needed
        if '_test' in c:
            needed.add(c.split('_test')[0] + '.py')
    for c in list(needed):
        if 'finetune' in c or 'linear' in c:
            needed.add(_pretrain_for(c))
    configs = order(sorted(needed))
    last = last_readers(configs)
    data = make_data(osp.join(out_dir, 'data'))
    results: Dict[str, Dict[str, str]] = {}
    peak = [0]
    sampling = threading.Event()

    def sample_disk() -> None:
        while not sampling.wait(1.0):
            peak[0] = max(peak[0], disk_used(out_dir))

    threading.Thread(target=sample_disk, daemon=True).start()
    t_all = time.time()

    def release(done: str) -> None:
        """Free every checkpoint whose last reader is ``done``; of a config
        whose checkpoint is still to be read, all but ``epoch_2.pth``."""
        def work_of(c):
            return osp.join(out_dir, osp.splitext(osp.basename(c))[0])
        if last[done] != done:
            free_checkpoints(work_of(done), keep='epoch_2.pth')
        for owner, reader in last.items():
            if reader == done:
                free_checkpoints(work_of(owner))
    for config in configs:
        name = osp.splitext(osp.basename(config))[0]
        work = osp.join(out_dir, name)
        d = data[dataset_of(config)]
        cache = osp.join(out_dir, 'flow_cache', name)
        res = results.setdefault(config, {})

        def step(label, fn, *args, **kwargs):
            t0 = time.time()
            try:
                value = fn(*args, **kwargs)
                res[label] = 'ok'
                print(f'[driver] {config} {label}: ok '
                      f'({time.time() - t0:.0f} s)', flush=True)
                return value
            except BaseException:  # noqa: B902 - recorded, then go on
                res[label] = traceback.format_exc()[-6000:]
                print(f'[driver] {config} {label}: FAILED\n{res[label]}',
                      flush=True)
                return None

        if '_test' in name:
            parent = config.split('_test')[0] + '.py'
            ckpt = osp.join(out_dir, osp.splitext(osp.basename(parent))[0],
                            'epoch_2.pth')
            step('test', test, config, ckpt, work, d)
            release(config)
            continue
        load_from = None
        if 'finetune' in name or 'linear' in name:
            pre = _pretrain_for(config)
            src = osp.join(out_dir, osp.splitext(osp.basename(pre))[0],
                           'epoch_2.pth')
            load_from = osp.join(work, 'converted_backbone.pth')
            step('convert', convert, src, load_from, config)
        step('train', train, config, work, d, cache, 1, load_from=load_from)
        step('resume', train, config, work, d, cache, 2, resume=True)
        if 'finetune' in name:
            step('test', test, config, osp.join(work, 'epoch_2.pth'), work,
                 d)
        release(config)
        with open(osp.join(out_dir, 'results.json'), 'w') as f:
            json.dump(results, f, indent=1)
    sampling.set()
    results['_run'] = dict(seconds=round(time.time() - t_all),
                           peak_disk_gib=round(peak[0] / 2**30, 2))
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print(f'[driver] {len(configs)} configs in {time.time() - t_all:.0f} s, '
          f'peak disk use {peak[0] / 2**30:.1f} GiB (sampled every second)')


if __name__ == '__main__':
    main()
