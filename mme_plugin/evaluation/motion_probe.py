"""A motion-regression probe: ridge regression from frozen encoder
features to the synthetic clips' exact motion (issue #22's read-out).

The logistic probe asks whether the features separate the 8 motion classes;
this one asks whether they carry the motion itself: each clip's velocity
``(vx, vy, rotation, scale rate)`` from the generator
(:func:`mme_plugin.datasets.synthetic.clip_velocity`). The ridge strength is
chosen on the train set alone by exact leave-one-out error (for ridge the
LOO residual is ``e_i / (1 - h_ii)``; Hastie, Tibshirani and Friedman, *The
Elements of Statistical Learning*, 2nd ed., eq. 7.52), so nothing is tuned
on the test clips. The score is the coefficient of determination on the
test clips, per component (1 = exact, 0 = no better than predicting the
test mean, negative = worse).
"""
from typing import Dict, Sequence

import torch
from torch import Tensor

__all__ = ['VELOCITY_NAMES', 'ridge_r2']

#: The components of :func:`~mme_plugin.datasets.synthetic.clip_velocity`.
VELOCITY_NAMES = ('vx', 'vy', 'rotation', 'scale_rate')

#: Ridge strengths tried (on standardised features), by LOO on train.
ALPHAS = tuple(10.0**k for k in range(-2, 6))


def ridge_r2(train_x: Tensor, train_y: Tensor, test_x: Tensor,
             test_y: Tensor, alphas: Sequence[float] = ALPHAS,
             names: Sequence[str] = VELOCITY_NAMES) -> Dict[str, float]:
    """Fit ridge regression (features standardised on train, targets
    centred on train, strength by leave-one-out on train) and score it on
    test.

    Args:
        train_x: ``[N, C]`` train features.
        train_y: ``[N, K]`` train targets.
        test_x: ``[M, C]`` test features.
        test_y: ``[M, K]`` test targets.
        alphas: Ridge strengths to choose from.
        names: The ``K`` targets' names.

    Returns:
        dict: ``r2_<name>`` per target, ``motion_r2`` (their mean),
        ``translation_r2`` (mean of ``vx`` and ``vy`` where both are
        named) and ``ridge_alpha`` (the chosen strength).
    """
    if train_y.shape[1] != len(names) or test_y.shape[1] != len(names):
        raise ValueError(f'targets have {train_y.shape[1]} / '
                         f'{test_y.shape[1]} columns, names {len(names)}')
    x = train_x.double()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x = (x - mu) / sd
    xt = (test_x.double() - mu) / sd
    ymu = train_y.double().mean(0)
    y = train_y.double() - ymu
    # x = U S V^T: ridge fit U diag(s^2 / (s^2 + a)) U^T y, hat diagonal
    # sum_j U_ij^2 s_j^2 / (s_j^2 + a)
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    uty = u.T @ y
    best = None
    for a in alphas:
        shrink = s**2 / (s**2 + a)
        fit = u @ (shrink[:, None] * uty)
        hat = (u**2 * shrink).sum(1).clamp(max=1 - 1e-9)
        loo = (((y - fit) / (1 - hat)[:, None])**2).mean()
        if best is None or loo < best[0]:
            best = (float(loo), a)
    a = best[1]
    coef = vh.T @ ((s / (s**2 + a))[:, None] * uty)
    pred = xt @ coef + ymu
    ty = test_y.double()
    sse = ((ty - pred)**2).sum(0)
    sst = ((ty - ty.mean(0))**2).sum(0).clamp(min=1e-12)
    r2 = 1 - sse / sst
    out = {f'r2_{n}': float(v) for n, v in zip(names, r2)}
    out['motion_r2'] = float(r2.mean())
    if 'vx' in names and 'vy' in names:
        out['translation_r2'] = (out['r2_vx'] + out['r2_vy']) / 2
    out['ridge_alpha'] = float(a)
    return out
