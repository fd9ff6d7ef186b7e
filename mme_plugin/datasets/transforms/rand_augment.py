"""RandAugment for video: the same random operations on every frame of a clip.

mmaction's ``PytorchVideoWrapper(op='RandAugment')`` cannot be used here
(pytorchvideo 0.1.5 imports a removed torchvision module, docs/stack_notes.md).
This transform follows the policy the MME / VideoMAE fine-tune recipes name,
timm's ``rand-m7-n4-mstd0.5-inc1`` (Cubuk et al., "RandAugment", 2020): ``n``
operations drawn uniformly from the list below, each applied with probability
``prob``, at magnitude ``m`` (out of 10) perturbed by a Gaussian of std
``mstd``, with the "increasing" variants whose strength grows with ``m``. The
operations, their ranges and draws are sampled once per clip so the clip stays
temporally consistent.
"""
import random
from typing import Callable, Dict, List, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image, ImageEnhance, ImageOps

from mme_plugin.registry import TRANSFORMS

__all__ = ['VideoRandAugment', 'RAND_AUGMENT_OPS']


def _sign() -> float:
    return -1.0 if random.random() < 0.5 else 1.0


def _affine(img: Image.Image, matrix, fill) -> Image.Image:
    return img.transform(img.size, Image.AFFINE, matrix,
                         resample=Image.BILINEAR, fillcolor=fill)


def _make_op(name: str, f: float,
             size) -> Callable[[Image.Image], Image.Image]:
    """Build one operation at magnitude fraction ``f`` in [0, 1] (drawing its
    random signs now, so every frame gets the same operation)."""
    fill = (128, 128, 128)
    w, h = size
    if name == 'AutoContrast':
        return ImageOps.autocontrast
    if name == 'Equalize':
        return ImageOps.equalize
    if name == 'Invert':
        return ImageOps.invert
    if name == 'Rotate':
        angle = 30.0 * f * _sign()
        return lambda im: im.rotate(angle, resample=Image.BILINEAR,
                                    fillcolor=fill)
    if name == 'PosterizeIncreasing':
        bits = max(1, 4 - int(4 * f))
        return lambda im: ImageOps.posterize(im, bits)
    if name == 'SolarizeIncreasing':
        threshold = 256 - int(256 * f)
        return lambda im: ImageOps.solarize(im, threshold)
    if name == 'SolarizeAdd':
        add = int(110 * f)

        def solarize_add(im: Image.Image) -> Image.Image:
            a = np.asarray(im).astype(np.int16)
            a = np.where(a < 128, np.minimum(a + add, 255), a)
            return Image.fromarray(a.astype(np.uint8))

        return solarize_add
    if name in ('ColorIncreasing', 'ContrastIncreasing',
                'BrightnessIncreasing', 'SharpnessIncreasing'):
        factor = max(0.1, 1.0 + 0.9 * f * _sign())
        enh = {'Color': ImageEnhance.Color, 'Contrast': ImageEnhance.Contrast,
               'Brightness': ImageEnhance.Brightness,
               'Sharpness': ImageEnhance.Sharpness}[name[:-len('Increasing')]]
        return lambda im: enh(im).enhance(factor)
    if name == 'ShearX':
        s = 0.3 * f * _sign()
        return lambda im: _affine(im, (1, s, 0, 0, 1, 0), fill)
    if name == 'ShearY':
        s = 0.3 * f * _sign()
        return lambda im: _affine(im, (1, 0, 0, s, 1, 0), fill)
    if name == 'TranslateXRel':
        t = 0.45 * f * _sign() * w
        return lambda im: _affine(im, (1, 0, t, 0, 1, 0), fill)
    if name == 'TranslateYRel':
        t = 0.45 * f * _sign() * h
        return lambda im: _affine(im, (1, 0, 0, 0, 1, t), fill)
    raise KeyError(name)


#: The operation names of timm's "increasing" RandAugment policy.
RAND_AUGMENT_OPS = (
    'AutoContrast', 'Equalize', 'Invert', 'Rotate', 'PosterizeIncreasing',
    'SolarizeIncreasing', 'SolarizeAdd', 'ColorIncreasing',
    'ContrastIncreasing', 'BrightnessIncreasing', 'SharpnessIncreasing',
    'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel')


@TRANSFORMS.register_module()
class VideoRandAugment(BaseTransform):
    """RandAugment applied identically to all frames of ``imgs``.

    Args:
        magnitude (float): Magnitude out of 10. Defaults to 7.
        num_ops (int): Operations per clip. Defaults to 4.
        magnitude_std (float): Std of the per-op magnitude noise.
            Defaults to 0.5.
        prob (float): Probability to apply each drawn operation.
            Defaults to 0.5.
        ops (Sequence[str]): Operation names. Defaults to
            :data:`RAND_AUGMENT_OPS`.
    """

    def __init__(self, magnitude: float = 7, num_ops: int = 4,
                 magnitude_std: float = 0.5, prob: float = 0.5,
                 ops: Sequence[str] = RAND_AUGMENT_OPS) -> None:
        unknown = set(ops) - set(RAND_AUGMENT_OPS)
        if unknown:
            raise ValueError(f'unknown RandAugment ops {sorted(unknown)}')
        self.magnitude = magnitude
        self.num_ops = num_ops
        self.magnitude_std = magnitude_std
        self.prob = prob
        self.ops = tuple(ops)

    def _draw(self, size) -> List[Callable]:
        chosen = []
        for name in random.choices(self.ops, k=self.num_ops):
            if random.random() > self.prob:
                continue
            m = self.magnitude
            if self.magnitude_std > 0:
                m = random.gauss(m, self.magnitude_std)
            chosen.append(_make_op(name, min(max(m, 0.0), 10.0) / 10.0, size))
        return chosen

    def transform(self, results: Dict) -> Dict:
        """Augment the clip."""
        imgs = results['imgs']
        h, w = np.asarray(imgs[0]).shape[:2]
        ops = self._draw((w, h))
        if not ops:
            return results
        out = []
        for frame in imgs:
            im = Image.fromarray(np.asarray(frame))
            for op in ops:
                im = op(im)
            out.append(np.asarray(im))
        results['imgs'] = out
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(magnitude={self.magnitude}, '
                f'num_ops={self.num_ops}, magnitude_std={self.magnitude_std},'
                f' prob={self.prob})')
