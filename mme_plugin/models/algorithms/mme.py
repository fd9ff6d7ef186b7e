"""The MME pretraining model (also VideoMAE pixel targets, for comparison)."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor

from mme_plugin.ops.flow_reliability import REJECT_REASONS
from mme_plugin.registry import MODELS

from ..losses.mme_loss import NoValidTargetsError

__all__ = ['MME', 'pixel_targets']


def pixel_targets(video: Tensor, patch_size: int, tubelet_size: int,
                  normalize: bool = True, eps: float = 1e-6) -> Tensor:
    """VideoMAE pixel targets: per-token patches, optionally normalised.

    Args:
        video (Tensor): ``[B, C, T, H, W]`` clip in [0, 1] (un-normalised).
        patch_size (int): Spatial patch size.
        tubelet_size (int): Temporal patch size.
        normalize (bool): Normalise each token's pixels per channel to zero
            mean and unit variance (VideoMAE's ``norm_pix_loss``).
        eps (float): Added to the variance.

    Returns:
        Tensor: ``[B, N, tubelet * p * p * C]`` in ``(t, h, w)`` token order.
    """
    b, c, t, h, w = video.shape
    p, q = patch_size, tubelet_size
    x = video.reshape(b, c, t // q, q, h // p, p, w // p, p)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # b, t', h', w', q, p, p, c
    x = x.reshape(b, (t // q) * (h // p) * (w // p), q * p * p, c)
    if normalize:
        mean = x.mean(2, keepdim=True)
        var = x.var(2, unbiased=True, keepdim=True)
        x = (x - mean) / (var + eps).sqrt()
    return x.flatten(2)


@MODELS.register_module()
class MME(BaseModel):
    """Masked Motion Encoding pretraining (Sun et al., CVPR 2023).

    The encoder sees the visible tubes; the decoder predicts, for every
    masked tube, its motion trajectory (``traj``) and shape (``hog``)
    targets built in the data pipeline (:class:`BuildMMETargets`), or the
    tube's pixels (``pixel``: VideoMAE) computed here from the input clip.

    Data samples carry ``mask`` ``[N]``, and per target ``<name>_target``
    ``[N, D]`` and optionally ``<name>_valid`` ``[N]``. With ``hog_target``
    set, the ``hog`` target is instead computed here, on the model's device,
    from the ``hog_frames`` and ``hog_points`` of
    :class:`~mme_plugin.datasets.transforms.PrepareHOGInputs` (the release
    computes HOG on the GPU in the training step too).

    Args:
        backbone (dict): Encoder config (:class:`MMEVisionTransformer`).
        decoder (dict): Decoder config (:class:`MMEDecoder`); its
            ``head_dims`` keys are the targets.
        loss (dict): Loss config (:class:`MMELoss`).
        pixel_norm (bool): VideoMAE ``norm_pix_loss`` for the ``pixel``
            target. Defaults to True.
        hog_target (dict, optional): Config of the on-device HOG
            (:class:`~mme_plugin.models.PointHOG`), used when the data
            samples carry ``hog_frames`` instead of ``hog_target``.
            Defaults to None.
        data_preprocessor (dict, optional): Defaults to mmaction's
            ``ActionDataPreprocessor`` config in the configs.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: Dict,
                 decoder: Dict,
                 loss: Dict = dict(type='MMELoss'),
                 pixel_norm: bool = True,
                 hog_target: Optional[Dict] = None,
                 data_preprocessor: Optional[Dict] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        num_tokens = self.backbone.pos_embed.shape[1]
        decoder = dict(decoder)
        decoder.setdefault('num_tokens', num_tokens)
        decoder.setdefault('in_dims', self.backbone.embed_dims)
        self.decoder = MODELS.build(decoder)
        self.loss_module = MODELS.build(loss)
        self.target_names = list(self.decoder.heads.keys())
        self.pixel_norm = pixel_norm
        self.hog_target = (MODELS.build(hog_target)
                           if hog_target is not None else None)
        missing = set(self.loss_module.weights) - set(self.target_names)
        if missing:
            raise ValueError(f'loss weights name targets {missing} that the '
                             f'decoder has no head for ({self.target_names})')

    def _inputs(self, inputs: Tensor) -> Tensor:
        if inputs.dim() == 6:  # [B, num_clips, C, T, H, W]
            if inputs.shape[1] != 1:
                raise ValueError('MME pretraining takes one clip per sample')
            inputs = inputs[:, 0]
        return inputs

    def _stack(self, data_samples: List, key: str,
               device: torch.device) -> Optional[Tensor]:
        if not data_samples or key not in data_samples[0]:
            return None
        return torch.stack([torch.as_tensor(ds.get(key))
                            for ds in data_samples]).to(device)

    def _unnormalize(self, x: Tensor) -> Tensor:
        pre = self.data_preprocessor
        if getattr(pre, '_enable_normalize', False):
            shape = (1, -1, 1, 1, 1)
            x = x * pre.std.view(shape) + pre.mean.view(shape)
        return x / 255.0

    @staticmethod
    def _iter() -> str:
        from mmengine.logging import MessageHub
        hub = MessageHub.get_current_instance()
        it = hub.get_info('iter')
        return '?' if it is None else str(it + 1)

    @staticmethod
    def _files(data_samples: List) -> List[str]:
        return [ds.metainfo.get('filename', '<no filename in metainfo>')
                for ds in data_samples]

    def _device_hog(self, data_samples: List,
                    device: torch.device) -> Optional[Tensor]:
        frames = self._stack(data_samples, 'hog_frames', device)
        if frames is None:
            return None
        if self.hog_target is None:
            raise KeyError(
                'data samples carry hog_frames (PrepareHOGInputs) but the '
                "model has no hog_target: add hog_target=dict(type="
                "'PointHOG') to the MME model config")
        points = self._stack(data_samples, 'hog_points', device)
        if points is None:
            raise KeyError("data samples carry hog_frames but no hog_points:"
                           " pack both (PackActionInputs algorithm_keys)")
        return self.hog_target(frames, points, self.backbone.patch_size)

    def extract_feat(self, inputs: Tensor, mask: Tensor) -> Tensor:
        """Encode the visible tokens."""
        return self.backbone(inputs, mask=mask)

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List] = None,
                mode: str = 'loss') -> Union[Dict, List]:
        """``loss``: loss terms and monitors; ``tensor``: predictions.

        Args:
            inputs (Tensor): Clips from the data preprocessor.
            data_samples (list): Samples with ``mask`` and targets.
            mode (str): ``'loss'`` or ``'tensor'``. Defaults to ``'loss'``.
        """
        inputs = self._inputs(inputs)
        if data_samples is None:
            raise ValueError('MME needs data samples carrying the mask')
        mask = self._stack(data_samples, 'mask', inputs.device)
        if mask is None:
            raise KeyError('data samples have no "mask": add TubeMasking and '
                           "PackActionInputs(algorithm_keys=('mask', ...)) "
                           'to the pipeline')
        mask = mask.bool()
        preds = self.decoder(self.extract_feat(inputs, mask), mask)
        if mode == 'tensor':
            return preds
        if mode != 'loss':
            raise ValueError(f'MME supports modes loss|tensor, not {mode}')
        return self.loss(inputs, preds, mask, data_samples)

    def build_targets(
        self, inputs: Tensor, data_samples: List
    ) -> Tuple[Dict[str, Tensor], Dict[str, Optional[Tensor]]]:
        """Every target of every token, and its validity.

        Args:
            inputs (Tensor): ``[B, C, T, H, W]`` preprocessed clips.
            data_samples (list): Samples carrying the pipeline's targets.

        Returns:
            tuple: ``{name: [B, N, D]}`` targets and ``{name: [B, N] bool or
            None}`` validities (None = all valid), for every decoder head.
        """
        targets, valids = {}, {}
        for name in self.target_names:
            if name == 'pixel':
                cfg = self.backbone
                full = pixel_targets(
                    self._unnormalize(inputs), cfg.patch_size,
                    cfg.tubelet_size, normalize=self.pixel_norm)
                valid = None
            else:
                full = self._stack(data_samples, f'{name}_target',
                                   inputs.device)
                if full is None and name == 'hog':
                    full = self._device_hog(data_samples, inputs.device)
                if full is None:
                    raise KeyError(
                        f'data samples have no "{name}_target": the pipeline '
                        f'must build it (BuildMMETargets) and pack it '
                        f"(PackActionInputs algorithm_keys)")
                valid = self._stack(data_samples, f'{name}_valid',
                                    inputs.device)
            targets[name] = full
            valids[name] = None if valid is None else valid.bool()
        return targets, valids

    def loss(self, inputs: Tensor, preds: Dict[str, Tensor], mask: Tensor,
             data_samples: List) -> Dict[str, Tensor]:
        """Loss terms plus monitors (``traj_valid``, ``<name>_target_abs``
        and, if the pipeline packs ``traj_reject``, the fraction of points
        rejected per reason, ``reject_<reason>``)."""
        full_targets, full_valids = self.build_targets(inputs, data_samples)
        targets, valids = {}, {}
        for name in self.target_names:
            full, valid = full_targets[name], full_valids[name]
            if full.shape[-1] != preds[name].shape[-1]:
                raise ValueError(
                    f'{name} targets have {full.shape[-1]} values per token '
                    f'but the decoder head predicts {preds[name].shape[-1]}: '
                    f"set decoder.head_dims['{name}'] to {full.shape[-1]} "
                    '(see configs/_base_/models/mme_vit-base-p16.py)')
            targets[name] = full[mask]
            valids[name] = None if valid is None else valid[mask]
        flat_preds = {k: v.flatten(0, 1) for k, v in preds.items()}
        try:
            losses = self.loss_module(flat_preds, targets, valids)
        except NoValidTargetsError as e:
            raise NoValidTargetsError(
                f'{e} Samples: {self._files(data_samples)}') from None
        for name, loss in losses.items():
            if not torch.isfinite(loss):
                bad_targets = [
                    k for k, t in targets.items()
                    if not torch.isfinite(t).all()
                ]
                raise FloatingPointError(
                    f'{name} is {loss.item()} at iteration {self._iter()} '
                    '(non-finite '
                    f'targets: {bad_targets or "none"}; samples: '
                    f'{self._files(data_samples)}). Lower the learning rate '
                    '(or enable gradient clipping) if the targets are '
                    'finite; otherwise check these samples.')
        with torch.no_grad():
            if valids.get('traj') is not None:
                losses['traj_valid'] = valids['traj'].float().mean()
            for name, tgt in targets.items():
                losses[f'{name}_target_abs'] = tgt.abs().mean()
            reject = self._stack(data_samples, 'traj_reject', inputs.device)
            if reject is not None:  # BuildMMETargets' per-reason fractions
                for k, why in enumerate(REJECT_REASONS):
                    losses[f'reject_{why}'] = reject[:, k].float().mean()
        return losses
