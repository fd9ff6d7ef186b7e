"""Checkpoint conversion derives the decoder heads' layouts (issue #19).

Every shipped pretraining config is built (no training), its state dict
converted to the official layout and back: exactly (same keys,
``torch.equal``) where the official format holds its heads, and otherwise a
refusal naming the head, its derived layout and why, plus an exact
layout-preserving round trip. The reviewer's case: the tiny configs' gray,
trajectory-mode HOG head of 180 rows used to be cut to 162 rows, exit 0.
"""
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mme_plugin.checkpoint import (LAYOUT_KEY, CheckpointMismatchError,
                                   convert_mmaction_to_official,
                                   convert_official_to_mmaction,
                                   hog_head_permutation, infer_layout,
                                   layout_from_config, mmaction_to_official,
                                   official_to_mmaction)
from mme_plugin.checkpoint_layout import HOGLayout, official_problems

from .conftest import REPO
from .test_checkpoint import OfficialPretrain, _our_pretrain, _recognizer

PRETRAIN_CONFIGS = [
    'pretrain_k400.py', 'pretrain_k400_worker.py', 'pretrain_k400_dis.py',
    'pretrain_k400_dis_rep2.py', 'pretrain_ssv2.py',
    'pretrain_tiny_synthetic.py', 'pretrain_tiny_synthetic_device.py',
    'pretrain_tiny_synthetic_absdisp.py', 'videomae_tiny_synthetic.py',
    'pixel_traj_tiny_synthetic.py', 'hog_tiny_synthetic.py'
]
#: The release's static RGB HOG (release spec 2.7) on two shipped configs.
STATIC_RGB = dict(mode='static', channels='rgb')


def _tool(name):
    path = osp.join(REPO, 'tools', 'convert', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(name, hog=None):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'mme', name))
    if hog is not None:
        cfg.model.targets.hog.update(hog)
        cfg.model.targets.hog.pop('device_hog', None)
    return cfg


def _distinct_state(model):
    """The model's state dict with every parameter random (so that a row or
    key mix-up changes a value); buffers (the fixed tables) kept."""
    torch.manual_seed(0)
    buffers = {k for k, _ in model.named_buffers()}
    return {k: v.clone() if k in buffers else torch.randn_like(v)
            for k, v in model.state_dict().items()}


