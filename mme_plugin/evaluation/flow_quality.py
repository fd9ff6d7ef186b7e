"""Ground-truth-free quality of flow choices on a user's own videos.

For each flow backend, on short windows of consecutive frames spread over
each video: the speed, how far its trajectories end from release-setting
Farneback's (agreement, not accuracy: nobody knows the true motion of real
footage), the fraction of points the reliability checks keep, the
forward-backward round-trip error and the photometric error of warping
frame t + 1 back onto frame t. ``tools/analysis/flow_report.py`` prints it.
"""
import time
from typing import Dict, List, Sequence

import cv2
import numpy as np

from mme_plugin.ops.flow_reliability import (REJECT_REASONS, fb_round_trip,
                                             warp_error)

__all__ = ['FLOW_CHOICES', 'flow_quality']

#: The flow choices the recipes and docs discuss, by name.
FLOW_CHOICES: Dict[str, Dict] = {
    'farneback (release)': dict(type='FarnebackFlow'),
    'farneback scale 0.5': dict(type='FarnebackFlow', scale=0.5),
    'dis medium': dict(type='DISFlow', preset='medium'),
    'dis fast': dict(type='DISFlow', preset='fast'),
    'dis fast scale 0.5': dict(type='DISFlow', preset='fast', scale=0.5),
    'dis ultrafast scale 0.5': dict(type='DISFlow', preset='ultrafast',
                                    scale=0.5),
}
REFERENCE = 'farneback (release)'


def _windows(videos: Sequence[str], starts: int, steps: int,
             size: int) -> List[np.ndarray]:
    """``starts`` windows of ``steps + 1`` consecutive frames per video,
    resized to ``size`` x ``size`` (the recipes' crop size)."""
    from mme_plugin.io import get_frames, open_video
    out = []
    for video in videos:
        reader = open_video(video)
        n = reader.num_frames
        if n < steps + 1:
            raise ValueError(f'{video}: {n} frames, need at least '
                             f'{steps + 1}')
        for k in range(starts):
            s0 = (n - steps - 1) * (k + 1) // (starts + 1)
            frames, reader = get_frames(reader, video,
                                        range(s0, s0 + steps + 1))
            out.append(np.stack([
                cv2.resize(np.asarray(f), (size, size),
                           interpolation=cv2.INTER_AREA) for f in frames
            ]))
    return out


def flow_quality(videos: Sequence[str],
                 choices: Dict[str, Dict] = FLOW_CHOICES,
                 starts: int = 4, steps: int = 4, size: int = 224,
                 grid_step: int = 8) -> Dict[str, Dict[str, float]]:
    """Measure every flow choice on the videos.

    Args:
        videos (Sequence[str]): Video files.
        choices (dict): Name -> flow backend config. The reference
            ``'farneback (release)'`` is added if missing.
        starts (int): Windows per video. Defaults to 4.
        steps (int): Flow steps per window (L). Defaults to 4.
        size (int): Frames are resized to ``size`` x ``size``. Defaults to
            224.
        grid_step (int): Point spacing of the trajectories. Defaults to 8.

    Returns:
        dict: per choice: ``ms_per_pair`` (forward flow), ``bwd_ms_per_pair``,
        ``vs_release_px`` (mean end-point distance from release Farneback's
        trajectories), ``reliable`` (fraction of in-frame points kept by
        :class:`CheckTrajectoryReliability`), ``rejected_<reason>``,
        ``round_trip_px`` (mean forward-backward error over points and
        steps), ``warp_error`` (mean grey-level error of warping t + 1 onto
        t) and ``cut_pairs`` (fraction of frame pairs flagged as cuts).
    """
    from mme_plugin.datasets.transforms import (CheckTrajectoryReliability,
                                                ComputeFlow,
                                                ComputeTrajectories)
    choices = dict(choices)
    choices.setdefault(REFERENCE, FLOW_CHOICES[REFERENCE])
    windows = _windows(videos, starts, steps, size)
    check = CheckTrajectoryReliability()
    acc: Dict[str, Dict[str, List[float]]] = {}
    for frames in windows:
        ends = {}
        for name, cfg in choices.items():
            flow = ComputeFlow(backend=cfg, backward=True)
            dense = frames[None]
            t0 = time.perf_counter()
            fwd = flow._compute(dense)
            t1 = time.perf_counter()
            bwd = flow._compute(dense, backward=True)
            t2 = time.perf_counter()
            res = ComputeTrajectories(grid_step=grid_step)(
                dict(dense_imgs=dense, flows=fwd, flows_bwd=bwd))
            pos = res['traj_positions'][0]
            inside = res['traj_point_valid'][0]
            ends[name] = (pos[-1], inside)
            trips = fb_round_trip(*check.fb_steps(res))[0]  # [L, gh, gw]
            out = check(dict(
                res, traj_point_valid=res['traj_point_valid'].copy()))
            reason = out['traj_point_reason'][0]
            a = acc.setdefault(name, {})
            a.setdefault('ms_per_pair', []).append(1e3 * (t1 - t0) / steps)
            a.setdefault('bwd_ms_per_pair', []).append(1e3 * (t2 - t1) /
                                                       steps)
            a.setdefault('reliable', []).append(
                float(out['traj_point_valid'][0][inside].mean())
                if inside.any() else 0.0)
            for k, why in enumerate(REJECT_REASONS[1:4], start=2):
                a.setdefault(f'rejected_{why}', []).append(
                    float((reason[inside] == k).mean())
                    if inside.any() else 0.0)
            a.setdefault('round_trip_px', []).append(
                float(trips[:, inside].mean()))
            a.setdefault('warp_error', []).append(float(np.mean([
                np.nanmean(warp_error(frames[t], frames[t + 1], fwd[0, t]))
                for t in range(steps)])))
            a.setdefault('cut_pairs', []).append(
                float(out['traj_cut_pairs'].mean()))
        ref_end, ref_in = ends[REFERENCE]
        for name, (end, inside) in ends.items():
            both = inside & ref_in
            acc[name].setdefault('vs_release_px', []).append(
                float(np.linalg.norm(end - ref_end, axis=-1)[both].mean())
                if both.any() else float('nan'))
    return {name: {k: float(np.nanmean(v)) for k, v in a.items()}
            for name, a in acc.items()}
