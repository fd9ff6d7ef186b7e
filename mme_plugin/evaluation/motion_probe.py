"""A motion-regression probe: ridge regression from frozen encoder
features to the synthetic clips' exact motion (issue #22's read-out).

The logistic probe asks whether the features separate the 8 motion classes;
this one asks how much of each clip's velocity ``(vx, vy, rotation, scale
rate)`` from the generator
(:func:`mme_plugin.datasets.synthetic.clip_velocity`) they carry linearly.
Most of that variance is the class (knowing the class alone explains about
95 % of vx), so the probe also reports a within-class score: the same
regression on the velocities minus their class's train mean, i.e. the
speed the labels do not give.

Each target gets its own ridge strength, chosen on the train set alone by
exact leave-one-out error: for ridge with a centred intercept the LOO
residual is ``e_i / (1 - h_ii)`` with ``h_ii = 1/n + x_i^T (X^T X + a
I)^-1 x_i`` (Hastie, Tibshirani and Friedman, *The Elements of Statistical
Learning*, 2nd ed., section 7.10 and eq. 7.52), so nothing is tuned on the
test clips. The score is the coefficient of determination on the test
clips (1 = exact, 0 = no better than the test mean, negative = worse; NaN
for a target that does not vary on the test clips).
"""
import math
import warnings
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['VELOCITY_NAMES', 'ALPHAS', 'ridge_r2']

#: The components of :func:`~mme_plugin.datasets.synthetic.clip_velocity`.
VELOCITY_NAMES = ('vx', 'vy', 'rotation', 'scale_rate')

#: Ridge strengths tried (on standardised features), by LOO on train:
#: three per decade from 1e-2 to 1e6.
ALPHAS = tuple(10.0**(k / 3) for k in range(-6, 19))


#: ``torch.linalg.svd(x, full_matrices=False)`` of the train features:
#: ``(U, S, Vh)``, computed once per probe and shared by every fit.
SVD = Tuple[Tensor, Tensor, Tensor]


def _loo_errors(svd: SVD, y: Tensor, alphas: Sequence[float]) -> Tensor:
    """Exact leave-one-out mean squared error of ridge with an intercept,
    per strength and target.

    Args:
        svd (SVD): Of the ``[N, C]`` centred (standardised) train features,
            float64.
        y (Tensor): ``[N, K]`` targets, float64.
        alphas (Sequence[float]): Strengths.

    Returns:
        Tensor: ``[len(alphas), K]``.
    """
    u, s, _ = svd
    n = u.shape[0]
    yc = y - y.mean(0)
    # x = U S V^T: fit U diag(s^2 / (s^2 + a)) U^T y; the intercept (the
    # train mean) adds 1/n to every leverage
    uty = u.T @ yc
    loo = []
    for a in alphas:
        shrink = s**2 / (s**2 + a)
        fit = u @ (shrink[:, None] * uty)
        hat = (1.0 / n + (u**2 * shrink).sum(1)).clamp(max=1 - 1e-9)
        loo.append((((yc - fit) / (1 - hat)[:, None])**2).mean(0))
    return torch.stack(loo)


def _fit_score(svd: SVD, y: Tensor, xt: Tensor, yt: Tensor,
               alphas: Sequence[float]) -> Tuple[Tensor, Tensor]:
    """Per-column ridge (strength by exact LOO on the train set), scored on
    ``xt, yt``.

    Args:
        svd (SVD): Of the ``[N, C]`` standardised train features (float64).
        y (Tensor): ``[N, K]`` train targets (float64).
        xt (Tensor): ``[M, C]`` test features, standardised as ``x``.
        yt (Tensor): ``[M, K]`` test targets.
        alphas (Sequence[float]): Strengths to choose from.

    Returns:
        tuple[Tensor, Tensor]: ``[K]`` test R^2 and ``[K]`` chosen
        strengths.
    """
    u, s, vh = svd
    ymu = y.mean(0)
    uty = u.T @ (y - ymu)
    best = _loo_errors(svd, y, alphas).argmin(0)  # [K]
    chosen = torch.tensor([alphas[int(i)] for i in best], dtype=y.dtype)
    # coefficients per column: V diag(s / (s^2 + a_k)) U^T y_k
    coef = vh.T @ ((s[:, None] / (s[:, None]**2 + chosen[None])) * uty)
    pred = xt @ coef + ymu
    sse = ((yt - pred)**2).sum(0)
    sst = ((yt - yt.mean(0))**2).sum(0)
    r2 = torch.where(sst > 0, 1 - sse / sst.clamp(min=1e-300),
                     torch.full_like(sst, float('nan')))
    return r2, chosen


