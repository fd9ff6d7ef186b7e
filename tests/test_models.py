"""MME encoder, decoder, loss and algorithm."""

import pytest
import torch
from mmaction.models.backbones.vit_mae import VisionTransformer
from mmaction.structures import ActionDataSample

from mme_plugin.models import (MMEDecoder, MMELoss, MMEVisionTransformer,
                               NoValidTargetsError, pixel_targets)
from mme_plugin.registry import MODELS
from mme_plugin.utils import register_all_modules

register_all_modules()

VIT = dict(img_size=32, patch_size=8, embed_dims=48, depth=2, num_heads=3,
           num_frames=4, tubelet_size=2, use_mean_pooling=True)


def _pair():
    torch.manual_seed(0)
    stock = VisionTransformer(**VIT).eval()
    stock.init_weights()
    ours = MMEVisionTransformer(**VIT).eval()
    ours.load_state_dict(stock.state_dict())
    return stock, ours


def test_parameter_names_identical_to_stock():
    stock, ours = _pair()
    assert list(stock.state_dict()) == list(ours.state_dict())
    assert all(stock.state_dict()[k].shape == v.shape
               for k, v in ours.state_dict().items())


def test_sdpa_matches_explicit_softmax_attention():
    stock, ours = _pair()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), stock(x), atol=1e-5, rtol=1e-4)


def test_masked_forward_equals_encoder_on_gathered_tokens():
    stock, ours = _pair()
    x = torch.randn(2, 3, 4, 32, 32)
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[0, [1, 4, 5, 9, 17, 20, 30, 31]] = True
    mask[1, [0, 2, 3, 8, 16, 21, 22, 29]] = True
    with torch.no_grad():
        got = ours(x, mask=mask)
        tokens = stock.patch_embed(x)[0] + stock.pos_embed
        ref = []
        for b in range(2):
            t = tokens[b:b + 1, ~mask[b]]
            for blk in stock.blocks:
                t = blk(t)
            ref.append(stock.fc_norm(t))
        torch.testing.assert_close(got, torch.cat(ref), atol=1e-5, rtol=1e-4)
    assert got.shape == (2, 24, 48)


def test_unequal_visible_counts_are_rejected():
    _, ours = _pair()
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[0, :3] = True
    with pytest.raises(ValueError, match='same number of visible'):
        ours(torch.randn(2, 3, 4, 32, 32), mask=mask)


def test_pretrained_backbone_loads_into_stock_recognizer(tmp_path):
    mme = MODELS.build(dict(
        type='MME', backbone=dict(type='MMEVisionTransformer', **VIT),
        decoder=dict(type='MMEDecoder', embed_dims=32, num_heads=2,
                     head_dims=dict(traj=8)),
        loss=dict(type='MMELoss', weights=dict(traj=1.0))))
    mme.init_weights()
    ckpt = tmp_path / 'mme.pth'
    torch.save({'state_dict': mme.state_dict(), 'meta': {}}, ckpt)
    rec = MODELS.build(dict(
        type='Recognizer3D',
        backbone=dict(type='VisionTransformer', **VIT,
                      init_cfg=dict(type='Pretrained', checkpoint=str(ckpt),
                                    prefix='backbone.')),
        cls_head=dict(type='TimeSformerHead', num_classes=5, in_channels=48)))
    rec.init_weights()
    ours = mme.backbone.state_dict()
    theirs = rec.backbone.state_dict()
    assert set(ours) == set(theirs)  # no missing, no unexpected keys
    for k in theirs:
        torch.testing.assert_close(theirs[k], ours[k])


def test_decoder_output_per_masked_token():
    dec = MMEDecoder(num_tokens=32, in_dims=48, embed_dims=32, num_heads=2,
                     head_dims=dict(traj=8, hog=6),
                     head_act=dict(hog='sigmoid'))
    dec.init_weights()
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[:, :20] = True
    out = dec(torch.randn(2, 12, 48), mask)
    assert out['traj'].shape == (2, 20, 8) and out['hog'].shape == (2, 20, 6)
    assert out['hog'].min() >= 0 and out['hog'].max() <= 1
    assert out['traj'].min() < 0  # linear head: unbounded


def test_loss_averages_over_valid_tokens_only():
    pred = {'traj': torch.zeros(4, 2)}
    tgt = {'traj': torch.tensor([[1., 1], [2, 2], [100, 100], [0, 0]])}
    valid = {'traj': torch.tensor([True, True, False, True])}
    loss = MMELoss(weights=dict(traj=2.0))(pred, tgt, valid)['loss_traj']
    assert loss.item() == pytest.approx(2.0 * (1 + 4 + 0) / 3)
    rel = MMELoss(weights=dict(traj=1.0), release_compat=True)(pred, tgt,
                                                                valid)
    # release: sum over dims, divided by all masked tokens
    assert rel['loss_traj'].item() == pytest.approx((2 + 8 + 0) / 4)


