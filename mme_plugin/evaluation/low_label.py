"""A low-label fine-tune: the whole encoder plus a linear head trained end to
end on a few labelled clips per class, scored on the test clips.

The read-out the semi-supervised tables of VideoMAE and MME stand for (their
1 % / 10 % label splits of UCF101 and K400), scaled to the built-in
benchmark: what a pretrained initialisation is worth when labels are
scarce, next to random init. Unlike the frozen probes it lets the
pretraining's weights move, so an encoder whose pooled output is nearly
constant (collapse) can still score if its inner weights help.

The recipe is fixed before any result (no tuning on the test clips),
adapted from the supervised baseline's
(``configs/recognition/tiny-vit_synthetic.py``: AdamW lr 1e-3, betas 0.9 /
0.999, weight decay 0.05, gradient norm clipped at 5, warm-up then cosine
to 1 % of the lr) with two differences: no weight decay on biases, norms
and position embeddings (the fine-tune recipes' custom), and a warm-up
over the first tenth of the steps (linear from lr / warm-up steps, a
tenth at 100 steps) instead of 3 of 40 epochs (from 1 %). No
augmentation: the clips are the one-view val pipeline's.
"""
import math
from typing import Dict, List, Optional, Union

import torch
from torch import Tensor, nn

__all__ = ['few_shot_indices', 'finetune_classifier']


def few_shot_indices(labels: Tensor, per_class: int, seed: int,
                     num_classes: Optional[int] = None) -> Tensor:
    """A seeded draw of ``per_class`` samples of every class.

    Args:
        labels (Tensor): ``[N]`` int labels of the labelled pool.
        per_class (int): Samples per class (>= 1).
        seed (int): The draw's seed (each seed its own subset).
        num_classes (int, optional): Classes ``0 .. num_classes - 1`` that
            must all be drawn from (a class missing from the pool is an
            error). Defaults to the classes present.

    Returns:
        Tensor: ``[classes * per_class]`` sorted int64 indices into
        ``labels``.

    Raises:
        ValueError: ``per_class`` < 1, or a class has fewer samples (names
            the class and its count).
    """
    if per_class < 1:
        raise ValueError(f'per_class must be >= 1, got {per_class}')
    gen = torch.Generator().manual_seed(seed)
    picked: List[Tensor] = []
    classes = (torch.unique(labels).tolist() if num_classes is None else
               range(num_classes))
    for c in classes:
        pool = torch.nonzero(labels == c).flatten()
        if len(pool) < per_class:
            raise ValueError(
                f'class {c} has {len(pool)} labelled clips, fewer than the '
                f'{per_class} per class asked; generate more train clips '
                '(tools/synthetic_benchmark.py --train-per-class, or '
                'tools/data/make_synthetic.py --train) or ask fewer')
        picked.append(pool[torch.randperm(len(pool), generator=gen)
                           [:per_class]])
    return torch.sort(torch.cat(picked)).values


def _param_groups(model: nn.Module, weight_decay: float) -> List[Dict]:
    """Weight decay on matrices only (not biases, norms, embeddings)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or 'pos_embed' in name or
         'cls_token' in name else decay).append(p)
    return [dict(params=decay, weight_decay=weight_decay),
            dict(params=no_decay, weight_decay=0.0)]


@torch.no_grad()
def _accuracy(model: nn.Module, x: Tensor, y: Tensor,
              batch_size: int) -> float:
    model.eval()
    hits = sum(int((model(x[i:i + batch_size]).argmax(1) ==
                    y[i:i + batch_size]).sum())
               for i in range(0, len(x), batch_size))
    return hits / len(x)


def finetune_classifier(backbone: nn.Module, train_x: Tensor,
                        train_y: Tensor, test_x: Tensor, test_y: Tensor,
                        num_classes: int, epochs: int = 20,
                        batch_size: int = 8, lr: float = 1e-3,
                        weight_decay: float = 0.05,
                        seed: int = 0) -> Dict[str, Union[int, float]]:
    """Fine-tune ``backbone`` + a linear head end to end, then score it.

    ``backbone`` is trained in place (pass a fresh copy). Deterministic for
    a seed on one machine (head init and batch order from ``seed``); it
    reseeds torch's global generator with ``seed`` (for the head's init
    and any dropout).

    Args:
        backbone (nn.Module): Maps ``[B, 3, T, H, W]`` normalised clips to
            pooled ``[B, C]`` features (e.g. mmaction's
            ``VisionTransformer`` with mean pooling).
        train_x (Tensor): ``[N, 3, T, H, W]`` labelled clips.
        train_y (Tensor): ``[N]`` their labels.
        test_x (Tensor): ``[M, 3, T, H, W]`` test clips.
        test_y (Tensor): ``[M]`` their labels.
        num_classes (int): Classes of the head.
        epochs (int): Passes over the labelled clips. Defaults to 20.
        batch_size (int): Defaults to 8.
        lr (float): Peak AdamW lr. Defaults to 1e-3.
        weight_decay (float): On weight matrices. Defaults to 0.05.
        seed (int): Head init and batch order. Defaults to 0.

    Returns:
        dict: ``train_acc`` and ``test_acc`` (fractions, after the last
        step), ``steps`` and ``final_loss`` (mean over the last epoch).

    Raises:
        ValueError: No labelled clips, or a label outside the head.
    """
    if len(train_x) == 0:
        raise ValueError('finetune_classifier: no labelled clips')
    if int(max(train_y.max(), test_y.max())) >= num_classes:
        raise ValueError(f'a label is >= num_classes ({num_classes})')
    torch.manual_seed(seed)
    with torch.no_grad():
        dim = backbone(train_x[:1]).flatten(1).shape[1]
    model = nn.Sequential(backbone, nn.Flatten(1),
                          nn.Linear(dim, num_classes))
    opt = torch.optim.AdamW(_param_groups(model, weight_decay), lr=lr,
                            betas=(0.9, 0.999))
    per_epoch = math.ceil(len(train_x) / batch_size)
    steps = epochs * per_epoch
    warm = max(1, steps // 10)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, steps - warm)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    gen = torch.Generator().manual_seed(seed)
    losses: List[float] = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=gen)
        losses = []
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = nn.functional.cross_entropy(model(train_x[idx]),
                                               train_y[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
    return dict(train_acc=_accuracy(model, train_x, train_y, 4 * batch_size),
                test_acc=_accuracy(model, test_x, test_y, 4 * batch_size),
                steps=steps, final_loss=sum(losses) / len(losses))
