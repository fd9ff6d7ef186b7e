"""Finding and editing pipeline transforms by type (mme_plugin.utils)."""
import pytest
from mmengine.config import Config

from mme_plugin.utils import (edit_transform, find_transform, pipeline_key,
                              pipeline_option, transform_index,
                              transform_type)

from .conftest import REPO


def test_transforms_are_found_by_type_not_position():
    steps = Config.fromfile(
        f'{REPO}/configs/mme/pretrain_k400.py').train_dataloader.dataset.\
        pipeline
    i = transform_index(steps, 'ComputeFlow')
    assert steps[i]['type'] == 'ComputeFlow'
    assert find_transform(steps, 'ComputeFlow') is steps[i]
    assert pipeline_key(steps, 'ComputeFlow', 'cache_dir') == \
        f'train_dataloader.dataset.pipeline.{i}.cache_dir'
    assert pipeline_option(steps, 'ComputeFlow', 'cache_dir', '/c') == \
        f'train_dataloader.dataset.pipeline.{i}.cache_dir=/c'
    # a scope prefix is ignored
    scoped = [dict(type='mmaction.Resize'), dict(type='Flip')]
    assert transform_index(scoped, 'Resize') == 0
    assert transform_type(scoped[0]) == 'Resize'


def test_missing_or_ambiguous_types_are_errors():
    steps = [dict(type='Resize'), dict(type='Resize'), dict(type='Flip')]
    with pytest.raises(KeyError, match='2 Resize transforms'):
        transform_index(steps, 'Resize')
    with pytest.raises(KeyError, match="no CenterCrop.*'Flip'"):
        transform_index(steps, 'CenterCrop')
    assert transform_index(steps, 'CenterCrop', required=False) is None
    assert find_transform(steps, 'CenterCrop', required=False) is None


def test_edit_transform_returns_an_edited_copy():
    steps = [dict(type='Resize', scale=(1, 1)), dict(type='Flip')]
    out = edit_transform(steps, 'Resize', scale=(2, 2))
    assert out[0] == dict(type='Resize', scale=(2, 2))
    assert steps[0]['scale'] == (1, 1)  # the input is untouched
    assert out[1] == steps[1] and out[1] is not steps[1]
