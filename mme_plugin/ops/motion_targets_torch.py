"""Per-token MME trajectory targets as batched tensor code.

The PyTorch twin of the trajectory part of
:class:`~mme_plugin.datasets.transforms.BuildMMETargets` (its module doc
defines the targets, PatchStd, ``step_overflow`` and ``release_compat``),
batched over a leading clip dimension B and device-agnostic. It decides
nothing on the host: where the transform raises
:class:`~mme_plugin.datasets.transforms.motion_targets.UnusableTargetsError`
(too few valid tokens, non-finite targets) this returns the per-clip
``valid_fraction`` and ``finite`` tensors for the caller to act on, and it
does not warn about motionless clips (``motion`` is returned).
"""
from typing import Dict, Optional, Sequence, Union

import torch

from .flow_reliability import REJECT_REASONS
from .token_layout import grid_to_tokens
from .tracking_torch import (grid_points_torch, reliability_torch,
                             track_points_torch)

__all__ = ['patch_std_torch', 'traj_targets_torch', 'clip_targets_torch']

Scale = Union[Sequence[float], torch.Tensor]


def patch_std_torch(values: torch.Tensor, eps: float) -> torch.Tensor:
    """``(v - mean) / (std + eps)`` over the last axis (unbiased std), as
    :func:`~mme_plugin.datasets.transforms.motion_targets.patch_std`."""
    mean = values.mean(-1, keepdim=True)
    std = values.std(-1, unbiased=True, keepdim=True)
    return (values - mean) / (std + eps)


def traj_targets_torch(disp: torch.Tensor,
                       point_valid: torch.Tensor,
                       k: int,
                       reason: Optional[torch.Tensor] = None,
                       scale_factor: Optional[Scale] = None,
                       norm: str = 'patch_std',
                       std_eps: Optional[float] = None,
                       traj_scale: float = 4.0,
                       token_valid: Optional[str] = None,
                       max_step: float = 20.0,
                       step_overflow: Optional[str] = None,
                       release_compat: bool = False
                       ) -> Dict[str, torch.Tensor]:
    """Trajectory targets of B clips of N tubes each.

    Args:
        disp (torch.Tensor): ``[B, N, L, gh, gw, 2]`` per-step displacements
            in pixels of the current frame (position differences, or the
            release's recorded steps under ``release_compat``; see
            :func:`~mme_plugin.ops.tracking_torch.track_points_torch`).
        point_valid (torch.Tensor): ``[B, N, gh, gw]`` bool point validity
            (after the reliability checks).
        k (int): Points per patch side (``patch_size / grid_step``).
        reason (torch.Tensor, optional): ``[B, N, gh, gw]`` reject codes
            (:func:`~mme_plugin.ops.tracking_torch.reliability_torch`);
            default: ``left_frame`` where ``point_valid`` is False.
        scale_factor: ``(2,)`` or ``[B, 2]`` (x, y) resize factors from the
            decoded video; give a tensor on ``disp``'s device (a Python
            sequence is copied to the device, which synchronizes). Defaults
            to 1.
        norm, std_eps, traj_scale, token_valid, max_step, step_overflow,
        release_compat: As ``BuildMMETargets`` (same defaults).

    Returns:
        dict: ``traj_target`` ``[B, T, 2 L k^2]`` float32, ``traj_valid``
        ``[B, T]`` bool, ``traj_reject`` ``[B, len(REJECT_REASONS)]``,
        ``too_far`` ``[B, N, gh, gw]``, ``motion`` ``[B]`` (mean step length
        of the valid points, decoded-video pixels; NaN when none),
        ``valid_fraction`` ``[B]`` and ``finite`` ``[B]`` bool.

    Raises:
        ValueError: Unknown ``norm`` / ``token_valid`` / ``step_overflow``.
    """
    rc = release_compat
    std_eps = (2e-5 if rc else 0.1) if std_eps is None else std_eps
    token_valid = token_valid or ('any' if rc else 'all')
    step_overflow = step_overflow or ('clamp' if rc else 'invalid')
    if norm not in ('patch_std', 'none'):
        raise ValueError(f"norm must be 'patch_std' or 'none': {norm}")
    if token_valid not in ('all', 'any'):
        raise ValueError("token_valid must be 'all' or 'any'")
    if step_overflow not in ('invalid', 'clamp'):
        raise ValueError("step_overflow must be 'invalid' or 'clamp'")
    b, n, num, gh, gw, _ = disp.shape
    disp = disp.to(torch.float32)
    if scale_factor is None:
        scale = torch.ones(b, 2, device=disp.device)
    else:
        scale = torch.as_tensor(scale_factor, dtype=torch.float32,
                                device=disp.device).reshape(-1, 2).expand(
                                    b, 2)
    bound = (max_step * scale).reshape(b, 1, 1, 1, 1, 2)
    too_far = (disp.abs() > bound).any(-1).any(2)  # [B, N, gh, gw]
    if step_overflow == 'clamp':
        disp = torch.maximum(torch.minimum(disp, bound), -bound)
        too_far = torch.zeros_like(too_far)
    if reason is None:
        reason = torch.where(point_valid.bool(), 0,
                             1 + REJECT_REASONS.index('left_frame'))
    point_valid = point_valid.bool() & ~too_far
    # reject fractions per reason (each point counted for its first reason)
    reason = torch.where((reason == 0) & too_far,
                         1 + REJECT_REASONS.index('too_far'), reason.long())
    codes = torch.arange(1, len(REJECT_REASONS) + 1, device=disp.device)
    reject = (reason.reshape(b, -1, 1) == codes).float().mean(1)
    # motion magnitude of the valid points, decoded-video pixels
    length = (disp / scale.reshape(b, 1, 1, 1, 1, 2)).square().sum(-1)
    per_point = length.sqrt().mean(2)  # [B, N, gh, gw]
    count = point_valid.reshape(b, -1).sum(1)
    total = torch.where(point_valid, per_point, 0.).reshape(b, -1).sum(1)
    motion = torch.where(count > 0, total / count.clamp(min=1),
                         float('nan'))
    # tokens: [B, N, gh, gw, L, 2] -> [B, T, k, k, L, 2] -> [B, T, 2, L, kk]
    tok = grid_to_tokens(disp.permute(0, 1, 3, 4, 2, 5), k, axis=1)
    t = tok.shape[1]
    d = tok.permute(0, 1, 5, 4, 2, 3).reshape(b, t, 2, num, k * k)
    if norm == 'patch_std':
        d = patch_std_torch(d, std_eps)
    else:
        d = d / traj_scale
    target = d.reshape(b, t, -1)
    v = grid_to_tokens(point_valid, k, axis=1).reshape(b, t, k * k)
    tok_valid = v.all(-1) if token_valid == 'all' else v.any(-1)
    return dict(traj_target=target, traj_valid=tok_valid,
                traj_reject=reject, too_far=too_far, motion=motion,
                valid_fraction=tok_valid.float().mean(1),
                finite=torch.isfinite(target).reshape(b, -1).all(1))


