"""TubeMasking: tube masking (one spatial mask for every time slice) and
random masking (a new one per slice), both with a fixed token count."""
import numpy as np
import pytest
import torch

from mme_plugin.datasets.transforms import TubeMasking


def _mask(mode, seed=0, ratio=0.75):
    np.random.seed(seed)
    res = TubeMasking(mask_ratio=ratio, patch_size=8, mode=mode)(
        dict(img_shape=(32, 48), imgs=[None] * 8))  # 4 x 6 patches, 4 slices
    return res


def test_tube_mask_repeats_one_spatial_mask_with_the_release_count():
    res = _mask('tube')
    mask = res['mask'].view(4, 24)
    assert all(torch.equal(mask[0], m) for m in mask)
    assert int(mask[0].sum()) == int(0.75 * 24) == 18
    assert torch.equal(res['masked_idx'], torch.nonzero(res['mask'])[:, 0])
    assert torch.equal(res['visible_idx'],
                       torch.nonzero(~res['mask'])[:, 0])
    # the same draw as before the random mode existed: one permutation of
    # the frame's patches from numpy's global generator
    np.random.seed(0)
    frame = np.zeros(24, bool)
    frame[np.random.permutation(24)[:18]] = True
    assert np.array_equal(res['mask'].numpy(), np.tile(frame, 4))


def test_random_mask_draws_each_slice_with_the_same_count():
    res = _mask('random')
    mask = res['mask'].view(4, 24)
    assert mask.sum(1).tolist() == [18] * 4
    assert not all(torch.equal(mask[0], m) for m in mask)
    # every sample masks the same number of tokens (the model gathers them)
    for seed in range(5):
        assert len(_mask('random', seed)['masked_idx']) == 72
    assert torch.equal(res['masked_idx'], torch.nonzero(res['mask'])[:, 0])


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="one of \\('tube', 'random'\\), "
                       "got 'frame'"):
        TubeMasking(mode='frame')
