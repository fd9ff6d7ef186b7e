"""Pictures of MME inputs and targets: frames, tube mask, trajectories."""
from typing import Dict, List, Optional

import numpy as np

__all__ = ['draw_clip_targets', 'trajectory_gif_frames']


def _mask_overlay(img: np.ndarray, mask2d: np.ndarray,
                  patch: int) -> np.ndarray:
    out = img.astype(np.float32).copy()
    for i, j in zip(*np.nonzero(mask2d)):
        sl = (slice(i * patch, (i + 1) * patch),
              slice(j * patch, (j + 1) * patch))
        # Mostly grey, a trace of the content: visible on busy textures.
        out[sl] = 0.15 * out[sl] + 0.85 * 110
    return out.astype(np.uint8)


def draw_clip_targets(results: Dict, patch_size: int, out_file: str,
                      title: Optional[str] = None, max_tubes: int = 4) -> str:
    """Save a figure of one pipeline output.

    Row 1: the first sparse frame of each tube with masked patches greyed.
    Row 2: the same frame with each point's trajectory over the tube's dense
    steps (green: valid, red: left the frame), magnified x4.

    Args:
        results (dict): Pipeline results with ``imgs`` (list of HxWx3),
            ``traj_positions`` (``[N, L + 1, gh, gw, 2]``), ``mask``
            (``[tokens]``) and, optionally, per-point validity
            ``traj_point_valid``.
        patch_size (int): Spatial patch size.
        out_file (str): PNG path.
        title (str, optional): Figure title.
        max_tubes (int): Tubes to draw. Defaults to 4.

    Returns:
        str: ``out_file``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    imgs = results['imgs']
    pos = results['traj_positions']
    n = min(max_tubes, pos.shape[0])
    tubelet = len(imgs) // pos.shape[0]
    h, w = np.asarray(imgs[0]).shape[:2]
    hp, wp = h // patch_size, w // patch_size
    mask = np.asarray(results['mask']).reshape(-1, hp, wp)
    valid = results.get('traj_point_valid')
    fig, axes = plt.subplots(2, n, figsize=(3 * n, 6.4), squeeze=False)
    for m in range(n):
        frame = np.asarray(imgs[m * tubelet])
        axes[0, m].imshow(_mask_overlay(frame, mask[m], patch_size))
        axes[0, m].set_title(f'tube {m}: {int(mask[m].sum())}/{hp * wp} '
                             'masked', fontsize=8)
        axes[1, m].imshow(frame)
        p = pos[m].reshape(pos.shape[1], -1, 2)
        v = np.ones(p.shape[1], bool) if valid is None else \
            np.asarray(valid[m]).reshape(-1)
        for k in range(p.shape[1]):
            start = p[0, k]
            track = start + 4 * (p[:, k] - start)  # magnify the motion
            axes[1, m].plot(track[:, 0], track[:, 1], '-',
                            color='lime' if v[k] else 'red', lw=0.8)
            axes[1, m].plot(start[0], start[1], '.', color='yellow', ms=2)
        axes[1, m].set_title('trajectories (x4)', fontsize=8)
        for ax in axes[:, m]:
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
            ax.axis('off')
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return out_file


def trajectory_gif_frames(dense_imgs: np.ndarray, positions: np.ndarray,
                          scale: int = 4) -> List[np.ndarray]:
    """Frames of a GIF: each dense frame of tube 0 with the tracked points.

    Args:
        dense_imgs (np.ndarray): ``[L + 1, H, W, 3]`` dense frames of a tube.
        positions (np.ndarray): ``[L + 1, gh, gw, 2]`` tracked positions.
        scale (int): Upscaling of the picture. Defaults to 4.

    Returns:
        list[np.ndarray]: RGB uint8 frames.
    """
    import cv2
    frames = []
    for t in range(dense_imgs.shape[0]):
        img = cv2.resize(dense_imgs[t], None, fx=scale, fy=scale,
                         interpolation=cv2.INTER_NEAREST)
        for (x, y) in positions[t].reshape(-1, 2):
            cv2.circle(img, (int(x * scale + scale / 2),
                             int(y * scale + scale / 2)), 2, (255, 255, 0),
                       -1)
        frames.append(img)
    return frames
