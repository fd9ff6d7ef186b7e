"""The low-label fine-tune read-out (mme_plugin/evaluation/low_label.py):
the seeded few-shot draw, and a fine-tune that learns a learnable task,
stays at chance on an unlearnable one and moves the encoder's weights."""
import pytest
import torch
from torch import nn

from mme_plugin.evaluation import few_shot_indices, finetune_classifier


def test_few_shot_draw_takes_k_of_every_class_seeded():
    labels = torch.arange(40) % 4  # 10 per class
    idx = few_shot_indices(labels, 3, seed=0)
    assert idx.tolist() == sorted(idx.tolist())
    assert torch.bincount(labels[idx]).tolist() == [3, 3, 3, 3]
    assert len(set(idx.tolist())) == 12
    assert torch.equal(idx, few_shot_indices(labels, 3, seed=0))
    assert not torch.equal(idx, few_shot_indices(labels, 3, seed=1))
    with pytest.raises(ValueError, match='class 2 has 1 labelled clips'):
        few_shot_indices(torch.tensor([0, 0, 1, 1, 2]), 2, seed=0)
    # a class absent from the pool is named, not silently left out
    with pytest.raises(ValueError, match='class 1 has 0 labelled clips'):
        few_shot_indices(torch.tensor([0, 0, 2, 2]), 1, 0, num_classes=3)
    assert len(few_shot_indices(torch.tensor([0, 0, 2, 2]), 1, 0)) == 2
    with pytest.raises(ValueError, match='per_class must be >= 1'):
        few_shot_indices(labels, 0, seed=0)


def _clips(n, classes, informative, seed):
    """``[n, 3, 2, 4, 4]`` clips; with ``informative`` the class is which
    channel is bright, else the labels are independent of the clips."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 3, 2, 4, 4, generator=gen)
    if informative:
        x[torch.arange(n), y] += 3.0
    else:
        y = y[torch.randperm(n, generator=gen)]
    return x, y


def _encoder():
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(1), nn.Linear(96, 32), nn.GELU(),
                         nn.LayerNorm(32))


def test_finetune_learns_a_learnable_task_from_5_per_class():
    xtr, ytr = _clips(15, 3, True, seed=0)
    xte, yte = _clips(300, 3, True, seed=1)
    enc = _encoder()
    before = enc[1].weight.detach().clone()
    out = finetune_classifier(enc, xtr, ytr, xte, yte, num_classes=3,
                              epochs=30, batch_size=5, seed=0)
    assert out['test_acc'] > 0.9
    assert out['train_acc'] == 1.0
    assert out['steps'] == 30 * 3
    # end to end: the encoder's own weights moved
    assert not torch.allclose(enc[1].weight, before)
    # same seed, same machine: the same numbers
    again = finetune_classifier(_encoder(), xtr, ytr, xte, yte,
                                num_classes=3, epochs=30, batch_size=5,
                                seed=0)
    assert again == out


def test_finetune_stays_at_chance_when_labels_carry_nothing():
    xtr, ytr = _clips(20, 4, False, seed=0)
    xte, yte = _clips(400, 4, False, seed=1)
    out = finetune_classifier(_encoder(), xtr, ytr, xte, yte, num_classes=4,
                              epochs=40, batch_size=5, seed=0)
    assert out['train_acc'] > 0.9  # memorised the few labels ...
    assert out['test_acc'] < 0.25 + 4 * (0.25 * 0.75 / 400) ** 0.5  # chance


def test_finetune_refuses_labels_outside_the_head():
    x, y = _clips(6, 3, True, seed=0)
    with pytest.raises(ValueError, match='num_classes'):
        finetune_classifier(_encoder(), x, y, x, y, num_classes=2)
    with pytest.raises(ValueError, match='no labelled clips'):
        finetune_classifier(_encoder(), x[:0], y[:0], x, y, num_classes=3)
