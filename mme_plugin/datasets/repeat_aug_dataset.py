"""mmaction's repeated-augmentation dataset, open to our video decoder."""
from mmaction.datasets import RepeatAugDataset, VideoDataset
from mmengine.dataset.base_dataset import Compose

from mme_plugin.registry import DATASETS

from .checked_video_dataset import CheckedListMixin

__all__ = ['RepeatAugVideoDataset']

_INIT = ('VideoInit', 'DecordInit')
_SAMPLE = ('SampleFrames', 'UniformSample', 'DenseSampleFrames')
_DECODE = ('VideoDecode', 'DecordDecode')


def _name(t) -> str:
    name = t['type'] if isinstance(t, dict) else type(t).__name__
    return name if isinstance(name, str) else name.__name__


@DATASETS.register_module()
class RepeatAugVideoDataset(CheckedListMixin, RepeatAugDataset):
    """``RepeatAugDataset`` (each video decoded once, augmented
    ``num_repeats`` times; use ``collate_fn=dict(type=
    'repeat_pseudo_collate')``) that also accepts :class:`VideoInit` /
    :class:`VideoDecode`, which fall back to PyAV where decord fails.

    The pipeline must start with an init, a sampling and a decode transform.
    Annotation errors name the file and line (:class:`CheckedVideoDataset`).

    Args:
        num_repeats (int): Augmented copies per video. Defaults to 2.
        sample_once (bool): Share the sampled frames between copies.
            Defaults to False.
        **kwargs: Arguments of mmaction's ``VideoDataset``.
    """

    def __init__(self, ann_file: str, pipeline: list, num_repeats: int = 2,
                 sample_once: bool = False, **kwargs) -> None:
        names = [_name(t) for t in pipeline[:3]]
        if len(names) < 3 or names[0] not in _INIT or names[
                1] not in _SAMPLE or names[2] not in _DECODE:
            raise ValueError(
                f'{type(self).__name__} needs a pipeline starting with '
                f'{_INIT} -> {_SAMPLE} -> {_DECODE}, got {names}')
        kwargs['test_mode'] = False
        VideoDataset.__init__(self, ann_file, pipeline=pipeline, **kwargs)
        self.num_repeats = num_repeats
        self.sample_once = sample_once
        assert isinstance(self.pipeline, Compose)