def test_loss_refuses_all_invalid_targets():
    with pytest.raises(NoValidTargetsError):
        MMELoss(weights=dict(traj=1.0))(
            {'traj': torch.zeros(3, 2)}, {'traj': torch.ones(3, 2)},
            {'traj': torch.zeros(3, dtype=torch.bool)})


def test_pixel_targets_layout_and_norm():
    video = torch.rand(1, 3, 4, 16, 16)
    t = pixel_targets(video, 8, 2, normalize=False)
    assert t.shape == (1, 8, 2 * 8 * 8 * 3)
    # token 1 = tube 0, patch row 0, patch col 1; first value = frame 0,
    # pixel (0, 8), channel 0
    assert t[0, 1, 0] == video[0, 0, 0, 0, 8]
    tn = pixel_targets(video, 8, 2)
    per_channel = tn.reshape(1, 8, 128, 3)
    assert per_channel.mean(2).abs().max() < 1e-5


def _samples(n_tokens, mask_idx, traj_dims=8, valid=True):
    out = []
    for i in range(2):
        ds = ActionDataSample(metainfo=dict(filename=f'clip{i}.mp4'))
        mask = torch.zeros(n_tokens, dtype=torch.bool)
        mask[mask_idx] = True
        ds.set_field(mask, 'mask')
        ds.set_field(torch.randn(n_tokens, traj_dims), 'traj_target')
        ds.set_field(torch.full((n_tokens, ), valid), 'traj_valid')
        out.append(ds)
    return out


def _mme(heads, weights):
    m = MODELS.build(dict(
        type='MME', backbone=dict(type='MMEVisionTransformer', **VIT),
        decoder=dict(type='MMEDecoder', embed_dims=32, num_heads=2,
                     head_dims=heads),
        loss=dict(type='MMELoss', weights=weights),
        data_preprocessor=dict(type='ActionDataPreprocessor',
                               mean=[0., 0, 0], std=[1., 1, 1],
                               format_shape='NCTHW')))
    m.init_weights()
    return m


def test_mme_loss_mode_and_backward():
    model = _mme(dict(traj=8), dict(traj=1.0))
    x = torch.rand(2, 1, 3, 4, 32, 32) * 255
    out = model(x, _samples(32, list(range(24))), mode='loss')
    assert set(out) == {'loss_traj', 'traj_valid', 'traj_target_abs'}
    assert torch.isfinite(out['loss_traj']) and out['traj_valid'] == 1.0
    out['loss_traj'].backward()
    assert model.backbone.patch_embed.projection.weight.grad.abs().sum() > 0
    preds = model(x, _samples(32, list(range(24))), mode='tensor')
    assert preds['traj'].shape == (2, 24, 8)


def test_mme_pixel_mode_and_missing_mask_error():
    model = _mme(dict(pixel=2 * 8 * 8 * 3), dict(pixel=1.0))
    x = torch.rand(2, 1, 3, 4, 32, 32) * 255
    out = model(x, _samples(32, list(range(24))), mode='loss')
    assert torch.isfinite(out['loss_pixel'])
    bad = _samples(32, [0])
    for ds in bad:
        del ds.mask
    with pytest.raises(KeyError, match='TubeMasking'):
        model(x, bad)


def test_mme_refuses_a_batch_without_valid_trajectories():
    model = _mme(dict(traj=8), dict(traj=1.0))
    x = torch.rand(2, 1, 3, 4, 32, 32)
    with pytest.raises(NoValidTargetsError, match=r'clip0\.mp4.*clip1\.mp4'):
        model(x, _samples(32, list(range(24)), valid=False))


def test_non_finite_loss_stops_with_the_sample_names():
    model = _mme(dict(traj=8), dict(traj=1.0))
    x = torch.rand(2, 1, 3, 4, 32, 32)
    samples = _samples(32, list(range(24)))
    samples[1].traj_target[3, 0] = float('nan')
    with pytest.raises(FloatingPointError,
                       match=r"at iteration .*non-finite targets: "
                       r"\['traj'\].*clip1\.mp4"):
        model(x, samples)


def test_reseed_hook_makes_iteration_randomness_repeatable():
    from types import SimpleNamespace

    from mme_plugin.engine import ReseedHook
    hook = ReseedHook()
    runner = SimpleNamespace(seed=5, iter=17)
    hook.before_train_iter(runner, 0)
    a = torch.rand(3)
    torch.rand(10)  # whatever happened before the iteration
    hook.before_train_iter(runner, 0)
    assert torch.equal(torch.rand(3), a)
    runner.iter = 18
    hook.before_train_iter(runner, 0)
    assert not torch.equal(torch.rand(3), a)


