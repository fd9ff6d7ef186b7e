"""Draw the sampled frames, tube mask and trajectories of clips to PNG / GIF.

Runs a pretraining config's train pipeline on one or more videos and saves
``<out>/<video>.png`` (mask + trajectories per tube) and, with ``--gif``,
``<out>/<video>.gif`` (the dense frames of tube 0 with the tracked points).

For a config whose model computes the targets (device placement:
``PrepareMotionInputs`` and ``model.target_generator``, e.g.
``pretrain_k400.py``) the pipeline runs up to ``PrepareMotionInputs`` and
the model's target generator (built alone, on the CPU) gives the tracked
positions, the per-point validity and the reject reasons.

Example:
    python tools/analysis/visualize_mme.py \
        configs/mme/pretrain_tiny_synthetic.py \
        data/synthetic/train/rotate_cw_0000.mp4 --out work_dirs/vis --gif
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import Compose  # noqa: E402

from mme_plugin.utils import register_all_modules  # noqa: E402
from mme_plugin.visualization import (draw_clip_targets,  # noqa: E402
                                      trajectory_gif_frames)

_STOP = ('BuildMMETargets', 'TubeMasking', 'FormatShape', 'PackActionInputs',
         'PackMMEInputs')


def device_trajectories(cfg: Config, res: Dict) -> Dict:
    """The model's target generator on one ``PrepareMotionInputs`` output:
    adds ``traj_positions``, ``traj_point_valid``, ``traj_point_reason``
    (with reliability checks) and ``dense_imgs`` (NumPy, one clip)."""
    from mme_plugin.datasets.preflight import build_generator
    gen = build_generator(cfg.model)
    out = gen.compute(res['motion_frames'][None], res['motion_scale'][None])
    res['dense_imgs'] = res['motion_frames'].numpy()
    res['traj_positions'] = out['positions'][0].numpy()
    res['traj_point_valid'] = out['point_valid'][0].numpy()
    if 'point_reason' in out:
        res['traj_point_reason'] = out['point_reason'][0].numpy()
    return res


def run(cfg: Config, video: str, out_dir: str, gif: bool,
        seed: int = 0) -> list:
    """Visualise one video; returns the written paths."""
    import random
    random.seed(seed)
    np.random.seed(seed)
    from mme_plugin.utils import effective_pipeline
    steps = [dict(t) for t in
             effective_pipeline(cfg.train_dataloader.dataset)]
    for t in steps:  # one clip: compute flow, leave any cache alone
        if t['type'].split('.')[-1] == 'ComputeFlow':
            t['cache_dir'] = None
    names = [t['type'].split('.')[-1] for t in steps]
    device = 'PrepareMotionInputs' in names and bool(
        cfg.model.get('target_generator'))
    if 'ComputeTrajectories' not in names and not device:
        raise SystemExit(f'{cfg.filename}: no ComputeTrajectories in the '
                         'train pipeline and no PrepareMotionInputs with '
                         'model.target_generator: no trajectories to draw '
                         '(a pixel-target config?)')
    pre = Compose([t for t in steps
                   if t['type'].split('.')[-1] not in _STOP])
    mask_cfg = next(t for t in steps if t['type'].endswith('TubeMasking'))
    masking = Compose([mask_cfg])
    res = pre(dict(filename=video, label=-1, start_index=0, modality='RGB'))
    if device:
        res = device_trajectories(cfg, res)
    dense = res['dense_imgs']
    res = masking(res)
    os.makedirs(out_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(video))[0]
    paths = [draw_clip_targets(res, mask_cfg['patch_size'],
                               osp.join(out_dir, f'{stem}.png'), title=stem)]
    if gif:
        from PIL import Image
        frames = trajectory_gif_frames(dense[0], res['traj_positions'][0])
        path = osp.join(out_dir, f'{stem}.gif')
        Image.fromarray(frames[0]).save(
            path, save_all=True,
            append_images=[Image.fromarray(f) for f in frames[1:]],
            duration=250, loop=0)
        paths.append(path)
    return paths


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point.

    Args:
        argv (Sequence[str], optional): Arguments (default: ``sys.argv``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='pretraining config')
    parser.add_argument('videos', nargs='+', help='video files')
    parser.add_argument('--out', default='work_dirs/vis')
    parser.add_argument('--gif', action='store_true')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    for video in args.videos:
        for path in run(cfg, video, args.out, args.gif, args.seed):
            print(f'wrote {path}')


if __name__ == '__main__':
    main()
