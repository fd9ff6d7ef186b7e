"""One state-dict comparison behind both checkpoint checks (issue #23.2):
:func:`diff_state_dicts` known answers, the converters' ``verify_state_dict``
and the runner's ``check_checkpoint_fits`` reporting a mismatch the same way,
and no engine -> converter import left."""
import ast
import os.path as osp

import pytest
import torch
from torch import nn

from mme_plugin.utils.state_diff import (CheckpointMismatchError,
                                         ShapeMismatch, diff_state_dicts)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


class _Net(nn.Module):
    """backbone.{fc, table (buffer)} + cls_head.fc."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.fc = nn.Linear(width, 3)
        self.backbone.register_buffer('table', torch.zeros(2, width))
        self.cls_head = nn.Module()
        self.cls_head.fc = nn.Linear(3, 2)


def test_diff_known_answer():
    expected = {'a': torch.zeros(2), 'b': torch.zeros(3, 1),
                'c': torch.zeros(1), 'extra': object()}
    given = {'z': torch.zeros(1), 'b': torch.zeros(1, 3), 'a': torch.ones(2),
             'extra': torch.zeros(5)}
    d = diff_state_dicts(expected, given)
    assert d.missing == ['c']
    assert d.unexpected == ['z']
    assert d.mismatched == [ShapeMismatch('b', (1, 3), (3, 1))]
    assert d.matched == 3
    assert d.mismatch_lines() == ['b: checkpoint (1, 3) vs model (3, 1)']
    assert d.missing_under('c') == ['c'] and d.missing_under('a') == []
    assert d.missing_in({'a', 'b'}) == []


def test_identical_dicts_have_no_difference():
    state = _Net().state_dict()
    d = diff_state_dicts(state, dict(state))
    assert (d.missing, d.unexpected, d.mismatched) == ([], [], [])
    assert d.matched == len(state)


def test_both_checks_report_a_shape_mismatch_with_the_same_line():
    from mme_plugin.checkpoint import verify_state_dict
    from mme_plugin.engine.checkpoint_fit import check_checkpoint_fits
    model = _Net(4)
    state = _Net(5).state_dict()
    line = ('backbone.fc.weight: checkpoint (3, 5) vs model (3, 4)')
    with pytest.raises(CheckpointMismatchError) as a:
        verify_state_dict(dict(state), model, source='x.pth')
    with pytest.raises(CheckpointMismatchError) as b:
        check_checkpoint_fits(model, dict(state), 'x.pth')
    assert line in str(a.value) and line in str(b.value)
    assert 'backbone.table' in str(a.value)  # buffer shape differs too


def test_checks_differ_only_in_what_they_refuse():
    """The runner check ignores missing buffers and (unless testing) a
    missing classifier; the converter check fills the buffers."""
    from mme_plugin.checkpoint import verify_state_dict
    from mme_plugin.engine.checkpoint_fit import check_checkpoint_fits
    model = _Net()
    backbone = {k: v for k, v in model.state_dict().items()
                if k.startswith('backbone.fc')}
    check_checkpoint_fits(model, dict(backbone), 'x.pth')  # no error
    with pytest.raises(CheckpointMismatchError, match='no classifier'):
        check_checkpoint_fits(model, dict(backbone), 'x.pth',
                              require_all=True)
    state = dict(backbone)
    missing, unexpected, filled = verify_state_dict(state, model)
    assert filled == ['backbone.table'] and 'backbone.table' in state
    assert missing == ['cls_head.fc.weight', 'cls_head.fc.bias']
    assert unexpected == []
    with pytest.raises(CheckpointMismatchError,
                       match='none of its 1 keys is a model key'):
        check_checkpoint_fits(model, {'encoder.x': torch.zeros(1)}, 'x.pth')


def test_mismatch_error_is_one_class():
    from mme_plugin import checkpoint, checkpoint_layout
    assert checkpoint.CheckpointMismatchError is CheckpointMismatchError
    with pytest.raises(checkpoint.CheckpointMismatchError):
        checkpoint_layout.CheckpointLayout.from_meta({'version': 99})


@pytest.mark.parametrize('path', ['mme_plugin/engine/checkpoint_fit.py',
                                  'mme_plugin/checkpoint_layout.py'])
def test_no_import_of_the_converters(path):
    """The engine check and the layout module do not import
    mme_plugin.checkpoint (the back-reference issue #23 names)."""
    with open(osp.join(ROOT, path)) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add(('.' * node.level) + (node.module or ''))
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    assert not {'mme_plugin.checkpoint', '.checkpoint',
                '..checkpoint'} & names, names