def _hog_samples(seed=0):
    """2 clips of 2 tubes x 2 steps of 32 x 32 frames, 8 x 8 points."""
    g = torch.Generator().manual_seed(seed)
    samples = _samples(32, list(range(24)))
    grid = torch.stack(torch.meshgrid(torch.arange(8.) * 4 + 2,
                                      torch.arange(8.) * 4 + 2,
                                      indexing='xy'), -1)
    for ds in samples:
        frames = torch.randint(0, 256, (2, 2, 32, 32, 3), generator=g,
                               dtype=torch.uint8)
        points = grid + torch.randn(2, 2, 8, 8, 2, generator=g)
        ds.set_field(frames, 'hog_frames')
        ds.set_field(points, 'hog_points')
        ds.set_field(torch.ones(32, dtype=torch.bool), 'hog_valid')
    return samples


def _hog_mme(hog_dims=2 * 4 * 27, hog_target=True):
    m = MODELS.build(dict(
        type='MME', backbone=dict(type='MMEVisionTransformer', **VIT),
        decoder=dict(type='MMEDecoder', embed_dims=32, num_heads=2,
                     head_dims=dict(traj=8, hog=hog_dims)),
        loss=dict(type='MMELoss', weights=dict(traj=1.0, hog=1.0)),
        hog_target=dict(type='PointHOG', cell_size=4) if hog_target else None,
        data_preprocessor=dict(type='ActionDataPreprocessor',
                               mean=[0., 0, 0], std=[1., 1, 1],
                               format_shape='NCTHW')))
    m.init_weights()
    return m


def test_hog_computed_on_device_equals_hog_given_by_the_pipeline():
    from mme_plugin.models import PointHOG
    torch.manual_seed(0)
    model = _hog_mme().eval()
    x = torch.rand(2, 1, 3, 4, 32, 32) * 255
    samples = _hog_samples()
    on_device = model(x, samples)
    hog = PointHOG(cell_size=4)(
        torch.stack([ds.hog_frames for ds in samples]),
        torch.stack([ds.hog_points for ds in samples]), 8)
    assert hog.shape == (2, 32, 216) and hog.abs().sum() > 0
    for ds, h in zip(samples, hog):
        del ds.hog_frames
        ds.set_field(h, 'hog_target')
    given = model(x, samples)
    torch.testing.assert_close(on_device['loss_hog'], given['loss_hog'])
    assert on_device['hog_target_abs'] > 0.01


def test_device_hog_errors_name_the_fix():
    x = torch.rand(2, 1, 3, 4, 32, 32) * 255
    with pytest.raises(KeyError, match="hog_target=dict\\(type='PointHOG'"):
        _hog_mme(hog_target=False)(x, _hog_samples())
    with pytest.raises(ValueError, match=r"head_dims\['hog'\] to 216"):
        _hog_mme(hog_dims=108)(x, _hog_samples())


def test_device_hog_stays_float32_under_autocast():
    from mme_plugin.models import PointHOG
    samples = _hog_samples()
    frames = torch.stack([ds.hog_frames for ds in samples])
    points = torch.stack([ds.hog_points for ds in samples])
    ref = PointHOG(cell_size=4)(frames, points, 8)
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        got = PointHOG(cell_size=4)(frames, points, 8)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref)


def test_targets_size_the_heads_and_weight_the_loss():
    """Target units declare their sizes from their settings and the encoder
    (patch 8 here, so 2 x 2 points of a 4-px grid), the decoder heads follow,
    the loss takes their weights; a head_dims that disagrees is refused."""
    def build(**kw):
        return MODELS.build(dict(
            type='MME', backbone=dict(type='MMEVisionTransformer', **VIT),
            decoder=dict(type='MMEDecoder', embed_dims=32, num_heads=2,
                         **kw.pop('decoder', {})), **kw))
    targets = dict(
        traj=dict(type='TrajectoryTarget', traj_len=4, grid_step=4),
        hog=dict(type='HOGTarget', traj_len=4, cell_size=4, channels='gray',
                 weight=0.5),
        pixel=dict(type='PixelTarget'))
    mme = build(targets=targets)
    p, q = VIT['patch_size'], VIT['tubelet_size']
    k2 = (p // 4)**2
    assert mme.head_dims == dict(traj=2 * 4 * k2, hog=5 * k2 * 9,
                                 pixel=q * p * p * 3)
    for name, dims in mme.head_dims.items():
        assert mme.decoder.heads[name][-2].out_features == dims
    assert mme.loss_module.weights == dict(traj=1.0, hog=0.5, pixel=1.0)
    with pytest.raises(ValueError, match='disagree'):
        build(targets=targets, decoder=dict(head_dims=dict(traj=3)))
