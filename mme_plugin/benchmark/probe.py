"""Probes of encoders on the generated dataset: logistic regression to the
class and ridge regression to the exact motion (frozen), and a low-label
fine-tune (5 labelled clips per class)."""
import os.path as osp
from typing import Dict, Optional

from .methods import REPO, SUPERVISED

__all__ = ['Probe', 'LOW_LABEL_PER_CLASS', 'LOW_LABEL_EPOCHS']

#: Labelled clips per class of the low-label fine-tune (issue #22).
LOW_LABEL_PER_CLASS = 5
#: Its passes over those clips (40 clips: 5 steps of 8 per epoch).
LOW_LABEL_EPOCHS = 20


class Probe:
    """Probes of encoders on the dataset: a logistic probe of the class and
    a ridge probe of the exact motion on frozen features, and a low-label
    fine-tune.

    The encoder is the supervised recipe's stock ``VisionTransformer``; the
    clips go through its one-view val pipeline, decoded once and kept
    (``clips``: about 280 MB for the main job's 720 clips).

    Args:
        data_root: The generated dataset (``train.txt``, ``val.txt``).
    """

    def __init__(self, data_root: str) -> None:
        import torch
        from mmengine.config import Config

        from mme_plugin.datasets.synthetic import load_clip_velocities
        from mme_plugin.evaluation import load_clips
        from mme_plugin.registry import DATASETS
        from mme_plugin.utils import register_all_modules
        register_all_modules()
        cfg = Config.fromfile(osp.join(REPO, SUPERVISED))
        self.backbone_cfg = cfg.model.backbone
        self.num_classes = cfg.model.cls_head.num_classes
        self.clips = {}
        for split in ('train', 'val'):
            ds = cfg.test_dataloader.dataset.copy()
            ds.ann_file = f'{data_root}/{split}.txt'
            ds.data_prefix = dict(video=data_root)
            ds.pipeline = cfg.val_dataloader.dataset.pipeline  # 1 view
            self.clips[split] = load_clips(DATASETS.build(ds))
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
                                           block_sv_ratios, encode_clips,
                                           feature_spread, logistic_probe,
                                           ridge_r2)
        enc = self.encoder(ckpt, seed)
        xtr, ytr = encode_clips(enc, self.clips['train'][0]), \
            self.clips['train'][1]
        meter = ConstantShareMeter()
        handle = enc.blocks[-1].register_forward_hook(
            lambda m, i, o: meter.update(o))
        try:
            xte, yte = encode_clips(enc, self.clips['val'][0]), \
                self.clips['val'][1]
        finally:
            handle.remove()
        return dict(logistic_probe(xtr, ytr, xte, yte),
                    **ridge_r2(xtr, self.velocity['train'], xte,
                               self.velocity['val'], train_groups=ytr,
                               test_groups=yte),
                    **feature_spread(xte),
                    constant_share=meter.value,
                    sv_ratio=block_sv_ratios(enc.blocks))

    def low_label(self, ckpt: Optional[str], seed: int) -> Dict:
        """Fine-tune the encoder end to end on :data:`LOW_LABEL_PER_CLASS`
        train clips per class (a seeded draw per seed) and score it on the
        test clips (:func:`~mme_plugin.evaluation.finetune_classifier`, its
        fixed recipe, :data:`LOW_LABEL_EPOCHS` epochs).

        Args:
            ckpt: A pretraining checkpoint, or None for random init.
            seed: The init's, draw's and training's seed.

        Returns:
            dict: ``train_acc``, ``test_acc``, ``steps``, ``final_loss``,
            ``per_class`` and ``seconds``.
        """
        import time

        from mme_plugin.evaluation import (few_shot_indices,
                                           finetune_classifier)
        t0 = time.time()
        x, y = self.clips['train']
        idx = few_shot_indices(y, LOW_LABEL_PER_CLASS, seed,
                               num_classes=self.num_classes)
        out = finetune_classifier(
            self.encoder(ckpt, seed), x[idx], y[idx], *self.clips['val'],
            num_classes=self.num_classes, epochs=LOW_LABEL_EPOCHS, seed=seed)
        return dict(out, per_class=LOW_LABEL_PER_CLASS,
                    seconds=round(time.time() - t0, 1))