def clip_targets_torch(flows: torch.Tensor,
                       grid_step: int = 8,
                       patch_size: int = 16,
                       size_wh: Optional[tuple] = None,
                       flows_bwd: Optional[torch.Tensor] = None,
                       grays: Optional[torch.Tensor] = None,
                       scale_factor: Optional[Scale] = None,
                       release_compat: bool = False,
                       reliability: Optional[dict] = None,
                       targets: Optional[dict] = None
                       ) -> Dict[str, torch.Tensor]:
    """Everything after the flow for B clips of N tubes: the chain
    ``ComputeTrajectories`` -> ``CheckTrajectoryReliability`` (skipped when
    ``reliability`` is None) -> ``BuildMMETargets`` (trajectory part).

    Args:
        flows (torch.Tensor): ``[B, N, L, h, w, 2]`` forward flows.
        grid_step (int): Point spacing. Defaults to 8.
        patch_size (int): ViT patch size. Defaults to 16.
        size_wh (tuple, optional): Frame (W, H). Defaults to the flows'.
        flows_bwd (torch.Tensor, optional): ``[B, N, L, h, w, 2]``.
        grays (torch.Tensor, optional): ``[B, N, L + 1, H, W]`` blurred grey
            frames (:func:`~mme_plugin.ops.tracking_torch.gray_blur_torch`).
        scale_factor: ``(2,)`` or ``[B, 2]``. Defaults to 1.
        release_compat (bool): The release's choices in all three steps.
            Defaults to False.
        reliability (dict, optional): Keyword arguments of
            :func:`~mme_plugin.ops.tracking_torch.reliability_torch` (the
            checker's settings); None = no reliability step.
        targets (dict, optional): Keyword arguments of
            :func:`traj_targets_torch`.

    Returns:
        dict: the outputs of :func:`traj_targets_torch` plus
        ``positions`` ``[B, N, L + 1, gh, gw, 2]``, ``in_frame``
        ``[B, N, gh, gw]`` and, with ``reliability``, ``reason``,
        ``cut_pairs``, ``fb``, ``photo``, ``cut`` (shaped ``[B, N, ...]``).
    """
    b, n, num, fh, fw = flows.shape[:5]
    w, h = size_wh if size_wh is not None else (fw, fh)
    start = grid_points_torch(h, w, grid_step, flows.device)

    def flat(x):
        return None if x is None else x.reshape(b * n, *x.shape[2:])

    pos, in_frame, disp = track_points_torch(flat(flows), start, (w, h),
                                             release_compat)
    valid, out, reason = in_frame, {}, None
    if reliability is not None:
        sf = None
        if scale_factor is not None:
            sf = torch.as_tensor(scale_factor, dtype=torch.float32,
                                 device=flows.device).reshape(-1, 2).expand(
                                     b, 2).repeat_interleave(n, 0)
        rel = reliability_torch(pos, in_frame, flat(flows), flat(flows_bwd),
                                flat(grays), (w, h), sf,
                                release_compat=release_compat, **reliability)
        valid, reason = rel['valid'], rel['reason']
        for key in ('reason', 'cut_pairs', 'fb', 'photo', 'cut'):
            out[key] = rel[key].reshape(b, n, *rel[key].shape[1:])
        reason = out['reason']

    def unflat(x):
        return x.reshape(b, n, *x.shape[1:])

    out.update(traj_targets_torch(
        unflat(disp), unflat(valid), patch_size // grid_step, reason,
        scale_factor, release_compat=release_compat, **(targets or {})))
    out['positions'] = unflat(pos)
    out['in_frame'] = unflat(in_frame)
    return out
