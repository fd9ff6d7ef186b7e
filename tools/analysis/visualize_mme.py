"""Draw the sampled frames, tube mask and trajectories of clips to PNG / GIF.

Runs a pretraining config's train pipeline on one or more videos and saves
``<out>/<video>.png`` (mask + trajectories per tube) and, with ``--gif``,
``<out>/<video>.gif`` (the dense frames of tube 0 with the tracked points).

Example:
    python tools/analysis/visualize_mme.py \
        configs/mme/pretrain_tiny_synthetic.py \
        data/synthetic/train/rotate_cw_0000.mp4 --out work_dirs/vis --gif
"""
import argparse
import os
import os.path as osp
import sys

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
    if 'ComputeTrajectories' not in names:
        raise SystemExit(f'{cfg.filename}: no ComputeTrajectories in the '
                         'train pipeline (a pixel-target config?)')
    pre = Compose([t for t in steps
                   if t['type'].split('.')[-1] not in _STOP])
    mask_cfg = next(t for t in steps if t['type'].endswith('TubeMasking'))
    masking = Compose([mask_cfg])
    res = pre(dict(filename=video, label=-1, start_index=0, modality='RGB'))
    dense = res['dense_imgs']
    res['traj_point_valid'] = res['traj_valid']
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


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='pretraining config')
    parser.add_argument('videos', nargs='+', help='video files')
    parser.add_argument('--out', default='work_dirs/vis')
    parser.add_argument('--gif', action='store_true')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    for video in args.videos:
        for path in run(cfg, video, args.out, args.gif, args.seed):
            print(f'wrote {path}')


if __name__ == '__main__':
    main()
