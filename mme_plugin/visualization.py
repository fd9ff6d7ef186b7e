"""Pictures of MME inputs and targets: frames, tube mask, trajectories."""
from typing import Dict, List, Optional

import numpy as np

__all__ = ['draw_clip_targets', 'trajectory_gif_frames', 'point_reasons',
           'REASON_COLORS']


def _mask_overlay(img: np.ndarray, mask2d: np.ndarray,
                  patch: int) -> np.ndarray:
    out = img.astype(np.float32).copy()
    for i, j in zip(*np.nonzero(mask2d)):
        sl = (slice(i * patch, (i + 1) * patch),
              slice(j * patch, (j + 1) * patch))
        # Mostly grey, a trace of the content: visible on busy textures.
        out[sl] = 0.15 * out[sl] + 0.85 * 110
    return out.astype(np.uint8)


#: Trajectory colour per reason code (0 = valid, then REJECT_REASONS).
REASON_COLORS = {
    0: ('valid', 'lime'),
    1: ('left the frame', 'red'),
    2: ('forward-backward check', 'orange'),
    3: ('photometric check', 'magenta'),
    4: ('shot cut', 'cyan'),
    5: ('step too large', 'white'),
}


def point_reasons(results: Dict, tube: int, num_points: int) -> np.ndarray:
    """Reason codes of one tube's points: ``traj_point_reason`` if the
    pipeline has ``CheckTrajectoryReliability``, else 0 / 1 from
    ``traj_point_valid`` (all 0 without it)."""
    if results.get('traj_point_reason') is not None:
        return np.asarray(results['traj_point_reason'][tube]).reshape(-1)
    valid = results.get('traj_point_valid')
    if valid is None:
        return np.zeros(num_points, np.int64)
    return np.where(np.asarray(valid[tube]).reshape(-1), 0, 1)


def draw_clip_targets(results: Dict, patch_size: int, out_file: str,
                      title: Optional[str] = None, max_tubes: int = 4) -> str:
    """Save a figure of one pipeline output.

    Row 1: the first sparse frame of each tube with masked patches greyed.
    Row 2: the same frame with each point's trajectory over the tube's dense
    steps, magnified x4, coloured by why it is (in)valid
    (:data:`REASON_COLORS`: green valid, red left the frame, orange failed
    the forward-backward check, magenta the photometric check, cyan shot
    cut), with a legend of the reasons present.

    Args:
        results (dict): Pipeline results with ``imgs`` (list of HxWx3),
            ``traj_positions`` (``[N, L + 1, gh, gw, 2]``), ``mask``
            (``[tokens]``) and, optionally, per-point validity
            ``traj_point_valid`` and reasons ``traj_point_reason``
            (``CheckTrajectoryReliability``).
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
    seen = set()
    fig, axes = plt.subplots(2, n, figsize=(3 * n, 6.4), squeeze=False)
    for m in range(n):
        frame = np.asarray(imgs[m * tubelet])
        axes[0, m].imshow(_mask_overlay(frame, mask[m], patch_size))
        axes[0, m].set_title(f'tube {m}: {int(mask[m].sum())}/{hp * wp} '
                             'masked', fontsize=8)
        axes[1, m].imshow(frame)
        p = pos[m].reshape(pos.shape[1], -1, 2)
        codes = point_reasons(results, m, p.shape[1])
        for k in range(p.shape[1]):
            start = p[0, k]
            track = start + 4 * (p[:, k] - start)  # magnify the motion
            axes[1, m].plot(track[:, 0], track[:, 1], '-',
                            color=REASON_COLORS[codes[k]][1], lw=0.8)
            axes[1, m].plot(start[0], start[1], '.', color='yellow', ms=2)
        seen.update(codes.tolist())
        axes[1, m].set_title('trajectories (x4)', fontsize=8)
        for ax in axes[:, m]:
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
            ax.axis('off')
    from matplotlib.lines import Line2D
    fig.legend(handles=[Line2D([], [], color=REASON_COLORS[c][1],
                               label=REASON_COLORS[c][0])
                        for c in sorted(seen)],
               loc='lower center', ncol=len(seen), fontsize=7, frameon=False)
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
