"""The MME pretraining model (also VideoMAE pixel targets, for comparison)."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from mme_plugin.ops.mask_index import indices_from_mask
from mme_plugin.registry import MODELS
from mme_plugin.utils.config_checks import check_mme_weights

from ..losses.mme_loss import NoValidTargetsError
from ..targets import stack_samples
from .batch_checks import BatchChecks, fp16_autocast_active

__all__ = ['MME']

#: Target unit built for each decoder head name of a legacy config (one
#: with ``decoder.head_dims`` and no ``targets``).
LEGACY_TARGETS = dict(traj='TrajectoryTarget', hog='HOGTarget',
                      pixel='PixelTarget')


@MODELS.register_module()
class MME(BaseModel):
    """Masked Motion Encoding pretraining (Sun et al., CVPR 2023).

    The encoder sees the visible tubes; the decoder predicts, for every
    masked tube, each of the model's **targets**: registry-built units
    (:class:`~mme_plugin.models.MMETarget`) that declare their per-token
    size and produce their per-token values and validity. MME is
    ``targets=dict(traj=dict(type='TrajectoryTarget', ...), hog=dict(
    type='HOGTarget', ...))``; VideoMAE ``dict(pixel=dict(type=
    'PixelTarget'))``; any combination trains the same way. The decoder's
    heads are sized from the targets (``decoder.head_dims`` is derived) and
    the loss weights come from them.

    Data samples carry ``mask`` ``[N]`` plus whatever the targets read
    (``docs/mme_design.md``, results contract). With ``mme_collate`` and
    :class:`MMEDataPreprocessor` (the configs') they arrive stacked, one
    ``[B, ...]`` tensor per key (:class:`StackedSamples`), read without
    copies; a plain list of samples is stacked per key.

    Args:
        backbone (dict): Encoder config (:class:`MMEVisionTransformer`).
        decoder (dict): Decoder config (:class:`MMEDecoder`) without
            ``head_dims`` (derived from ``targets``).
        targets (dict[str, dict], optional): Name -> target config, in head
            order. Defaults to None: a legacy config, whose
            ``decoder.head_dims`` names (``traj``, ``hog``, ``pixel``) select
            the units with those sizes and whose ``loss.weights`` weight
            them.
        loss (dict): Loss config (:class:`MMELoss`); its weights default
            to the targets' weights.
        pixel_norm (bool): Legacy configs only: ``PixelTarget.normalize``.
            Defaults to True.
        hog_target (dict, optional): Legacy configs only:
            ``HOGTarget.device_hog``. Defaults to None.
        data_preprocessor (dict, optional): ``MMEDataPreprocessor`` in the
            configs (mmaction's ``ActionDataPreprocessor`` with one copy per
            key of a stacked batch); the stock one takes
            ``pseudo_collate`` batches.
        init_cfg (dict, optional): Initialisation config.
        target_generator (dict, optional): A stage that computes targets
            from the batch on the model's device before the loss, under
            ``torch.no_grad()`` (mmpretrain's ``target_generator`` slot):
            ``dict(type='MotionTargetGenerator', ...)`` computes the flow,
            trajectories, checks and trajectory targets from the pipeline's
            ``motion_frames`` (the device placement, ``docs/mme_design.md``).
            Defaults to None: the pipeline built the targets (the worker
            placement).
        check_interval (int): On an accelerator, the per-batch checks
            (finite targets and loss, some valid target) are read once every
            this many batches instead of every batch (a host sync each);
            on the CPU every batch (:class:`BatchChecks`). Defaults to 10.
    """

    def __init__(self,
                 backbone: Dict,
                 decoder: Dict,
                 targets: Optional[Dict[str, Dict]] = None,
                 loss: Dict = dict(type='MMELoss'),
                 pixel_norm: bool = True,
                 hog_target: Optional[Dict] = None,
                 data_preprocessor: Optional[Dict] = None,
                 init_cfg: Optional[Dict] = None,
                 target_generator: Optional[Dict] = None,
                 check_interval: int = 10) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.batch_checks = BatchChecks(check_interval)
        self.backbone = MODELS.build(backbone)
        decoder, loss = dict(decoder), dict(loss)
        # finite, >= 0, not all 0: error naming the key (model.targets.X.
        # weight or model.loss.weights.X) before the targets are built
        check_mme_weights(targets, loss)
        self.targets = self._build_targets(targets, decoder, loss,
                                           pixel_norm, hog_target)
        derived = self.head_dims
        if decoder.get('head_dims') not in (None, derived):
            raise ValueError(
                f'decoder.head_dims {dict(decoder["head_dims"])} disagree '
                f'with the sizes the targets declare ({derived}): drop '
                'head_dims from the config (it is derived) or fix the '
                'target settings')
        decoder['head_dims'] = derived
        decoder.setdefault('num_tokens', self.backbone.pos_embed.shape[1])
        decoder.setdefault('in_dims', self.backbone.embed_dims)
        self.decoder = MODELS.build(decoder)
        loss.setdefault('weights',
                        {n: t.weight for n, t in self.targets.items()})
        self.loss_module = MODELS.build(loss)
        self.target_names = list(self.targets)
        self.target_generator = None
        if target_generator is not None:
            self.target_generator = MODELS.build(target_generator)
            self.target_generator.setup(self.backbone, self.targets)
        missing = set(self.loss_module.weights) - set(self.target_names)
        if missing:
            raise ValueError(f'loss weights name targets {missing} that the '
                             f'decoder has no head for ({self.target_names})')

    @property
    def head_dims(self) -> Dict[str, int]:
        """Values per token of each target (= its decoder head's size)."""
        return {name: t.feat_dim for name, t in self.targets.items()}

    def _build_targets(self, targets: Optional[Dict], decoder: Dict,
                       loss: Dict, pixel_norm: bool,
                       hog_target: Optional[Dict]) -> nn.ModuleDict:
        """Build the target units (from ``decoder.head_dims`` for a legacy
        config)."""
        if targets is None:
            heads = decoder.get('head_dims')
            if not heads:
                raise ValueError('MME needs targets=dict(name=dict(type=...))'
                                 ' (or a legacy decoder.head_dims)')
            unknown = set(heads) - set(LEGACY_TARGETS)
            if unknown:
                raise ValueError(f'decoder.head_dims names {unknown}: give '
                                 'them as MME targets=dict(...)')
            extra = dict(pixel=dict(normalize=pixel_norm),
                         hog=dict(device_hog=hog_target))
            weights = loss.get('weights', {})
            targets = {
                name: dict(type=LEGACY_TARGETS[name], feat_dim=dim,
                           weight=weights.get(name, 1.0),
                           **extra.get(name, {}))
                for name, dim in heads.items()
            }
        elif hog_target is not None:
            raise ValueError('hog_target is for legacy configs: set '
                             'device_hog in the hog target instead')
        built = nn.ModuleDict()
        for name, cfg in targets.items():
            unit = MODELS.build(cfg)
            unit.setup(self.backbone)
            built[name] = unit
        return built

    def _inputs(self, inputs: Tensor) -> Tensor:
        if inputs.dim() == 6:  # [B, num_clips, C, T, H, W]
            if inputs.shape[1] != 1:
                raise ValueError('MME pretraining takes one clip per sample')
            inputs = inputs[:, 0]
        return inputs

    def _stack(self, data_samples: List, key: str,
               device: torch.device) -> Optional[Tensor]:
        return stack_samples(data_samples, key, device)

    def unnormalize(self, x: Tensor) -> Tensor:
        """The clip in [0, 1] (the preprocessor's normalisation undone)."""
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

    def extract_feat(self, inputs: Tensor, mask: Optional[Tensor] = None,
                     visible_idx: Optional[Tensor] = None) -> Tensor:
        """Encode the visible tokens (given by ``visible_idx``, or the
        bool ``mask``)."""
        return self.backbone(inputs, mask=mask, visible_idx=visible_idx)

    def mask_indices(self, data_samples: List,
                     device: torch.device) -> Tuple[Tensor, Tensor]:
        """``[B, N_visible]`` and ``[B, N_masked]`` sorted token indices:
        the pipeline's ``visible_idx`` / ``masked_idx`` (``TubeMasking``),
        else derived from its ``mask`` (one host sync)."""
        vis = self._stack(data_samples, 'visible_idx', device)
        msk = self._stack(data_samples, 'masked_idx', device)
        if vis is not None and msk is not None:
            return vis.long(), msk.long()
        mask = self._stack(data_samples, 'mask', device)
        if mask is None:
            raise KeyError('data samples have no "mask": add TubeMasking and '
                           "PackMMEInputs (or PackActionInputs(algorithm_keys="
                           "('mask', ...))) to the pipeline")
        return indices_from_mask(mask.bool())

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
        if mode == 'loss' and self.target_generator is not None:
            # before the encoder: its temporaries are freed before the
            # activations are allocated
            with torch.no_grad():
                data_samples = self.target_generator(data_samples,
                                                     inputs.device)
        vis_idx, mask_idx = self.mask_indices(data_samples, inputs.device)
        preds = self.decoder(self.extract_feat(inputs, visible_idx=vis_idx),
                             visible_idx=vis_idx, masked_idx=mask_idx)
        if mode == 'tensor':
            return preds
        if mode != 'loss':
            raise ValueError(f'MME supports modes loss|tensor, not {mode}')
        return self.loss(inputs, preds, mask_idx, data_samples)

    def build_targets(
        self, inputs: Tensor, data_samples: List,
        token_idx: Optional[Tensor] = None
    ) -> Tuple[Dict[str, Tensor], Dict[str, Optional[Tensor]]]:
        """Every target of every token (or of the tokens ``token_idx``),
        and its validity.

        Args:
            inputs (Tensor): ``[B, C, T, H, W]`` preprocessed clips.
            data_samples (list): Samples carrying the pipeline's targets.
            token_idx (Tensor, optional): ``[B, M]`` token indices; targets
                that can (e.g. the on-device HOG) compute only these.
                Defaults to None: every token.

        Returns:
            tuple: ``{name: [B, N, D]}`` targets (``[B, M, D]`` with
            ``token_idx``) and ``{name: [B, N] bool or None}`` validities
            (None = all valid), for every decoder head.
        """
        targets, valids = {}, {}
        for name, unit in self.targets.items():
            targets[name], valids[name] = unit(self, inputs, data_samples,
                                               token_idx)
        return targets, valids

    def loss(self, inputs: Tensor, preds: Dict[str, Tensor],
             masked_idx: Tensor, data_samples: List) -> Dict[str, Tensor]:
        """Loss terms of the masked tokens plus each target's monitors
        (:meth:`MMETarget.monitors`: ``<name>_target_abs``; the trajectory
        target's ``traj_valid``, ``reject_<reason>``, ``motionless``)."""
        targets, valids = self._flat_targets(inputs, preds, masked_idx,
                                             data_samples)
        try:
            losses = self.loss_module(
                {k: v.flatten(0, 1) for k, v in preds.items()}, targets,
                valids)
        except NoValidTargetsError as e:
            raise NoValidTargetsError(
                f'{e} Samples: {self._files(data_samples)}') from None
        self._check_batch(losses, targets, valids, data_samples)
        for name, unit in self.targets.items():
            for key, value in unit.monitors(name, targets[name],
                                            valids[name],
                                            data_samples).items():
                losses.setdefault(key, value)
        return losses

    def _flat_targets(
        self, inputs: Tensor, preds: Dict[str, Tensor], masked_idx: Tensor,
        data_samples: List
    ) -> Tuple[Dict[str, Tensor], Dict[str, Optional[Tensor]]]:
        """Targets ``[B * N_masked, D]`` and validities of the masked
        tokens, checked against the decoder heads' sizes."""
        targets, valids = self.build_targets(inputs, data_samples,
                                             masked_idx)
        for name in self.target_names:
            full, valid = targets[name], valids[name]
            if full.shape[-1] != preds[name].shape[-1]:
                raise ValueError(
                    f'{name} targets have {full.shape[-1]} values per token '
                    f'but the decoder head predicts {preds[name].shape[-1]}: '
                    f"set decoder.head_dims['{name}'] to {full.shape[-1]} "
                    "(legacy configs) or fix the target's settings: "
                    f'{self.targets[name]!r}')
            targets[name] = full.flatten(0, 1)
            valids[name] = None if valid is None else valid.flatten(0, 1)
        return targets, valids

    def _check_batch(self, losses: Dict[str, Tensor],
                     targets: Dict[str, Tensor],
                     valids: Dict[str, Optional[Tensor]],
                     data_samples: List) -> None:
        """Queue this batch's checks (:class:`BatchChecks`): finite
        targets, some valid target per weighted term, and a finite loss
        (not under fp16 autocast, where the loss scaler skips the step)."""
        it, files = self._iter(), self._files(data_samples)
        flags, errors = [], []
        bad_targets = []
        for key in losses:
            name = key[len('loss_'):]
            if name not in targets:
                continue
            valid = valids.get(name)
            if valid is not None:
                flags.append(~valid.any())
                errors.append((NoValidTargetsError, (
                    f'no masked token of this batch has a valid {name} '
                    'target; refusing to train on an empty target (the '
                    'release silently does). Check the flow / cache. '
                    f'Samples: {files}')))
            bad = ~torch.isfinite(targets[name]).all()
            bad_targets.append(bad)
            flags.append(bad)
            errors.append((FloatingPointError, (
                f'{key} is not finite at iteration {it} (non-finite '
                f'targets: {[name]}; samples: {files}). Check these '
                'samples.')))
        if not fp16_autocast_active(next(iter(losses.values())).device.type
                                    if losses else 'cpu'):
            any_bad = torch.stack(bad_targets).any() if bad_targets \
                else None
            for key, loss in losses.items():
                bad = ~torch.isfinite(loss)
                flags.append(bad if any_bad is None else bad & ~any_bad)
                errors.append((FloatingPointError, (
                    f'{key} is not finite at iteration {it} (non-finite '
                    f'targets: none; samples: {files}). Lower the learning '
                    'rate (or enable gradient clipping).')))
        self.batch_checks.record(flags, errors)
