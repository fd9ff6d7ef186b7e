"""mmaction's ``VideoDataset`` with annotation errors that name file and line,
and per-sample seeding under :class:`SeededSampler`."""
import os.path as osp
from typing import List, Optional, Union

from mmaction.datasets import VideoDataset

from mme_plugin.registry import DATASETS
from mme_plugin.utils.pipeline import apply_pipeline_edits

from .annotations import AnnotationError, read_video_list
from .seeded_sampler import seed_for_sample
from .skip_bad_samples import SampleSkipper, build_skip_policy

__all__ = ['CheckedVideoDataset', 'CheckedListMixin']


class CheckedListMixin:
    """Parse ``path label`` lists with :func:`read_video_list`.

    mmaction's parser fails on a bad line with a bare ``ValueError``; this one
    names the list, the line number and the line, checks labels against
    ``num_classes`` when given, and (``check_paths=True``) that every video
    exists.
    """

    check_paths: bool = True
    _skipper: Optional[SampleSkipper] = None

    def _set_skip_policy(self, skip_bad_samples: Union[bool, dict, None],
                         test_mode: bool) -> None:
        """Skip bad samples (:mod:`.skip_bad_samples`) per the dataset's
        ``skip_bad_samples`` argument."""
        policy = build_skip_policy(skip_bad_samples, test_mode)
        self._skipper = None if policy is None else SampleSkipper(policy)

    def __getitem__(self, idx: int):
        """Seed the generators for this sample (under :class:`SeededSampler`)
        and run the pipeline; replace a bad sample when skipping is on."""
        seed_for_sample(idx)
        if self._skipper is None:
            return super().__getitem__(int(idx))
        return self._skipper.fetch(
            idx, super().__getitem__,
            lambda i: self.get_data_info(i).get('filename', f'sample {i}'),
            len(self))

    def load_data_list(self) -> List[dict]:
        """Load the annotation list."""
        if self.multi_class:
            return super().load_data_list()
        entries = read_video_list(self.ann_file, self.delimiter,
                                  self.num_classes)
        root = self.data_prefix.get('video', '')
        data_list = []
        missing = []
        for num, (rel, label) in enumerate(entries, 1):
            path = osp.join(root, rel) if root else rel
            if self.check_paths and not osp.isfile(path):
                missing.append(f'{rel} (entry {num})')
            data_list.append(dict(filename=path, label=label))
        if missing:
            raise AnnotationError(
                f'{self.ann_file}: {len(missing)} listed videos do not exist '
                f'under {root!r}, e.g. {missing[:3]}. Fix data_prefix in the '
                'config or remove the lines (tools/analysis/check_dataset.py '
                'lists all problems).')
        return data_list


@DATASETS.register_module()
class CheckedVideoDataset(CheckedListMixin, VideoDataset):
    """``VideoDataset`` whose list errors name the file and line, and which
    checks that every listed video exists.

    Args:
        ann_file (str): The ``path label`` list.
        pipeline (list): Transform configs.
        check_paths (bool): Fail at start-up if a listed video is missing.
            Defaults to True.
        pipeline_edits (dict, optional): ``{type name: {key: value}}``
            applied to ``pipeline`` by transform type
            (:func:`~mme_plugin.utils.pipeline.apply_pipeline_edits`), so a
            config variant changes a step without restating the pipeline.
            Defaults to None.
        skip_bad_samples (bool | dict, optional): Replace a sample whose
            video, flow cache or targets are bad
            (:mod:`~mme_plugin.datasets.skip_bad_samples`); a dict sets the
            limits (``max_fraction``, ``max_skipped``, ``max_attempts``).
            Defaults to None: on in training, off with ``test_mode=True``.
        **kwargs: Arguments of mmaction's ``VideoDataset``.
    """

    def __init__(self, ann_file: str, pipeline: list,
                 check_paths: bool = True,
                 pipeline_edits: Optional[dict] = None,
                 skip_bad_samples: Union[bool, dict, None] = None,
                 **kwargs) -> None:
        self.check_paths = check_paths
        self._set_skip_policy(skip_bad_samples,
                              kwargs.get('test_mode', False))
        pipeline = apply_pipeline_edits(pipeline, pipeline_edits, ann_file)
        super().__init__(ann_file, pipeline=pipeline, **kwargs)
