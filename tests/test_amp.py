"""Mixed precision: the dtype policy of the AMP recipes, and a real ViT-B MME
step in bf16 against fp32."""
import time
import warnings

import pytest
import torch
from mmengine.config import Config

from mme_plugin.utils import resolve_amp_dtype, select_amp_dtype

from .conftest import REPO

PRETRAIN = f'{REPO}/configs/mme/pretrain_k400.py'
WORKER = f'{REPO}/configs/mme/pretrain_k400_worker.py'


def _recipe():
    return Config.fromfile(PRETRAIN)


@pytest.mark.parametrize('bf16,dtype,enabled', [(True, 'bfloat16', False),
                                                (False, 'float16', True)])
def test_auto_picks_bf16_where_supported_else_fp16_with_a_scaler(
        bf16, dtype, enabled):
    cfg = _recipe()
    assert cfg.optim_wrapper.dtype == 'auto'  # the choice is in the recipe
    note = resolve_amp_dtype(cfg, bf16_supported=bf16)
    assert cfg.optim_wrapper.dtype == dtype
    scale = cfg.optim_wrapper.loss_scale
    if enabled:
        assert scale == 'dynamic'
    else:
        assert scale == dict(enabled=False)
    assert note.startswith(f'Mixed precision: {dtype} autocast')
    assert ('no loss scaling' in note) is (not enabled)
    assert select_amp_dtype(bf16)[0] == dtype


def test_explicit_dtype_is_kept_and_fp16_without_a_scaler_is_refused():
    cfg = _recipe()
    cfg.optim_wrapper.dtype = 'float16'
    assert 'set in the config' in resolve_amp_dtype(cfg, bf16_supported=True)
    assert cfg.optim_wrapper.dtype == 'float16'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'  # 'auto' under fp16
    cfg = _recipe()
    cfg.optim_wrapper.update(dtype='float16', loss_scale=dict(enabled=False))
    with pytest.raises(ValueError, match='underflow'):
        resolve_amp_dtype(cfg)
    plain = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    assert resolve_amp_dtype(plain) is None
    assert 'dtype' not in plain.optim_wrapper


def test_resolved_wrapper_builds_and_only_fp16_tolerates_skips(monkeypatch):
    """mmengine's AmpOptimWrapper takes the resolved settings, and the
    NonFiniteLossHook tolerates scaler skips under fp16 only."""
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp_mod
    from mmengine.optim import AmpOptimWrapper

    from mme_plugin.engine.nonfinite_hook import _skips_tolerated
    monkeypatch.setattr(amp_mod, 'is_cuda_available', lambda: True)
    for bf16 in (True, False):
        cfg = _recipe()
        resolve_amp_dtype(cfg, bf16_supported=bf16)
        kw = {k: cfg.optim_wrapper[k] for k in ('dtype', 'loss_scale')}
        param = torch.nn.Parameter(torch.zeros(2))
        with warnings.catch_warnings():  # GradScaler: no CUDA here
            warnings.simplefilter('ignore')
            wrapper = AmpOptimWrapper(
                optimizer=torch.optim.AdamW([param]), **kw)
        assert wrapper.cast_dtype == getattr(torch, kw['dtype'])
        if bf16 or torch.cuda.is_available():  # (no CUDA: always off)
            assert wrapper.loss_scaler.is_enabled() is (not bf16)
        assert _skips_tolerated(wrapper) is (not bf16)


# --- a real ViT-B MME step: bf16 autocast vs fp32 --------------------------


def _vit_b_batch(batch: int, seed: int = 0):
    """The K400 recipe's model and one synthetic batch (targets given).

    The batch carries finished targets, so the model is the worker-placement
    K400 recipe's (``pretrain_k400_worker.py``: the same ViT-B, decoder and
    loss, without the on-device target generator, which would ask for the
    dense frames instead).
    """
    from mmaction.structures import ActionDataSample

    from mme_plugin.datasets.transforms import TubeMasking
    from mme_plugin.registry import MODELS
    from mme_plugin.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(WORKER)
    assert cfg.model.get('target_generator') is None
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    g = torch.Generator().manual_seed(seed)
    n = 8 * 14 * 14
    inputs = torch.randint(0, 256, (batch, 1, 3, 16, 224, 224),
                           generator=g).float()
    samples = []
    for i in range(batch):
        ds = ActionDataSample(metainfo=dict(filename=f'clip{i}.mp4'))
        torch.manual_seed(seed + i)
        res = TubeMasking(mask_ratio=0.7)(dict(imgs=[None] * 16,
                                               img_shape=(224, 224)))
        for key in ('mask', 'visible_idx', 'masked_idx'):
            ds.set_field(res[key], key)
        ds.set_field(torch.randn(n, 32, generator=g), 'traj_target')
        ds.set_field(torch.ones(n, dtype=torch.bool), 'traj_valid')
        ds.set_field(torch.rand(n, 540, generator=g) * 0.5, 'hog_target')
        ds.set_field(torch.ones(n, dtype=torch.bool), 'hog_valid')
        samples.append(ds)
    data = dict(inputs=list(inputs), data_samples=samples)
    return model, data


def _loss_and_grads(model, data, dtype=None):
    model.zero_grad(set_to_none=True)
    batch = model.data_preprocessor(data, True)
    with torch.autocast('cpu', dtype=dtype or torch.float32,
                        enabled=dtype is not None):
        losses = model(**batch, mode='loss')
        loss, _ = model.parse_losses(losses)
    loss.backward()
    grads = [p.grad.detach().flatten().double()
             for p in model.parameters() if p.grad is not None]
    return float(loss), torch.cat(grads), len(grads)


@pytest.mark.slow
def test_vit_b_mme_step_in_bf16_matches_fp32():
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model, data = _vit_b_batch(batch=1)
    t0 = time.perf_counter()
    loss32, grad32, n32 = _loss_and_grads(model, data)
    t1 = time.perf_counter()
    loss16, grad16, n16 = _loss_and_grads(model, data, torch.bfloat16)
    t2 = time.perf_counter()
    assert n32 == n16 and n32 > 150  # every parameter of ViT-B + decoder
    err = abs(loss16 - loss32) / abs(loss32)
    cos = float(torch.nn.functional.cosine_similarity(grad32, grad16,
                                                      dim=0))
    print(f'bf16 vs fp32 (ViT-B MME, batch 1): loss {loss32:.5f} vs '
          f'{loss16:.5f}, rel err {err:.2e} (tol 1e-2), grad cosine '
          f'{cos:.5f} (tol 0.999); fp32 {t1 - t0:.1f} s, bf16 '
          f'{t2 - t1:.1f} s on CPU')
    assert err < 1e-2
    assert cos > 0.999
