"""Synthetic video classification whose classes depend only on motion.

Each clip shows a randomly textured sprite over a randomly textured static
background. The class is the sprite's motion: translation in one of four
directions, rotation clockwise / counter-clockwise, or approach / recede
(scaling up / down). Texture, shape, size, position, colour and speed are drawn
per clip, so appearance alone carries no label information and a single frame
cannot be classified above chance.

The generator also returns the exact affine motion of the sprite, so tests can
compare trajectories against a known answer.
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mme_plugin.io.video import write_video

__all__ = [
    'MOTION_CLASSES', 'render_clip', 'write_video', 'make_synthetic_dataset',
    'random_texture', 'clip_velocity', 'load_clip_velocities'
]

#: Written next to the lists by :func:`make_synthetic_dataset`:
#: ``{'generator': {seed, size, num_frames}, 'splits': {split: {clip path
#: relative to the root: [label, speed]}}}``.
MOTION_FILE = 'motion.json'

#: Class names, in label order.
MOTION_CLASSES: Tuple[str, ...] = ('move_right', 'move_left', 'move_up',
                                   'move_down', 'rotate_cw', 'rotate_ccw',
                                   'approach', 'recede')


def random_texture(rng: np.random.Generator, h: int, w: int,
                   noise: float = 2.0) -> np.ndarray:
    """A random colour texture with structure at several scales (uint8 RGB).

    A smooth colour field, plus random filled rectangles, discs and stripes
    (edges at the scale of 8-16 px patches, so that pixels and gradients of
    a hidden patch are partly predictable from its neighbours), plus mild
    pixel noise.

    Args:
        rng (np.random.Generator): Random generator.
        h (int): Height in pixels.
        w (int): Width in pixels.
        noise (float): Std of the Gaussian pixel noise. Defaults to 2.

    Returns:
        np.ndarray: The ``h x w x 3`` texture.
    """
    cells = int(rng.integers(2, 5))
    coarse = rng.integers(0, 256, size=(cells, cells, 3)).astype(np.uint8)
    tex = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    tex = np.ascontiguousarray(tex)
    # About one shape per 12 x 12 px, so most patches contain edges.
    for _ in range(int(rng.integers(h * w // 200, h * w // 120 + 2))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            x0, y0 = rng.integers(0, w), rng.integers(0, h)
            x1 = x0 + rng.integers(3, max(4, w // 4))
            y1 = y0 + rng.integers(3, max(4, h // 4))
            cv2.rectangle(tex, (int(x0), int(y0)), (int(x1), int(y1)), color,
                          -1)
        elif kind == 1:
            cv2.circle(tex, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                       int(rng.integers(2, max(3, min(h, w) // 8))), color, -1)
        else:
            period = int(rng.integers(4, 12))
            angle = rng.uniform(0, np.pi)
            ys, xs = np.mgrid[0:h, 0:w]
            phase = (xs * np.cos(angle) + ys * np.sin(angle)) / period
            band = (np.floor(phase) % 2 == 0)
            region = np.zeros((h, w), bool)
            x0, y0 = rng.integers(0, w), rng.integers(0, h)
            region[y0:y0 + h // 3, x0:x0 + w // 3] = True
            tex[band & region] = color
    out = tex.astype(np.float64) + rng.normal(0, noise, size=(h, w, 3))
    return np.clip(out, 0, 255).astype(np.uint8)


def _motion_params(label: int, t: float, speed: float,
                   ) -> Tuple[float, float, float, float]:
    """Affine motion of the sprite at time ``t`` (in frames).

    Returns:
        tuple: (dx, dy, angle in degrees (counter-clockwise), scale).
    """
    name = MOTION_CLASSES[label]
    dx = dy = angle = 0.0
    scale = 1.0
    if name == 'move_right':
        dx = speed * t
    elif name == 'move_left':
        dx = -speed * t
    elif name == 'move_up':
        dy = -speed * t
    elif name == 'move_down':
        dy = speed * t
    elif name == 'rotate_cw':
        angle = -3.0 * speed * t
    elif name == 'rotate_ccw':
        angle = 3.0 * speed * t
    elif name == 'approach':
        scale = (1.0 + 0.02 * speed)**t
    elif name == 'recede':
        scale = (1.0 + 0.02 * speed)**(-t)
    return dx, dy, angle, scale


def clip_velocity(label: int, speed: float) -> Tuple[float, ...]:
    """The exact motion of a clip's sprite per frame, as 4 numbers.

    Args:
        label (int): Index into :data:`MOTION_CLASSES`.
        speed (float): The clip's speed (``render_clip``'s ``info``).

    Returns:
        tuple: ``(vx, vy)`` in px per frame (image axes, y down), the
        rotation in degrees per frame (counter-clockwise positive) and the
        scale rate ``100 * log(scale per frame)``.
    """
    dx, dy, angle, scale = _motion_params(label, 1.0, speed)
    return dx, dy, angle, 100.0 * float(np.log(scale))


def load_clip_velocities(root: str, split: str) -> np.ndarray:
    """The :func:`clip_velocity` of every clip of ``<root>/<split>.txt``,
    in list order.

    Args:
        root (str): A dataset written by :func:`make_synthetic_dataset`.
        split (str): The list's name, e.g. ``'train'``.

    Returns:
        np.ndarray: ``[N, 4]`` float64.

    Raises:
        FileNotFoundError: ``motion.json`` is missing (a dataset written
            before it existed: run ``tools/data/make_synthetic.py`` on the
            root again, which keeps the clips and writes it).
        KeyError: The split or a listed clip has no entry.
    """
    path = osp.join(root, MOTION_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} not found: run tools/data/make_synthetic.py {root} '
            'again (it keeps the clips and writes the motion of each)')
    with open(path) as f:
        splits = json.load(f).get('splits', {})
    if split not in splits:
        raise KeyError(f'{path} has no split {split!r} (it has '
                       f'{sorted(splits)}): run tools/data/make_synthetic.py '
                       f'{root} again with the split counts it was made with')
    motion = splits[split]
    rows = []
    with open(osp.join(root, f'{split}.txt')) as f:
        for line in f:
            if line.strip():
                rel = line.split()[0]
                if rel not in motion:
                    raise KeyError(f'{rel} (in {split}.txt) has no entry in '
                                   f'{path}: run tools/data/make_synthetic.py'
                                   f' {root} again')
                rows.append(clip_velocity(*motion[rel]))
    return np.asarray(rows, dtype=np.float64)


def render_clip(label: int,
                num_frames: int = 32,
                size: Tuple[int, int] = (64, 64),
                seed: int = 0) -> Tuple[np.ndarray, Dict]:
    """Render one clip of the given motion class.

    Args:
        label (int): Index into :data:`MOTION_CLASSES`.
        num_frames (int): Number of frames. Defaults to 32.
        size (tuple[int, int]): (height, width). Defaults to (64, 64).
        seed (int): Seed of everything random in the clip. Defaults to 0.

    Returns:
        tuple: ``frames`` (uint8, T x H x W x 3, RGB) and ``info`` with the
        sprite centre, speed, per-frame affine matrices (2 x 3, mapping
        sprite-local coordinates of frame 0 to frame t) and per-frame sprite
        coverage ``alpha`` (T x H x W float32, 1 = sprite): the ground truth
        of motion and occlusion.
    """
    if not 0 <= label < len(MOTION_CLASSES):
        raise ValueError(f'label {label} not in [0, {len(MOTION_CLASSES)})')
    rng = np.random.default_rng(seed)
    h, w = size
    background = random_texture(rng, h, w)
    side = int(rng.integers(min(h, w) // 3, min(h, w) // 2))
    sprite = random_texture(rng, side, side)
    alpha = np.zeros((side, side), np.float32)
    if rng.random() < 0.5:
        cv2.circle(alpha, (side // 2, side // 2), side // 2 - 1, 1.0, -1)
    else:
        alpha[1:-1, 1:-1] = 1.0
    speed = float(rng.uniform(0.6, 1.4))
    # Keep the sprite in frame for the whole clip.
    travel = speed * num_frames
    margin_x = side / 2 + 1 + (travel if label in (0, 1) else 0) / 2
    margin_y = side / 2 + 1 + (travel if label in (2, 3) else 0) / 2
    cx = w / 2 + rng.uniform(-1, 1) * max(0.0, w / 2 - margin_x)
    cy = h / 2 + rng.uniform(-1, 1) * max(0.0, h / 2 - margin_y)
    if label == 0:
        cx -= travel / 2
    elif label == 1:
        cx += travel / 2
    elif label == 2:
        cy += travel / 2
    elif label == 3:
        cy -= travel / 2
    # Sprite canvas placed in frame coordinates at t = 0.
    canvas = np.zeros((h, w, 3), np.uint8)
    canvas_a = np.zeros((h, w), np.float32)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    xs, ys = max(0, x0), max(0, y0)
    xe, ye = min(w, x0 + side), min(h, y0 + side)
    canvas[ys:ye, xs:xe] = sprite[ys - y0:ye - y0, xs - x0:xe - x0]
    canvas_a[ys:ye, xs:xe] = alpha[ys - y0:ye - y0, xs - x0:xe - x0]
    frames, mats, alphas = [], [], []
    for t in range(num_frames):
        dx, dy, angle, scale = _motion_params(label, float(t), speed)
        mat = cv2.getRotationMatrix2D((cx, cy), angle, scale)
        mat[0, 2] += dx
        mat[1, 2] += dy
        spr = cv2.warpAffine(canvas, mat, (w, h), flags=cv2.INTER_LINEAR)
        a = cv2.warpAffine(canvas_a, mat, (w, h), flags=cv2.INTER_LINEAR)
        frame = background * (1 - a[..., None]) + spr * a[..., None]
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        mats.append(mat)
        alphas.append(a)
    info = dict(center=(cx, cy), speed=speed, side=side, affine=np.stack(mats),
                alpha=np.stack(alphas))
    return np.stack(frames), info


def _check_kept_clip(path: str, first: np.ndarray, seed: int,
                     size: Tuple[int, int]) -> None:
    """Refuse to describe a kept clip that this call would not have
    written (another seed, size, split set or generator version): its first
    frame must match the re-rendered one."""
    from mme_plugin.io.video import get_frames, open_video
    frames, _ = get_frames(open_video(path), path, [0])

    def grey(img: np.ndarray) -> np.ndarray:
        img = np.ascontiguousarray(img, dtype=np.uint8)
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)

    # on luma: the codec subsamples colour (the same clip differs by ~1.5
    # grey levels, a clip of another length by ~12, another seed by ~48)
    diff = float(np.abs(grey(np.asarray(frames[0])) - grey(first)).mean())
    if diff > 4.0:
        raise ValueError(
            f'{path} exists but is not the clip this call renders for it '
            f'(first frames differ by {diff:.1f} grey levels on average; '
            f'seed {seed}, size {tuple(size)}): it was written with other '
            'settings (seed, size, frames), other splits or an older '
            'generator. Write the '
            'dataset into a new directory, or delete this one.')


def make_synthetic_dataset(
        root: str,
        num_per_class: Dict[str, int],
        num_frames: int = 32,
        size: Tuple[int, int] = (64, 64),
        seed: int = 0,
        classes: Optional[Sequence[int]] = None,
        progress: Optional[Callable[[int, int], None]] = None) -> List[str]:
    """Write mp4 clips and mmaction annotation lists ``<split>.txt``.

    Each line of ``<root>/<split>.txt`` is ``<split>/<name>.mp4 <label>``
    relative to ``root``. Existing clips with the same name are kept, so an
    interrupted run can be resumed.  ``<root>/motion.json`` records each clip's
    label and speed (:func:`load_clip_velocities` turns them into the
    clips' exact motion); for kept clips the speed is drawn again from the
    clip's seed, which depends on ``seed``, the split's position among the
    sorted split names, ``size`` and ``num_frames``, so the first kept clip
    of each split
    is compared with a fresh rendering and a mismatch is refused.

    Args:
        root (str): Output directory.
        num_per_class (dict[str, int]): Clips per class for each split, e.g.
            ``dict(train=40, val=10)``.
        num_frames (int): Frames per clip. Defaults to 32.
        size (tuple[int, int]): (height, width); use widths that every decoder
            handles (32, 64, 96, 128). Defaults to (64, 64).
        seed (int): Dataset seed. Defaults to 0.
        classes (Sequence[int], optional): Subset of class indices.
        progress (Callable, optional): Called with (done, total).

    Returns:
        list[str]: Paths of the written annotation lists.

    Raises:
        ValueError: A kept clip is not the one this call would render.
    """
    classes = list(range(len(MOTION_CLASSES))) if classes is None else list(
        classes)
    total = sum(num_per_class.values()) * len(classes)
    done = 0
    lists = []
    motion: Dict[str, Dict[str, list]] = {}
    checked = set()  # splits whose first kept clip was compared
    for s_idx, (split, n) in enumerate(sorted(num_per_class.items())):
        lines = []
        for label in classes:
            for i in range(n):
                rel = f'{split}/{MOTION_CLASSES[label]}_{i:04d}.mp4'
                path = osp.join(root, rel)
                clip_seed = int(
                    np.random.SeedSequence([seed, s_idx, label,
                                            i]).generate_state(1)[0])
                if not osp.isfile(path):
                    frames, info = render_clip(label, num_frames, size,
                                               clip_seed)
                    write_video(path + '.tmp.mp4', frames, lossless=True)
                    os.replace(path + '.tmp.mp4', path)
                elif split not in checked:  # kept: compare one per split
                    frames, info = render_clip(label, num_frames, size,
                                               clip_seed)
                    _check_kept_clip(path, frames[0], seed, size)
                    checked.add(split)
                else:  # kept: the speed is drawn before any frame
                    _, info = render_clip(label, 1, size, clip_seed)
                motion.setdefault(split, {})[rel] = [label, info['speed']]
                lines.append(f'{rel} {label}')
                done += 1
                if progress is not None:
                    progress(done, total)
        ann = osp.join(root, f'{split}.txt')
        with open(ann, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        lists.append(ann)
    with open(osp.join(root, 'classes.txt'), 'w') as f:
        f.write('\n'.join(MOTION_CLASSES[c] for c in classes) + '\n')
    # merged with the splits an earlier call wrote
    motion_path = osp.join(root, MOTION_FILE)
    splits = {}
    if osp.isfile(motion_path):
        with open(motion_path) as f:
            splits = json.load(f).get('splits', {})
    splits.update(motion)
    with open(motion_path + '.tmp', 'w') as f:
        json.dump(dict(generator=dict(seed=seed, size=list(size),
                                      num_frames=num_frames),
                       splits=splits), f)
    os.replace(motion_path + '.tmp', motion_path)
    return lists
