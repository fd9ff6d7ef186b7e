"""Run shipped configs for real, in one process per call (used by
``tests/test_real_recipes.py``, two calls at once; also runnable by hand).

For each config under ``configs/mme/``, at its real size (model, pipeline,
hooks, optimizer constructor, schedulers): train one iteration (batch 1, one
video) through ``tools/train.py``'s code and save; configs named in
:data:`RESUMED` (one ViT-B config per kind: pretraining, fine-tune, linear
probe) and every tiny config then ``--resume`` from the work dir and train a
second iteration (the other ViT-B configs of a kind resume through the same
code: mmengine's resume, the kind's optimizer constructor, schedulers and
hooks). Fine-tune configs are also tested through ``tools/test.py``'s code
(the ``_test5x3`` variants test their parent's checkpoint): their test
pipeline runs on the video at full size and must give every view it
promises (clips x crops, recorded in ``test_views``); the model then runs on
every view for the configs in :data:`FULL_VIEW_TESTS` and on one clip's
crops for the others (each ViT-B view costs about 3 s on 2 CPU cores: all
132 took half of the runs' time). Linear probes and fine-tunes start from a
pretraining checkpoint converted with ``tools/convert/mme_to_recognizer.py``.
The videos are generated and shaped
like the datasets the configs target: Kinetics-like 340x256 H.264 mp4,
Something-Something-like 426x240 VP9 webm at 12 fps, UCF101/HMDB51-like
320x240 MPEG-4 avi. Only data paths, batch size 1, in-process loading, the
epoch count, (as above) the test clip count and the repeated augmentation
of the ViT-B fine-tunes not in :data:`FULL_REPEATS` (one copy) are
overridden.

One process runs all the configs it is given (the imports cost more than a
tiny step); each runner gets its own experiment name and work dir. The
test runs two processes at once on the two halves of :func:`shards`. A
failure of one step is recorded with its traceback and the next config goes
on. Every checkpoint is deleted as soon as the last config that reads it
is done (kept, the ViT-B checkpoints took 24 GB and filled CI's disk); the
peak disk use, sampled every second, is recorded in ``results['_run']``.

Usage:
    python tests/recipe_driver.py OUT_DIR [CONFIG ...]
Writes ``OUT_DIR/results.json``: ``{config: {step: "ok" | traceback}}``,
with ``test_views: [pipeline views, views the model ran]`` for tested
configs and a ``_run`` entry (seconds, peak disk use).
"""
import copy
import json
import os
import os.path as osp
import sys
import threading
import time
import traceback
from glob import glob
from typing import Dict, List, Optional, Tuple

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


#: ViT-B configs whose ``resume`` step runs (one per kind); every tiny
#: config resumes too.
RESUMED = ('pretrain_k400.py', 'finetune_k400.py', 'linear_k400.py')
#: ViT-B fine-tunes whose test runs the model on every view of their test
#: pipeline (the smallest multi-clip one: 2 clips x 3 crops); the tiny
#: fine-tune does too.
FULL_VIEW_TESTS = ('finetune_ssv2.py', )
#: ViT-B fine-tunes that train with their repeated augmentation in full
#: (2 augmented copies of the clip); the others train on one copy (the
#: ViT-B step on 2 x 1568 tokens took 23 s of their 38-42 s on 2 CPU
#: cores, 2026-12-05): the same RepeatAugVideoDataset and collate, one
#: repeat. The tiny fine-tune keeps its repeats too.
FULL_REPEATS = ('finetune_k400.py', )
#: Test-time samplers (their ``num_clips`` sets the clip count).
CLIP_SAMPLERS = ('SampleFrames', 'UniformSample')
#: Crops per clip of the test-time crop transforms (others: 1).
CROPS = {'ThreeCrop': 3, 'TenCrop': 10}


def all_configs() -> List[str]:
    """Every config under ``configs/mme`` (repo-relative)."""
    return sorted(
        osp.relpath(p, REPO)
        for p in glob(osp.join(REPO, 'configs', 'mme', '*.py')))


def steps_of(config: str) -> List[str]:
    """The steps the driver runs for ``config``, in order."""
    name = osp.basename(config)
    if '_test' in name:
        return ['test']
    steps = ['train']
    if 'tiny_synthetic' in name or name in RESUMED:
        steps.append('resume')
    if 'finetune' in name or 'linear' in name:
        steps.insert(0, 'convert')
    if 'finetune' in name:
        steps.append('test')
    return steps


def final_checkpoint(config: str) -> str:
    """The file name of the checkpoint the driver leaves for ``config``'s
    readers (after its last training step)."""
    return 'epoch_2.pth' if 'resume' in steps_of(config) else 'epoch_1.pth'


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
    name = osp.basename(config)
    ds = cfg.train_dataloader.dataset
    if ds.get('num_repeats', 1) > 1 and name not in FULL_REPEATS and \
            'tiny_synthetic' not in name:
        ds.num_repeats = 1
    if load_from and not resume:
        cfg.load_from = load_from
    train_tool.run(cfg)


