"""mmaction's repeated-augmentation dataset, open to our video decoder.

Repeated sampling decodes a video once and trains on several clips of it,
which amortizes decoding: MAE-ST (Feichtenhofer et al., 2022, "Masked
Autoencoders As Spatiotemporal Learners") pretrains with 4 repeats for this
reason. For MME pipelines (:class:`MMESampleFrames`) every repeat's sparse
AND dense frames are decoded in one pass (:meth:`VideoDecode.decode`).
"""
from copy import deepcopy
from typing import List, Optional, Union

import numpy as np
from mmaction.datasets import RepeatAugDataset, VideoDataset
from mmengine.dataset.base_dataset import Compose

from mme_plugin.registry import DATASETS
from mme_plugin.utils.pipeline import apply_pipeline_edits

from .checked_video_dataset import CheckedListMixin

__all__ = ['RepeatAugVideoDataset']

_INIT = ('VideoInit', 'DecordInit')
_SAMPLE = ('SampleFrames', 'UniformSample', 'DenseSampleFrames',
           'MMESampleFrames')
_DECODE = ('VideoDecode', 'DecordDecode')


def _name(t) -> str:
    name = t['type'] if isinstance(t, dict) else type(t).__name__
    return name if isinstance(name, str) else name.__name__


@DATASETS.register_module()
class RepeatAugVideoDataset(CheckedListMixin, RepeatAugDataset):
    """``RepeatAugDataset`` (each video decoded once, augmented
    ``num_repeats`` times; use ``collate_fn=dict(type='mme_collate')`` for
    MME pretraining, ``'repeat_pseudo_collate'`` otherwise, both flatten
    the repeats) that also accepts :class:`VideoInit` /
    :class:`VideoDecode`, which fall back to PyAV where decord fails.

    The pipeline must start with an init, a sampling and a decode transform.
    Annotation errors name the file and line (:class:`CheckedVideoDataset`).

    Args:
        num_repeats (int): Augmented copies per video. Defaults to 2.
        sample_once (bool): Share the sampled frames between copies.
            Defaults to False.
        pipeline_edits (dict, optional): ``{type name: {key: value}}``
            applied to ``pipeline`` by transform type, as in
            :class:`CheckedVideoDataset`. Defaults to None.
        skip_bad_samples (bool | dict, optional): Replace a bad video, as
            in :class:`CheckedVideoDataset`. Defaults to None (on: this
            dataset only trains).
        **kwargs: Arguments of mmaction's ``VideoDataset``.
    """

    def __init__(self, ann_file: str, pipeline: list, num_repeats: int = 2,
                 sample_once: bool = False,
                 pipeline_edits: Optional[dict] = None,
                 skip_bad_samples: Union[bool, dict, None] = None,
                 **kwargs) -> None:
        self._set_skip_policy(skip_bad_samples, False)
        pipeline = apply_pipeline_edits(pipeline, pipeline_edits, ann_file)
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
        self._dense = names[1] == 'MMESampleFrames'
        if self._dense and names[2] != 'VideoDecode':
            raise ValueError(
                f'{type(self).__name__}: MMESampleFrames needs VideoDecode '
                "(extra_keys=('dense_frame_inds', )) as the decode step")

    def prepare_data(self, idx) -> List[dict]:
        """Decode once, then run the rest of the pipeline per repeat.

        Args:
            idx (int): Index of the video.

        Returns:
            list[dict]: ``num_repeats`` processed samples.
        """
        if not self._dense:
            return super().prepare_data(idx)
        init, sample, decode = self.pipeline.transforms[:3]
        info = init(self.get_data_info(idx))
        samples = []
        for r in range(self.num_repeats):
            if r == 0 or not self.sample_once:
                drawn = sample(dict(total_frames=info['total_frames'],
                                    filename=info['filename'],
                                    start_index=info.get('start_index', 0)))
            samples.append(drawn)
        arrays = []
        for d in samples:
            arrays += [d['frame_inds'], d['dense_frame_inds']]
        # one pass over the video; repeated indices get distinct arrays
        frames = decode.decode(info, arrays)
        out = []
        for r, d in enumerate(samples):
            res = deepcopy({k: v for k, v in info.items()
                            if k != 'video_reader'})
            res.update(d)
            imgs, dense = frames[2 * r], frames[2 * r + 1]
            res['imgs'] = imgs
            res['dense_imgs'] = np.stack(dense).reshape(
                *np.shape(d['dense_frame_inds']), *dense[0].shape)
            res['original_shape'] = res['img_shape'] = imgs[0].shape[:2]
            for t in self.pipeline.transforms[3:]:
                res = t(res)
            out.append(res)
        info.pop('video_reader', None)
        return out
