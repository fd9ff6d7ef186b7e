"""The MME reconstruction loss over masked (and valid) tokens."""
from typing import Dict, Optional

import torch
from torch import Tensor, nn

from mme_plugin.registry import MODELS

__all__ = ['MMELoss', 'NoValidTargetsError']


class NoValidTargetsError(RuntimeError):
    """A batch has no valid masked token for a weighted target."""


@MODELS.register_module()
class MMELoss(nn.Module):
    """Weighted MSE per target over masked tokens with valid targets.

    For each target ``k``: ``loss_k = w_k * sum_tokens(valid * mean_d (pred -
    target)^2) / sum_tokens(valid)`` over the masked tokens of the batch.

    Release (release spec 4.3): squared errors are summed over feature dims
    and the trajectory term is divided by ALL masked tokens, valid or not, so
    a batch with few valid trajectories gets a small loss instead of an
    average one; the total is ``(L_traj + L_hog) / 2``. ``release_compat=True``
    reproduces that (sum over dims, all-masked denominator); ``weights`` give
    the 1/2.

    Args:
        weights (dict[str, float]): Weight per target name. Defaults to
            ``dict(traj=1.0, hog=1.0)``.
        release_compat (bool): Released reduction. Defaults to False.
    """

    #: Raise at once for an empty target on the CPU (False: the
    #: accelerator schedule, the model's deferred check; tests).
    eager_cpu_check = True

    def __init__(self, weights: Dict[str, float] = dict(traj=1.0, hog=1.0),
                 release_compat: bool = False) -> None:
        super().__init__()
        self.weights = dict(weights)
        self.release_compat = release_compat

    def forward(self, preds: Dict[str, Tensor], targets: Dict[str, Tensor],
                valids: Dict[str, Optional[Tensor]]) -> Dict[str, Tensor]:
        """Compute the loss terms.

        Args:
            preds (dict[str, Tensor]): ``[M, D]`` predictions per target.
            targets (dict[str, Tensor]): ``[M, D]`` targets per target.
            valids (dict[str, Tensor | None]): ``[M]`` bool validity per
                target; None = all valid.

        Returns:
            dict[str, Tensor]: ``loss_<name>`` per weighted target.
        """
        losses = {}
        for name, weight in self.weights.items():
            if weight == 0:
                continue
            pred, target = preds[name].float(), targets[name].float()
            if pred.shape != target.shape:
                raise ValueError(f'{name}: prediction {tuple(pred.shape)} vs '
                                 f'target {tuple(target.shape)}')
            err = (pred - target).pow(2)
            err = err.sum(-1) if self.release_compat else err.mean(-1)
            valid = valids.get(name)
            if valid is None:
                valid = torch.ones_like(err, dtype=torch.bool)
            valid = valid.to(err.dtype)
            num_valid = valid.sum()
            # On the CPU checked here; on an accelerator (where reading it
            # is a host sync) the MME model checks it every few batches, and
            # an empty batch gives 0 instead of 0 / 0 meanwhile.
            if self.eager_cpu_check and num_valid.device.type == 'cpu' \
                    and num_valid == 0:
                raise NoValidTargetsError(
                    f'no masked token of this batch has a valid {name} '
                    'target; refusing to train on an empty target (the '
                    'release silently does). Check the flow / cache.')
            denom = err.new_full((), float(err.numel())) \
                if self.release_compat else num_valid.clamp(min=1)
            losses[f'loss_{name}'] = weight * (err * valid).sum() / denom
        return losses