def expected_views(dataset_cfg) -> Tuple[str, int, int]:
    """The test sampler's type, its clip count and the views (clips x
    crops) a dataset config's effective pipeline promises."""
    pipeline = effective_pipeline(dataset_cfg, log=False)
    sampler = [t for t in CLIP_SAMPLERS
               if find_transform(pipeline, t, required=False)]
    if len(sampler) != 1:
        raise KeyError(f'expected one of {CLIP_SAMPLERS} in the test '
                       f'pipeline, found {sampler}')
    clips = find_transform(pipeline, sampler[0])['num_clips']
    crops = 1
    for name, n in CROPS.items():
        if find_transform(pipeline, name, required=False):
            crops = n
    return sampler[0], clips, clips * crops


def pipeline_views(cfg) -> int:
    """Views the config's test pipeline makes of the first video, checked
    against the clips x crops it promises and the model's input size."""
    from mme_plugin.registry import DATASETS
    from mme_plugin.utils import register_all_modules
    register_all_modules()
    ds_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    _, _, views = expected_views(ds_cfg)
    inputs = DATASETS.build(ds_cfg)[0]['inputs']
    size = cfg.model.backbone.get('img_size', 224)
    frames = cfg.model.backbone.get('num_frames', 16)
    if tuple(inputs.shape) != (views, 3, frames, size, size):
        raise AssertionError(
            f'{cfg.filename}: test pipeline gave {tuple(inputs.shape)}, '
            f'expected {(views, 3, frames, size, size)}')
    return views


def test(config: str, ckpt: str, work: str, data: tuple,
         views: Dict[str, List[int]]) -> Dict:
    """One ``tools/test.py`` run (in process): the config's test pipeline
    at full size, then the model on every view (:data:`FULL_VIEW_TESTS`)
    or on one clip's crops; ``views[config]`` gets both counts."""
    import test as test_tool
    argv = [config, ckpt, '--work-dir', work, '--cfg-options',
            f'experiment_name={osp.basename(work)}_test']
    cfg = test_tool.build_config(test_tool.parse_args(argv))
    point_at_data(cfg, *data, osp.join(work, 'fc'))
    full = pipeline_views(cfg)
    ds = cfg.test_dataloader.dataset
    name = osp.basename(config)
    if name not in FULL_VIEW_TESTS and 'tiny_synthetic' not in name:
        sampler, _, _ = expected_views(ds)
        add_pipeline_edit(ds, sampler, num_clips=1)
    views[config] = [full, expected_views(ds)[2]]
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


def shards(configs: List[str]) -> List[List[str]]:
    """The configs in two independent halves that two driver processes can
    run at once (``tests/test_real_recipes.py`` does): the K400-pretrained
    chain (``pretrain_k400.py`` and every fine-tune and linear probe that
    starts from its checkpoint, with their test-only variants), and the
    rest. No config of one half reads a checkpoint of the other.

    Args:
        configs: Repo-relative configs.

    Returns:
        list: Two lists of configs.
    """
    def k400_chain(c: str) -> bool:
        base = c.split('_test')[0] + '.py' if '_test' in c else c
        return osp.basename(base) == 'pretrain_k400.py' or (
            ('finetune' in base or 'linear' in base)
            and _pretrain_for(base) == 'configs/mme/pretrain_k400.py')

    return [[c for c in configs if k400_chain(c)],
            [c for c in configs if not k400_chain(c)]]


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


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point: ``OUT_DIR [CONFIG ...]`` (default: ``sys.argv[1:]``)."""
    argv = sys.argv[1:] if argv is None else argv
    out_dir = osp.abspath(argv[0])
    configs = argv[1:] or all_configs()
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

    def work_of(c: str) -> str:
        return osp.join(out_dir, osp.splitext(osp.basename(c))[0])

    def release(done: str) -> None:
        """Free every checkpoint whose last reader is ``done``; of a config
        whose checkpoint is still to be read, all but that one."""
        if last[done] != done:
            free_checkpoints(work_of(done), keep=final_checkpoint(done))
        for owner, reader in last.items():
            if reader == done:
                free_checkpoints(work_of(owner))

    views: Dict[str, List[int]] = {}
    for config in configs:
        name = osp.splitext(osp.basename(config))[0]
        work = work_of(config)
        d = data[dataset_of(config)]
        cache = osp.join(out_dir, 'flow_cache', name)
        res = results.setdefault(config, {})
        steps = steps_of(config)

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
            ckpt = osp.join(work_of(parent), final_checkpoint(parent))
        else:
            ckpt = osp.join(work, final_checkpoint(config))
        load_from = None
        if 'convert' in steps:
            pre = _pretrain_for(config)
            load_from = osp.join(work, 'converted_backbone.pth')
            step('convert', convert,
                 osp.join(work_of(pre), final_checkpoint(pre)), load_from,
                 config)
        if 'train' in steps:
            step('train', train, config, work, d, cache, 1,
                 load_from=load_from)
        if 'resume' in steps:
            step('resume', train, config, work, d, cache, 2, resume=True)
        if 'test' in steps:
            step('test', test, config, ckpt, work, d, views)
            if config in views:
                res['test_views'] = views[config]
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
