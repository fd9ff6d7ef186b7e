"""Probes of frozen encoders on the generated dataset: logistic regression
to the class, ridge regression to the exact motion."""
import os.path as osp
from typing import Dict, Optional

from .methods import REPO, SUPERVISED

__all__ = ['Probe']


class Probe:
    """Probes of frozen encoders on the dataset: a logistic probe of the
    class and a ridge probe of the exact motion.

    The encoder is the supervised recipe's stock ``VisionTransformer``; the
    clips go through its one-view val pipeline.

    Args:
        data_root: The generated dataset (``train.txt``, ``val.txt``).
    """

    def __init__(self, data_root: str) -> None:
        import torch
        from mmengine.config import Config

        from mme_plugin.datasets.synthetic import load_clip_velocities
        from mme_plugin.registry import DATASETS
        from mme_plugin.utils import register_all_modules
        register_all_modules()
        cfg = Config.fromfile(osp.join(REPO, SUPERVISED))
        self.backbone_cfg = cfg.model.backbone
        self.data = {}
        for split in ('train', 'val'):
            ds = cfg.test_dataloader.dataset.copy()
            ds.ann_file = f'{data_root}/{split}.txt'
            ds.data_prefix = dict(video=data_root)
            ds.pipeline = cfg.val_dataloader.dataset.pipeline  # 1 view
            self.data[split] = DATASETS.build(ds)
        # the clips' exact motion, for the motion-regression probe
        self.velocity = {
            split: torch.from_numpy(load_clip_velocities(data_root, split))
            for split in ('train', 'val')
        }

    def encoder(self, ckpt: Optional[str], seed: int):
        """A stock VisionTransformer: random init (seeded) or the
        ``backbone.*`` weights of a pretraining checkpoint.

        Args:
            ckpt: A pretraining checkpoint, or None for random init.
            seed: The init's seed.

        Returns:
            torch.nn.Module: The encoder.
        """
        import logging

        import torch
        from mmengine.logging import MMLogger

        from mme_plugin.checkpoint import extract_prefix
        from mme_plugin.engine.safe_load import safe_torch_load
        from mme_plugin.registry import MODELS
        torch.manual_seed(seed)
        enc = MODELS.build(self.backbone_cfg)
        # mmengine logs every parameter's init at INFO when no runner has a
        # log file: ~300 lines per probe in the main job's output
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            enc.init_weights()
        finally:
            logger.setLevel(level)
        if ckpt is not None:
            state = safe_torch_load(ckpt)['state_dict']
            state = extract_prefix(state, 'backbone.')
            state.setdefault('pos_embed', enc.state_dict()['pos_embed'])
            enc.load_state_dict(state, strict=True)
        return enc

    def __call__(self, ckpt: Optional[str], seed: int) -> Dict:
        """Probe one encoder.

        Args:
            ckpt: A pretraining checkpoint, or None for random init.
            seed: The init's seed.

        Returns:
            dict: Train and test accuracy of the probe, the R^2 of a ridge
            regression from the same features to the clips' exact motion
            (:func:`~mme_plugin.evaluation.ridge_r2`: ``motion_r2``,
            ``translation_r2``, ``within_class_r2``, per component), how
            much the test
            features vary between clips
            (:func:`~mme_plugin.evaluation.feature_spread`), and the
            collapse measures (:mod:`mme_plugin.evaluation.collapse`): the
            constant share of the last block's test tokens and the
            per-block top / median singular value ratios.
        """
        from mme_plugin.evaluation import (ConstantShareMeter,
                                           block_sv_ratios, extract_features,
                                           feature_spread, logistic_probe,
                                           ridge_r2)
        enc = self.encoder(ckpt, seed)
        xtr, ytr = extract_features(enc, self.data['train'])
        meter = ConstantShareMeter()
        handle = enc.blocks[-1].register_forward_hook(
            lambda m, i, o: meter.update(o))
        try:
            xte, yte = extract_features(enc, self.data['val'])
        finally:
            handle.remove()
        return dict(logistic_probe(xtr, ytr, xte, yte),
                    **ridge_r2(xtr, self.velocity['train'], xte,
                               self.velocity['val'], train_groups=ytr,
                               test_groups=yte),
                    **feature_spread(xte),
                    constant_share=meter.value,
                    sv_ratio=block_sv_ratios(enc.blocks))
