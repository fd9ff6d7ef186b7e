"""Checkpoint layouts: official MME/VideoMAE <-> mmaction, and our tools
(run in process through their ``main(argv)``)."""
import pytest
import torch
from torch import nn

from mme_plugin.checkpoint import (CheckpointMismatchError,
                                   hog_head_permutation, mmaction_to_official,
                                   official_to_mmaction, verify_state_dict)
from mme_plugin.registry import MODELS
from mme_plugin.utils import register_all_modules

from .conftest import call_tool

DIM, DEPTH, HEADS, FRAMES, IMG, PATCH = 48, 2, 3, 4, 32, 8


class OfficialBlock(nn.Module):
    """A ViT block with the official release's module names."""

    def __init__(self, dim: int = DIM, heads: int = HEADS) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn.q_bias = nn.Parameter(torch.randn(dim) * 0.1)
        self.attn.v_bias = nn.Parameter(torch.randn(dim) * 0.1)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim)
        self.mlp.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        bias = torch.cat([self.attn.q_bias, torch.zeros_like(
            self.attn.v_bias), self.attn.v_bias])
        qkv = nn.functional.linear(self.norm1(x), self.attn.qkv.weight, bias)
        q, k, v = qkv.reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        a = ((q * (c // self.heads)**-0.5) @ k.transpose(-2, -1)).softmax(-1)
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


class OfficialPretrainDecoder(nn.Module):
    """The release's decoder (``decoder.0`` in MME, ``decoder`` in VideoMAE):
    blocks, norm and either a ModuleList of MLP heads (MME) or one Linear
    (VideoMAE)."""

    def __init__(self, dim: int, heads, mme: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(OfficialBlock(dim, 2) for _ in range(1))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        if mme:
            self.head = nn.ModuleList(
                nn.Sequential(nn.Linear(dim, 512), nn.GELU(),
                              nn.Linear(512, nc), nn.Dropout(0.), act())
                for nc, act in heads)
        else:
            self.head = nn.Linear(dim, heads)
        self.mme = mme

    def forward(self, x, num_mask):
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x[:, -num_mask:])
        if self.mme:
            return [h(x) for h in self.head]
        return self.head(x)


class OfficialPretrain(nn.Module):
    """The release's pretraining model layout (``encoder.*`` with its final
    ``encoder.norm``, ``encoder_to_decoder``, ``mask_token``, decoder),
    written independently of this project: MME (``decoder.0``, two heads:
    HOG 108 + Sigmoid, trajectory 32 + Tanh, as ``run.py`` orders them) or
    VideoMAE (``decoder``, one pixel Linear)."""

    def __init__(self, mme: bool = True, dec_dim: int = 24, dim: int = DIM,
                 depth: int = DEPTH, heads: int = HEADS, frames: int = FRAMES,
                 img: int = IMG, patch: int = PATCH) -> None:
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.patch_embed = nn.Module()
        self.encoder.patch_embed.proj = nn.Conv3d(3, dim, (2, patch, patch),
                                                  (2, patch, patch))
        self.encoder.blocks = nn.ModuleList(OfficialBlock(dim, heads)
                                            for _ in range(depth))
        self.encoder.norm = nn.LayerNorm(dim, eps=1e-6)
        from mmaction.models.backbones.vit_mae import get_sinusoid_encoding
        n = (frames // 2) * (img // patch)**2
        self.pos = get_sinusoid_encoding(n, dim)  # not a buffer: not saved
        self.dec_pos = get_sinusoid_encoding(n, dec_dim)
        self.mme = mme
        if mme:
            self.decoder = nn.ModuleList([OfficialPretrainDecoder(
                dec_dim, [(108, nn.Sigmoid), (32, nn.Tanh)], True)])
            self.encoder_to_decoder = nn.ModuleList(
                [nn.Linear(dim, dec_dim, bias=False)])
        else:
            self.decoder = OfficialPretrainDecoder(dec_dim, 2 * patch**2 * 3,
                                                   False)
            self.encoder_to_decoder = nn.Linear(dim, dec_dim, bias=False)
        self.mask_token = nn.Parameter(torch.randn(1, 1, dec_dim))
        for p in self.parameters():  # LN at init would hide a wrong mapping
            nn.init.normal_(p, std=0.1)

    def forward(self, x, mask):
        x = self.encoder.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = x + self.pos
        b, _, c = x.shape
        x = x[~mask].reshape(b, -1, c)
        for blk in self.encoder.blocks:
            x = blk(x)
        x = self.encoder.norm(x)
        e2d = self.encoder_to_decoder[0] if self.mme else \
            self.encoder_to_decoder
        decoder = self.decoder[0] if self.mme else self.decoder
        x = e2d(x)
        pos = self.dec_pos.expand(b, -1, -1)
        vis = pos[~mask].reshape(b, -1, x.shape[-1])
        msk = pos[mask].reshape(b, -1, x.shape[-1])
        x = torch.cat([x + vis, self.mask_token + msk], 1)
        return decoder(x, msk.shape[1])


def _our_pretrain(mme: bool = True):
    register_all_modules()
    heads = dict(hog=108, traj=32) if mme else dict(pixel=2 * PATCH**2 * 3)
    return MODELS.build(dict(
        type='MME',
        backbone=dict(type='MMEVisionTransformer', img_size=IMG,
                      patch_size=PATCH, embed_dims=DIM, depth=DEPTH,
                      num_heads=HEADS, num_frames=FRAMES),
        decoder=dict(type='MMEDecoder', embed_dims=24, num_heads=2,
                     head_dims=heads, head_hidden=512 if mme else 0,
                     head_act=dict(hog='sigmoid', traj='tanh') if mme
                     else None),
        loss=dict(type='MMELoss', weights={k: 1.0 for k in heads}))).eval()


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
    assert 'pos_embed' not in back  # the official model does not store it
    plain = official.state_dict()
    assert set(back) == set(plain)
    assert all(torch.equal(back[k], plain[k]) for k in plain)


def test_pretraining_layout_drops_the_decoder():
    state = {'encoder.patch_embed.proj.weight': torch.zeros(4, 1),
             'encoder.blocks.0.mlp.fc1.weight': torch.zeros(1),
             'encoder.norm.weight': torch.full((4, ), 2.),
             'encoder.norm.bias': torch.zeros(4),
             'decoder.blocks.0.mlp.fc1.weight': torch.zeros(1),
             'encoder_to_decoder.weight': torch.zeros(1),
             'mask_token': torch.zeros(1)}
    out = official_to_mmaction(state)
    assert set(out) == {
        'backbone.patch_embed.projection.weight',
        'backbone.blocks.0.mlp.layers.0.0.weight', 'backbone.fc_norm.weight',
        'backbone.fc_norm.bias'}
    # the rule: encoder.norm -> fc_norm; --fresh-fc-norm: LN init
    assert torch.equal(out['backbone.fc_norm.weight'], torch.full((4, ), 2.))
    assert torch.equal(out['backbone.fc_norm.bias'], torch.zeros(4))
    fresh = official_to_mmaction(state, fresh_fc_norm=True)
    assert torch.equal(fresh['backbone.fc_norm.weight'], torch.ones(4))


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


def _convert(capsys, *args):
    """``tools/convert/official_to_mmaction.py ARGS``: exit code, and its
    output with the message of its ``SystemExit``."""
    run = call_tool('tools/convert/official_to_mmaction.py', list(args),
                    capsys, check=False)
    return run.code, f'{run.out}\n{run.code}'


def test_converter_tools_end_to_end(tmp_path, capsys):
    torch.manual_seed(1)
    official = OfficialViT()
    src = tmp_path / 'official.pth'
    torch.save({'module': official.state_dict()}, src)
    dst = tmp_path / 'mm.pth'
    code, out = _convert(capsys, str(src), str(dst), '--keep-head')
    assert code == 0, out[-2000:]
    back = tmp_path / 'back.pth'
    code, out = _convert(capsys, str(dst), str(back), '--reverse')
    assert code == 0, out[-2000:]
    restored = torch.load(back, weights_only=False)['model']
    for k, v in official.state_dict().items():
        assert torch.equal(restored[k], v), k


def test_mme_to_recognizer_rejects_a_mismatched_config(tmp_path, capsys):
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
    tool = 'tools/convert/mme_to_recognizer.py'
    call_tool(tool, [str(ckpt), str(tmp_path / 'bb.pth'), '--config',
                     'configs/mme/finetune_tiny_synthetic.py'], capsys)
    saved = torch.load(tmp_path / 'bb.pth', weights_only=False)['state_dict']
    assert saved and all(k.startswith('backbone.') for k in saved)
    bad = call_tool(tool, [str(ckpt), str(tmp_path / 'bad.pth'), '--config',
                           'configs/mme/finetune_k400.py'], capsys,
                    check=False)
    assert bad.code != 0
    assert 'shape mismatch' in str(bad.code) and 'embed_dims' in str(bad.code)
    assert not (tmp_path / 'bad.pth').exists()


def _saved(state, layout):
    """A state dict as the official tools save it."""
    if layout == 'deepspeed':
        return {'module': state}
    if layout == 'ddp':
        return {'model': {f'module.{k}': v for k, v in state.items()}}
    return {'model': state, 'epoch': 3}  # release save_model


@pytest.mark.parametrize('mme,layout', [(True, 'plain'), (True, 'deepspeed'),
                                        (True, 'ddp'), (False, 'plain')])
def test_official_pretraining_checkpoint_round_trip(tmp_path, capsys, mme,
                                                    layout):
    """Official MME / VideoMAE pretraining checkpoints (decoder, heads,
    encoder.norm) -> our MME model: same predictions; and back: strict load
    into the official model, same tensors."""
    torch.manual_seed(2)
    official = OfficialPretrain(mme).eval()
    src = tmp_path / 'official.pth'
    torch.save(_saved(official.state_dict(), layout), src)
    dst = tmp_path / 'ours.pth'
    code, out = _convert(capsys, str(src), str(dst), '--keep-decoder')
    assert code == 0, out[-2000:]
    assert "becomes the recognizer's 'fc_norm'" in out
    state = torch.load(dst, weights_only=False)['state_dict']
    ours = _our_pretrain(mme)
    missing, unexpected, filled = verify_state_dict(state, ours, '')
    assert (missing, unexpected, filled) == ([], [], ['backbone.pos_embed'])
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, FRAMES, IMG, IMG)
    n = (FRAMES // 2) * (IMG // PATCH)**2
    mask = torch.zeros(2, n, dtype=torch.bool)
    mask[0, torch.randperm(n)[:n // 2]] = True
    mask[1, torch.randperm(n)[:n // 2]] = True
    with torch.no_grad():
        want = official(x, mask)
        got = ours.decoder(ours.backbone(x, mask=mask), mask)
    if mme:
        perm = hog_head_permutation(4)
        torch.testing.assert_close(got['hog'], want[0][..., perm])
        torch.testing.assert_close(got['traj'], want[1])
    else:
        torch.testing.assert_close(got['pixel'], want)
    # reverse: our pretraining checkpoint -> the official pretraining model
    ckpt = tmp_path / 'mme_run.pth'
    torch.save({'state_dict': ours.state_dict(), 'meta': {}}, ckpt)
    back = tmp_path / 'back.pth'
    code, out = _convert(capsys, str(ckpt), str(back), '--reverse',
                         '--encoder-prefix', 'encoder.')
    assert code == 0, out[-2000:]
    restored = torch.load(back, weights_only=False)['model']
    fresh = OfficialPretrain(mme)
    fresh.load_state_dict(restored, strict=True)
    for k, v in official.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_hog_head_permutation_maps_release_layout():
    # release token layout: (channel, bin, cell row, cell col)
    release = torch.tensor([[(c * 9 + b) * 100 + cell for cell in range(4)]
                            for c in range(3) for b in range(9)]).flatten()
    ours = release[hog_head_permutation(4)]
    # ours: (cell, channel, bin)
    assert ours[:3].tolist() == [0, 100, 200]  # cell 0, channel 0, bins 0-2
    assert ours[27].item() == 1  # cell 1, channel 0, bin 0
    assert ours[9].item() == 900  # cell 0, channel 1, bin 0


def test_converting_an_mmaction_checkpoint_again_is_refused(tmp_path,
                                                           capsys):
    rec = _recognizer()
    src = tmp_path / 'mm.pth'
    torch.save({'state_dict': rec.state_dict()}, src)
    code, out = _convert(capsys, str(src), str(tmp_path / 'x.pth'))
    assert code != 0
    assert 'already in mmaction layout' in out
    assert not (tmp_path / 'x.pth').exists()


def test_reverse_pretraining_layout_needs_a_decoder(tmp_path, capsys):
    rec = _recognizer()
    src = tmp_path / 'mm.pth'
    torch.save({'state_dict': rec.state_dict()}, src)
    code, out = _convert(capsys, str(src), str(tmp_path / 'x.pth'),
                         '--reverse', '--encoder-prefix', 'encoder.')
    assert code != 0 and 'needs the decoder' in out


@pytest.mark.slow
def test_readme_conversion_of_a_full_size_official_checkpoint(tmp_path,
                                                              capsys):
    """The README command on an official ViT-B MME pretraining checkpoint
    (DeepSpeed-wrapped, as released), checked against the real config."""
    torch.manual_seed(0)
    official = OfficialPretrain(True, dec_dim=192, dim=768, depth=12,
                                heads=12, frames=16, img=224, patch=16)
    src = tmp_path / 'mme_k400_1600ep.pth'
    torch.save(_saved(official.state_dict(), 'deepspeed'), src)
    del official
    dst = tmp_path / 'mme_k400_backbone.pth'
    code, out = _convert(capsys, str(src), str(dst), '--config',
                         'configs/mme/finetune_ssv2.py')
    assert code == 0, out[-3000:]
    assert "new (not in checkpoint): ['cls_head.fc_cls.weight', " \
        "'cls_head.fc_cls.bias']" in out
    assert 'unexpected: []' in out
    saved = torch.load(dst, weights_only=False)['state_dict']
    assert 'backbone.fc_norm.weight' in saved