def _assert_same(got, want):
    assert set(got) == set(want), set(got) ^ set(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k


def _round_trip(state, layout, preserve):
    conv = convert_mmaction_to_official(state, 'encoder.', layout=layout,
                                        preserve_layout=preserve)
    # every input key written or dropped on purpose with a reason
    assert set(conv.sources.values()) | set(conv.dropped) == set(state)
    back = convert_official_to_mmaction(conv.state, keep_decoder=True,
                                        meta=conv.meta)
    _assert_same(back.state, state)
    return conv


@pytest.mark.parametrize('name', PRETRAIN_CONFIGS)
def test_shipped_pretraining_config_round_trips_or_is_refused(name):
    layout, model = layout_from_config(_config(name))
    state = _distinct_state(model)
    del model
    # the layout is the model's: each head's rows are what the config says
    for head in layout.heads:
        rows = [v.shape[0] for k, v in state.items()
                if k.startswith(f'decoder.heads.{head.name}.')
                and k.endswith('weight')][-1]
        assert head.detail is not None and head.detail.rows == rows
    problems = official_problems(layout)
    if not problems:
        conv = _round_trip(state, layout, preserve=False)
        assert conv.meta['official'] is True
    else:
        with pytest.raises(CheckpointMismatchError) as err:
            convert_mmaction_to_official(state, 'encoder.', layout=layout)
        msg = str(err.value)
        assert 'strict=True' in msg and '--preserve-layout' in msg
        assert all(p in msg for p in problems)
        assert all(h.describe() in msg for h in layout.heads)
    conv = _round_trip(state, layout, preserve=True)
    assert conv.meta['official'] is (not problems)
    assert conv.dropped == {'backbone.pos_embed': conv.dropped[
        'backbone.pos_embed']}  # only the fixed table, which comes back


@pytest.mark.parametrize('name', ['pretrain_k400.py',
                                  'pretrain_tiny_synthetic.py'])
def test_release_static_rgb_hog_converts_to_the_official_layout(name):
    layout, model = layout_from_config(_config(name, STATIC_RGB))
    hog = layout.head('hog').detail
    assert hog == HOGLayout('static', 1, 4, 3, 9)  # 2 x 2 cells in a patch
    state = _distinct_state(model)
    del model
    conv = _round_trip(state, layout, preserve=False)
    assert conv.meta['official'] and conv.meta['hog_row_order'] == 'release'
    out = [k for k in conv.state if k.startswith('decoder.0.head.0.2.')]
    assert sorted(out) == ['decoder.0.head.0.2.bias',
                           'decoder.0.head.0.2.weight']
    # rows in the release's (channel, bin, cell) order
    perm = hog_head_permutation(4)
    assert torch.equal(conv.state['decoder.0.head.0.2.bias'][perm],
                       state['decoder.heads.hog.2.bias'])
    if name == 'pretrain_k400.py':  # the official ViT-B model loads it
        official = OfficialPretrain(True, dec_dim=192, dim=768, depth=12,
                                    heads=12, frames=16, img=224, patch=16)
        official.load_state_dict(conv.state, strict=True)


def test_reviewer_case_gray_trajectory_hog_of_180_rows(tmp_path, capsys):
    """``--reverse --encoder-prefix encoder.`` on the tiny config's
    checkpoint: refused (no truncated head), or with --preserve-layout
    written whole and restored exactly by the way back."""
    _, model = layout_from_config(_config('pretrain_tiny_synthetic.py'))
    state = _distinct_state(model)
    assert state['decoder.heads.hog.2.weight'].shape[0] == 180
    src = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': state, 'meta': {'epoch': 1}}, src)
    tool = _tool('official_to_mmaction')
    dst = tmp_path / 'official.pth'
    base = [str(src), str(dst), '--reverse', '--encoder-prefix', 'encoder.']
    for extra in ([], ['--config', 'configs/mme/pretrain_tiny_synthetic.py']):
        with pytest.raises(SystemExit) as err:
            tool.main(base + extra)
        msg = str(err.value)
        assert ('trajectory HOG, 5 step(s) x 4 cells x 1 channel(s) (gray) x'
                ' 9 bins = 180 rows') in msg
        assert 'not one per trajectory step' in msg and \
            '3 colour channels, not 1' in msg and '--preserve-layout' in msg
        assert not dst.exists()
    tool.main(base + ['--preserve-layout'])
    assert 'dropped on purpose (1 tensors)' in capsys.readouterr().out
    saved = torch.load(dst, weights_only=True)
    assert saved['model']['decoder.0.head.0.2.weight'].shape[0] == 180
    assert saved[LAYOUT_KEY]['hog_row_order'] == 'project'
    back = tmp_path / 'back.pth'
    tool.main([str(dst), str(back), '--keep-decoder'])
    _assert_same(torch.load(back, weights_only=True)['state_dict'], state)


def test_ambiguous_shapes_are_refused_naming_the_config(tmp_path):
    """HOG only, 180 rows, patch 8: 5 steps x 4 cells or 20 steps x 1 cell
    (no trajectory head to tell L): the converter asks for the config."""
    _, model = layout_from_config(_config('hog_tiny_synthetic.py'))
    state = _distinct_state(model)
    with pytest.raises(CheckpointMismatchError) as err:
        infer_layout(state)
    msg = str(err.value)
    assert '5 step(s) x 4 cells' in msg and '20 step(s) x 1 cells' in msg
    assert '--config' in msg
    src = tmp_path / 'hog.pth'
    torch.save({'state_dict': state}, src)
    with pytest.raises(SystemExit, match='--config'):
        _tool('official_to_mmaction').main(
            [str(src), str(tmp_path / 'x.pth'), '--reverse',
             '--encoder-prefix', 'encoder.', '--preserve-layout'])
    assert not (tmp_path / 'x.pth').exists()


def test_a_config_that_does_not_fit_the_checkpoint_is_refused():
    layout, _ = layout_from_config(_config('hog_tiny_synthetic.py'))
    _, model = layout_from_config(_config('pretrain_tiny_synthetic.py'))
    with pytest.raises(CheckpointMismatchError, match='does not fit'):
        convert_mmaction_to_official(model.state_dict(), 'encoder.',
                                     layout=layout, preserve_layout=True)


@pytest.mark.parametrize('mme', [True, False])
def test_official_to_mmaction_to_official_is_exact(mme):
    torch.manual_seed(3)
    official = OfficialPretrain(mme).state_dict()
    ours = convert_official_to_mmaction(official, keep_decoder=True)
    assert set(ours.sources.values()) | set(ours.dropped) == set(official)
    back = convert_mmaction_to_official(ours.state, 'encoder.')
    assert back.meta['official'] is True
    _assert_same(back.state, official)
    # and the layout inferred back is the release's
    kinds = [h.kind for h in back.layout.heads]
    assert kinds == (['hog', 'traj'] if mme else ['pixel'])


def test_official_decoder_must_mean_what_the_config_says():
    """--keep-decoder with a config whose HOG is not the release's static
    RGB HOG: refused (same rows would not mean the same)."""
    official = OfficialPretrain(True, dec_dim=64, dim=128, depth=4, heads=4,
                                frames=8, img=64, patch=8).state_dict()
    gray, _ = layout_from_config(_config('pretrain_tiny_synthetic.py'))
    with pytest.raises(CheckpointMismatchError) as err:
        convert_official_to_mmaction(official, keep_decoder=True,
                                     config_layout=gray)
    assert 'static HOG, 1 step(s) x 4 cells x 3 channel(s)' in str(err.value)
    static, _ = layout_from_config(_config('pretrain_tiny_synthetic.py',
                                           STATIC_RGB))
    convert_official_to_mmaction(official, keep_decoder=True,
                                 config_layout=static)


def test_official_hog_head_of_a_non_official_size_is_refused():
    official = OfficialPretrain(True).state_dict()
    for key in ('decoder.0.head.0.2.weight', 'decoder.0.head.0.2.bias'):
        official[key] = official[key][:100]
    with pytest.raises(CheckpointMismatchError, match='100 rows'):
        official_to_mmaction(official, keep_decoder=True)


def test_nothing_is_dropped_silently(tmp_path, capsys):
    register = _our_pretrain(True)
    state = register.state_dict()
    # an unknown key: error naming it, in both tools
    bad = dict(state, **{'foo.bar': torch.zeros(1)})
    with pytest.raises(CheckpointMismatchError, match='foo.bar'):
        mmaction_to_official(bad, 'encoder.')
    with pytest.raises(CheckpointMismatchError, match="'foo.bar'"):
        mmaction_to_official(bad)
    src = tmp_path / 'bad.pth'
    torch.save({'state_dict': bad}, src)
    with pytest.raises(SystemExit, match='foo.bar'):
        _tool('mme_to_recognizer').main([str(src), str(tmp_path / 'b.pth')])
    # a recognizer with a non-Linear head part: error naming it
    rec = dict(_recognizer().state_dict(),
               **{'cls_head.extra.weight': torch.zeros(2)})
    with pytest.raises(CheckpointMismatchError, match='cls_head.extra'):
        mmaction_to_official(rec)
    # the fine-tune layout of a pretraining checkpoint: decoder listed
    conv = convert_mmaction_to_official(state)
    assert set(conv.sources.values()) | set(conv.dropped) == set(state)
    assert sorted(k for k in conv.dropped if k.startswith('decoder.')) == \
        sorted(k for k in state if k.startswith('decoder.'))
    # the pretraining layout of a recognizer + decoder: classifier listed
    both = dict(state, **{'cls_head.fc_cls.weight': torch.zeros(5, 48)})
    conv = convert_mmaction_to_official(both, 'encoder.')
    assert 'classifier' in conv.dropped['cls_head.fc_cls.weight']
    # official -> ours: decoder and classifier listed unless kept
    official = dict(OfficialPretrain(True).state_dict(),
                    **{'head.weight': torch.zeros(5, 48)})
    conv = convert_official_to_mmaction(official, keep_head=False)
    assert set(conv.sources.values()) | set(conv.dropped) == set(official)
    assert 'pass --keep-decoder' in conv.dropped['mask_token']
    assert 'pass --keep-head' in conv.dropped['head.weight']
    # two inputs for one output key: error naming both
    clash = dict(official, **{'fc_norm.weight': torch.zeros(48)})
    with pytest.raises(CheckpointMismatchError,
                       match="'encoder.norm.weight' and 'fc_norm.weight'"):
        official_to_mmaction(clash)
    # mme_to_recognizer prints the decoder keys it drops
    good = tmp_path / 'mme.pth'
    torch.save({'state_dict': state}, good)
    _tool('mme_to_recognizer').main([str(good), str(tmp_path / 'bb.pth')])
    out = capsys.readouterr().out
    assert 'dropped on purpose' in out and 'decoder.mask_token' in out


def test_a_learned_position_table_is_written_not_dropped():
    state = _our_pretrain(True).state_dict()
    state['backbone.pos_embed'] = torch.randn_like(state['backbone.pos_embed'])
    conv = convert_mmaction_to_official(state, 'encoder.')
    assert 'encoder.pos_embed' in conv.state and not conv.dropped
    back = convert_official_to_mmaction(conv.state, keep_decoder=True,
                                        meta=conv.meta)
    _assert_same(back.state, state)


def test_old_permutation_signature_is_the_static_case():
    assert torch.equal(hog_head_permutation(4),
                       HOGLayout('static', 1, 4, 3, 9).permutation())
    assert torch.equal(hog_head_permutation(4, 1, 9, 5),
                       HOGLayout('trajectory', 5, 4, 1, 9).permutation())
    assert len(hog_head_permutation(4, 1, 9, 5)) == 180