def _nanmean(values) -> float:
    vals = [float(v) for v in values if not math.isnan(float(v))]
    return sum(vals) / len(vals) if vals else float('nan')


def ridge_r2(train_x: Tensor,
             train_y: Tensor,
             test_x: Tensor,
             test_y: Tensor,
             alphas: Sequence[float] = ALPHAS,
             names: Sequence[str] = VELOCITY_NAMES,
             train_groups: Optional[Tensor] = None,
             test_groups: Optional[Tensor] = None) -> Dict[str, float]:
    """Fit ridge regression (features standardised on train, intercept =
    train mean, a strength per target by leave-one-out on train) and score
    it on test.

    Args:
        train_x (Tensor): ``[N, C]`` train features.
        train_y (Tensor): ``[N, K]`` train targets.
        test_x (Tensor): ``[M, C]`` test features.
        test_y (Tensor): ``[M, K]`` test targets.
        alphas (Sequence[float]): Ridge strengths to choose from. Defaults
            to :data:`ALPHAS`.
        names (Sequence[str]): The ``K`` targets' names. Defaults to
            :data:`VELOCITY_NAMES`.
        train_groups (Tensor, optional): ``[N]`` class of each train
            sample; with ``test_groups``, also the within-class score.
        test_groups (Tensor, optional): ``[M]`` class of each test sample.

    Returns:
        dict: ``r2_<name>`` and ``ridge_alpha_<name>`` per target,
        ``motion_r2`` (the mean R^2), ``translation_r2`` (mean of ``vx``
        and ``vy`` where both are named) and, with groups,
        ``within_class_r2``: the mean R^2 of the same regression on the
        targets minus their class's train mean (classes absent from train
        use the overall train mean).

    Raises:
        ValueError: The targets' columns do not match ``names``, or the
            feature and target counts differ.
    """
    if train_y.shape[1] != len(names) or test_y.shape[1] != len(names):
        raise ValueError(f'targets have {train_y.shape[1]} / '
                         f'{test_y.shape[1]} columns, names {len(names)}')
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError(f'{len(train_x)} / {len(test_x)} feature rows for '
                         f'{len(train_y)} / {len(test_y)} targets')
    x = train_x.double()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x = (x - mu) / sd
    xt = (test_x.double() - mu) / sd
    y, yt = train_y.double(), test_y.double()
    svd = torch.linalg.svd(x, full_matrices=False)
    r2, chosen = _fit_score(svd, y, xt, yt, alphas)
    # the largest strength is the "features carry nothing" end (the fit is
    # the train mean); the smallest means the grid may be too narrow
    if float(chosen.min()) <= min(alphas):
        warnings.warn('ridge_r2: the smallest strength was chosen '
                      f'({chosen.tolist()}); extend `alphas` downwards')
    out = {f'r2_{n}': float(v) for n, v in zip(names, r2)}
    out.update({f'ridge_alpha_{n}': float(a) for n, a in zip(names, chosen)})
    out['motion_r2'] = _nanmean(r2)
    if 'vx' in names and 'vy' in names:
        out['translation_r2'] = _nanmean([out['r2_vx'], out['r2_vy']])
    if train_groups is not None and test_groups is not None:
        overall = y.mean(0)
        means = {int(g): y[train_groups == g].mean(0)
                 for g in train_groups.unique()}
        off = torch.stack([means.get(int(g), overall) for g in train_groups])
        off_t = torch.stack([means.get(int(g), overall) for g in test_groups])
        wr2, _ = _fit_score(svd, y - off, xt, yt - off_t, alphas)
        out['within_class_r2'] = _nanmean(wr2)
    return out
