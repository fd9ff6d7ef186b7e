"""Checkpoint layouts: official MME/VideoMAE <-> mmaction, and our tools."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from mme_plugin.checkpoint import (CheckpointMismatchError,
                                   mmaction_to_official, official_to_mmaction,
                                   verify_state_dict)
from mme_plugin.registry import MODELS
from mme_plugin.utils import register_all_modules

from .conftest import REPO

DIM, DEPTH, HEADS, FRAMES, IMG, PATCH = 48, 2, 3, 4, 32, 8


class OfficialBlock(nn.Module):
    """A ViT block with the official release's module names."""

    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(DIM, 3 * DIM, bias=False)
        self.attn.q_bias = nn.Parameter(torch.randn(DIM) * 0.1)
        self.attn.v_bias = nn.Parameter(torch.randn(DIM) * 0.1)
        self.attn.proj = nn.Linear(DIM, DIM)
        self.norm2 = nn.LayerNorm(DIM, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(DIM, 4 * DIM)
        self.mlp.fc2 = nn.Linear(4 * DIM, DIM)

    def forward(self, x):
        b, n, c = x.shape
        bias = torch.cat([self.attn.q_bias, torch.zeros_like(
            self.attn.v_bias), self.attn.v_bias])
        qkv = nn.functional.linear(self.norm1(x), self.attn.qkv.weight, bias)
        q, k, v = qkv.reshape(b, n, 3, HEADS, -1).permute(2, 0, 3, 1, 4)
        a = ((q * (c // HEADS)**-0.5) @ k.transpose(-2, -1)).softmax(-1)
        x = x + self.attn.proj((a @ v).transpose(1, 2).reshape(b, n, c))
        return x + self.mlp.fc2(nn.functional.gelu(self.mlp.fc1(
            self.norm2(x))))


class OfficialViT(nn.Module):
    """The release's fine-tune model layout (``patch_embed.proj``, ``blocks``,
    ``fc_norm``, ``head``), written independently of mmaction."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(3, DIM, (2, PATCH, PATCH),
                                          (2, PATCH, PATCH))
        self.blocks = nn.ModuleList(OfficialBlock() for _ in range(DEPTH))
        self.fc_norm = nn.LayerNorm(DIM, eps=1e-6)
        self.head = nn.Linear(DIM, num_classes)
        from mmaction.models.backbones.vit_mae import get_sinusoid_encoding
        n = (FRAMES // 2) * (IMG // PATCH)**2
        self.register_buffer('pos', get_sinusoid_encoding(n, DIM),
                             persistent=False)

    def forward(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.fc_norm(x.mean(1)))


def _recognizer():
    register_all_modules()
    return MODELS.build(dict(
        type='Recognizer3D',
        backbone=dict(type='VisionTransformer', img_size=IMG,
                      patch_size=PATCH, embed_dims=DIM, depth=DEPTH,
                      num_heads=HEADS, num_frames=FRAMES),
        cls_head=dict(type='TimeSformerHead', num_classes=5, in_channels=DIM,
                      average_clips=None))).eval()


def test_official_layout_converts_without_missing_keys_and_same_output():
    torch.manual_seed(0)
    official = OfficialViT().eval()
    state = {f'module.{k}': v for k, v in official.state_dict().items()}
    converted = official_to_mmaction(state)
    rec = _recognizer()
    assert 'backbone.pos_embed' not in converted  # not stored officially
    missing, unexpected, filled = verify_state_dict(converted, rec)
    assert missing == [] and unexpected == []
    assert filled == ['backbone.pos_embed']
    rec.load_state_dict(converted, strict=True)
    x = torch.randn(2, 3, FRAMES, IMG, IMG)
    with torch.no_grad():
        ours = rec.cls_head(rec.backbone(x))
        torch.testing.assert_close(ours, official(x), atol=1e-5, rtol=1e-4)
    back = mmaction_to_official(converted)
    back.pop('pos_embed')
    plain = official.state_dict()
    assert set(back) == set(plain)
    assert all(torch.equal(back[k], plain[k]) for k in plain)


def test_pretraining_layout_drops_the_decoder():
    state = {'encoder.patch_embed.proj.weight': torch.zeros(1),
             'encoder.blocks.0.mlp.fc1.weight': torch.zeros(1),
             'decoder.blocks.0.mlp.fc1.weight': torch.zeros(1),
             'encoder_to_decoder.weight': torch.zeros(1),
             'mask_token': torch.zeros(1)}
    assert set(official_to_mmaction(state)) == {
        'backbone.patch_embed.projection.weight',
        'backbone.blocks.0.mlp.layers.0.0.weight'}


def test_shape_mismatch_is_a_clear_error():
    rec = _recognizer()
    state = {k: v for k, v in rec.state_dict().items()}
    state['backbone.pos_embed'] = torch.zeros(1, 99, DIM)
    with pytest.raises(CheckpointMismatchError,
                       match=r'pos_embed: checkpoint \(1, 99, 48\)'):
        verify_state_dict(state, rec, source='x.pth')
    state['backbone.pos_embed'] = rec.state_dict()['backbone.pos_embed']
    del state['backbone.fc_norm.weight']
    with pytest.raises(CheckpointMismatchError, match='missing 1 keys'):
        verify_state_dict(state, rec)


def test_converter_tools_end_to_end(tmp_path):
    torch.manual_seed(1)
    official = OfficialViT()
    src = tmp_path / 'official.pth'
    torch.save({'module': official.state_dict()}, src)
    dst = tmp_path / 'mm.pth'
    out = subprocess.run(
        [sys.executable, 'tools/convert/official_to_mmaction.py', str(src),
         str(dst), '--keep-head'], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    back = tmp_path / 'back.pth'
    out = subprocess.run(
        [sys.executable, 'tools/convert/official_to_mmaction.py', str(dst),
         str(back), '--reverse'], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    restored = torch.load(back, weights_only=False)['module']
    for k, v in official.state_dict().items():
        assert torch.equal(restored[k], v), k


def test_mme_to_recognizer_rejects_a_mismatched_config(tmp_path):
    register_all_modules()
    mme = MODELS.build(dict(
        type='MME',
        backbone=dict(type='MMEVisionTransformer', img_size=64, patch_size=8,
                      embed_dims=128, depth=4, num_heads=4, num_frames=8),
        decoder=dict(type='MMEDecoder', embed_dims=32, num_heads=2,
                     head_dims=dict(traj=8)),
        loss=dict(type='MMELoss', weights=dict(traj=1.0))))
    ckpt = tmp_path / 'mme.pth'
    torch.save({'state_dict': mme.state_dict()}, ckpt)
    ok = subprocess.run(
        [sys.executable, 'tools/convert/mme_to_recognizer.py', str(ckpt),
         str(tmp_path / 'bb.pth'), '--config',
         'configs/mme/finetune_tiny_synthetic.py'],
        cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr[-2000:]
    saved = torch.load(tmp_path / 'bb.pth', weights_only=False)['state_dict']
    assert saved and all(k.startswith('backbone.') for k in saved)
    bad = subprocess.run(
        [sys.executable, 'tools/convert/mme_to_recognizer.py', str(ckpt),
         str(tmp_path / 'bad.pth'), '--config',
         'configs/mme/finetune_k400.py'],
        cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0
    assert 'shape mismatch' in bad.stderr and 'embed_dims' in bad.stderr
