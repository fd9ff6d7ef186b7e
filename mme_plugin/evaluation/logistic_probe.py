"""An exact linear probe: multinomial logistic regression on frozen,
mean-pooled encoder features (the standard fast probe of self-supervised
features; no augmentation, no schedule to tune)."""
from typing import Dict, Tuple

import torch
from torch import Tensor

__all__ = ['MEAN', 'STD', 'load_clips', 'encode_clips', 'extract_features',
           'logistic_probe']


#: The recipes' ``data_preprocessor`` normalisation (ImageNet RGB, 0-255).
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def load_clips(dataset, batch_size: int = 16) -> Tuple[Tensor, Tensor]:
    """Every sample's first clip, normalised as the recipes'
    ``data_preprocessor`` does, and its label: decode once, reuse for many
    encoders.

    Args:
        dataset (Dataset): Yields mmaction packed samples (``inputs``
            ``[views, 3, T, H, W]`` uint8 or float, ``gt_label``).
        batch_size (int): Samples decoded per step. Defaults to 16.

    Returns:
        tuple[Tensor, Tensor]: ``[N, 3, T, H, W]`` float clips and ``[N]``
        labels.
    """
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader
    mean = torch.tensor(MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1, 1)
    clips, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size,
                            collate_fn=pseudo_collate):
        x = torch.stack([i[0] for i in batch['inputs']]).float()
        clips.append((x - mean) / std)
        labels += [int(s.gt_label) for s in batch['data_samples']]
    return torch.cat(clips), torch.tensor(labels)


@torch.no_grad()
def encode_clips(backbone, clips: Tensor, batch_size: int = 16) -> Tensor:
    """Pooled features of normalised clips (the backbone's unmasked forward,
    e.g. mmaction's ``VisionTransformer``: mean over tokens + ``fc_norm``).

    Args:
        backbone (nn.Module): Encoder; put in eval mode here.
        clips (Tensor): ``[N, 3, T, H, W]`` from :func:`load_clips`.
        batch_size (int): Defaults to 16.

    Returns:
        Tensor: ``[N, C]`` float features.
    """
    backbone.eval()
    return torch.cat([backbone(clips[i:i + batch_size]).flatten(1)
                      for i in range(0, len(clips), batch_size)])


def extract_features(backbone, dataset, batch_size: int = 16
                     ) -> Tuple[Tensor, Tensor]:
    """Pooled features (:func:`encode_clips`) and labels of every sample of
    ``dataset`` (its first clip, :func:`load_clips`).

    Args:
        backbone (nn.Module): Encoder; put in eval mode here.
        dataset (Dataset): Yields mmaction packed samples.
        batch_size (int): Defaults to 16.

    Returns:
        tuple[Tensor, Tensor]: ``[N, C]`` float features, ``[N]`` labels.
    """
    clips, labels = load_clips(dataset, batch_size)
    return encode_clips(backbone, clips, batch_size), labels


def logistic_probe(train_x: Tensor, train_y: Tensor, test_x: Tensor,
                   test_y: Tensor, l2: float = 1e-3,
                   max_iter: int = 500) -> Dict[str, float]:
    """Fit an L2-regularised multinomial logistic regression (L-BFGS to
    convergence, features standardised on the train set) and score it.

    Args:
        train_x (Tensor): ``[N, C]`` train features.
        train_y (Tensor): ``[N]`` train labels.
        test_x (Tensor): ``[M, C]`` test features.
        test_y (Tensor): ``[M]`` test labels.
        l2 (float): Weight decay on the weights. Defaults to 1e-3.
        max_iter (int): L-BFGS iterations. Defaults to 500.

    Returns:
        dict: ``train_acc`` and ``test_acc`` (fractions).
    """
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    xtr = ((train_x - mu) / sd).double()
    xte = ((test_x - mu) / sd).double()
    k = int(max(train_y.max(), test_y.max())) + 1
    w = torch.zeros(xtr.shape[1], k, dtype=torch.double, requires_grad=True)
    b = torch.zeros(k, dtype=torch.double, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter,
                            line_search_fn='strong_wolfe',
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xtr @ w + b, train_y) + \
            l2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return dict(
            train_acc=float(((xtr @ w + b).argmax(1) == train_y).double()
                            .mean()),
            test_acc=float(((xte @ w + b).argmax(1) == test_y).double()
                           .mean()))
