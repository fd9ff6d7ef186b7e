"""Pre-flight of pretraining data: run a config's own pipeline up to the
targets on a few fixed spans of every video, and measure what pretraining
needs.

Per span (deterministic positions: start, middle and end of the video for
three spans) :class:`TargetProbe` runs the dataset's transforms from the
first through ``BuildMMETargets``, with the config's own flow backend and
reliability checks, and records

* ``cut_density``: the fraction of dense frame pairs that
  ``CheckTrajectoryReliability`` flags as a shot cut (its ``traj_cut_pairs``;
  NaN without that step);
* ``reliable``: the fraction of the grid's points whose trajectory is still
  valid after the reliability checks (``traj_point_valid`` entering
  ``BuildMMETargets``);
* ``motion``: the mean per-step displacement of the valid points, pixels of
  the decoded video (``BuildMMETargets``' own ``traj_motion``,
  :func:`~mme_plugin.ops.motion_magnitude`);
* ``error``: the exception a step raised (``BuildMMETargets`` refusing the
  clip, a decoding error, ...), as training would have raised it: the
  video stops training whenever that span is sampled.

Nothing is re-implemented: the thresholds are the transforms' own. A flow
cache is read where it has the video; otherwise flows are computed on the
fly and nothing is written (a cache in ``'read'`` mode without the video is
reported, since training would stop there too).

A config whose model computes the targets (the *device placement*:
``PrepareMotionInputs`` in the pipeline and ``model.target_generator``,
``docs/mme_design.md``) is probed the same way: the pipeline runs up to
``PrepareMotionInputs``, then the model's own
:class:`~mme_plugin.models.MotionTargetGenerator` (built alone from
``cfg.model``, on the CPU) computes the span's flow, checks and targets.
The measures are the same (``cut_pairs``, ``point_valid``, ``motion`` of
its output). The device placement does not refuse a clip: one with too few
valid tokens (or non-finite values) is *unusable*, its tokens are excluded
from the loss (``traj_unusable``), and :attr:`SpanReport.unusable` says
why.
"""
import inspect
import math
import multiprocessing as mp
import random
import time
from dataclasses import dataclass
from typing import (Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Tuple)

import numpy as np

from mme_plugin.ops.motion_magnitude import DEFAULT_MIN_MOTION
from mme_plugin.utils.pipeline import find_transform, transform_type

__all__ = ['TARGET_STEP', 'DEVICE_STEP', 'SpanReport', 'TargetProbe',
           'builds_targets', 'device_targets', 'build_generator',
           'config_min_motion', 'span_offsets', 'probe_videos']

#: The transform whose outputs pretraining trains on (worker placement).
TARGET_STEP = 'BuildMMETargets'
#: The transform that hands the dense frames to the model's target
#: generator (device placement).
DEVICE_STEP = 'PrepareMotionInputs'


def device_targets(pipeline: Sequence,
                   model_cfg: Optional[Mapping] = None) -> bool:
    """Whether the model computes the targets of this pipeline (device
    placement: ``PrepareMotionInputs`` and ``model.target_generator``)."""
    return bool((model_cfg or {}).get('target_generator')) and any(
        transform_type(t) == DEVICE_STEP for t in pipeline)


def builds_targets(pipeline: Sequence,
                   model_cfg: Optional[Mapping] = None) -> bool:
    """Whether a (effective) pipeline builds MME targets, in the workers
    (``BuildMMETargets``) or, with ``model_cfg``, on the model
    (:func:`device_targets`)."""
    return any(transform_type(t) == TARGET_STEP for t in pipeline) or \
        device_targets(pipeline, model_cfg)


def config_min_motion(pipeline: Sequence,
                      model_cfg: Optional[Mapping] = None) -> float:
    """The motion below which training counts a clip as motionless:
    ``BuildMMETargets.min_motion`` (worker placement) or
    ``model.target_generator.min_motion`` (device placement), else
    :data:`~mme_plugin.ops.motion_magnitude.DEFAULT_MIN_MOTION`."""
    step = find_transform(pipeline, TARGET_STEP, required=False)
    if step is None and device_targets(pipeline, model_cfg):
        step = model_cfg['target_generator']
    return float((step or {}).get('min_motion', DEFAULT_MIN_MOTION))


def _default(registry, cfg: Mapping, arg: str):
    """``cfg[arg]``, else the default of the registered class."""
    if arg in cfg:
        return cfg[arg]
    cls = registry.get(cfg['type']) if isinstance(cfg['type'], str) else \
        cfg['type']
    param = inspect.signature(cls).parameters.get(arg)
    return None if param is None or \
        param.default is inspect.Parameter.empty else param.default


class _Geometry:
    """What the target units and the generator read from the encoder."""

    def __init__(self, patch_size: int, tubelet_size: int) -> None:
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size


def build_generator(model_cfg: Mapping):
    """The model's target generator alone, set up as the model sets it up
    (the encoder's patch size, the target units' ``grid_step`` /
    ``traj_len``), without building the encoder or the decoder.

    Args:
        model_cfg (Mapping): ``cfg.model`` with ``target_generator``,
            ``backbone`` and ``targets``.

    Returns:
        MotionTargetGenerator: Ready for ``compute``, without HOG inputs.

    Raises:
        ValueError: The model has no ``target_generator``.
    """
    from mme_plugin.registry import MODELS
    gen_cfg = model_cfg.get('target_generator')
    if not gen_cfg:
        raise ValueError('cfg.model has no target_generator: the targets '
                         'are computed in the data pipeline')
    backbone = model_cfg['backbone']
    geometry = _Geometry(int(_default(MODELS, backbone, 'patch_size')),
                         int(_default(MODELS, backbone, 'tubelet_size')
                             or 2))
    units = {}
    for name, cfg in (model_cfg.get('targets') or {}).items():
        unit = MODELS.build(cfg)
        unit.setup(geometry)
        units[name] = unit
    gen = MODELS.build({**dict(gen_cfg), 'hog_inputs': False})
    gen.setup(geometry, units)
    return gen


def span_offsets(total: int, span: int, spans: int) -> List[int]:
    """First frames of ``spans`` spans of ``span`` frames, evenly placed from
    the start to the end of a ``total``-frame video (one span: the middle).

    Args:
        total (int): Frames of the video.
        span (int): Frames one sample covers.
        spans (int): How many spans.

    Returns:
        list[int]: Distinct offsets, ascending (fewer than ``spans`` when the
        video has fewer distinct positions).
    """
    last = max(0, total - span)
    if spans <= 1:
        return [last // 2]
    return sorted({int(round(last * k / (spans - 1))) for k in range(spans)})


@dataclass
class SpanReport:
    """What one span of a video gives pretraining.

    Attributes:
        index (int): Span number (0-based).
        frames (tuple[int, int]): First and last frame the span decodes
            (-1, -1 if the sampler did not run).
        cut_density (float): Fraction of dense frame pairs flagged as shot
            cuts.
        reliable (float): Fraction of points valid after the reliability
            checks.
        motion (float): Mean per-step displacement of the valid points (px
            of the decoded video).
        error (str, optional): Why the pipeline refused the span (training
            stops on it), or None.
        unusable (str, optional): Device placement: why the model's
            target generator made the span's targets unusable (all its
            tokens are excluded from the loss; training goes on), or None.
    """
    index: int
    frames: Tuple[int, int] = (-1, -1)
    cut_density: float = float('nan')
    reliable: float = float('nan')
    motion: float = float('nan')
    error: Optional[str] = None
    unusable: Optional[str] = None

    def numbers(self) -> str:
        """The measures, for a report line."""
        return (f'cut density {self.cut_density:.2f}, reliable points '
                f'{self.reliable:.1%}, motion {self.motion:.3f} px/frame')


def _frame_keys(results: Dict) -> List[str]:
    return [k for k in ('frame_inds', 'dense_frame_inds') if k in results]


class TargetProbe:
    """Run a pretraining pipeline up to its targets on fixed spans.

    Args:
        pipeline (Sequence[dict]): The dataset's effective pipeline (transform
            configs); it must contain ``BuildMMETargets``, or
            ``PrepareMotionInputs`` with a ``model_cfg`` that has a
            ``target_generator`` (device placement).
        spans (int): Spans per video. Defaults to 3.
        model_cfg (Mapping, optional): ``cfg.model``; used only for the
            device placement (its target generator, built alone, runs on
            the CPU). Defaults to None.

    Raises:
        ValueError: The pipeline builds no MME targets, or has
            ``PrepareMotionInputs`` without a ``model.target_generator``.
    """

    def __init__(self, pipeline: Sequence, spans: int = 3,
                 model_cfg: Optional[Mapping] = None) -> None:
        from mme_plugin.registry import TRANSFORMS
        types = [transform_type(t) for t in pipeline]
        self.generator = None
        if TARGET_STEP in types:
            end = types.index(TARGET_STEP) + 1
        elif DEVICE_STEP in types:
            if not (model_cfg or {}).get('target_generator'):
                raise ValueError(
                    f'the pipeline hands the dense frames to the model '
                    f'({DEVICE_STEP}) but no model.target_generator was '
                    'given: pass cfg.model (with target_generator) or use '
                    'the worker placement (BuildMMETargets)')
            end = types.index(DEVICE_STEP) + 1
            self.generator = build_generator(model_cfg)
        else:
            raise ValueError(f'the pipeline builds no MME targets (no '
                             f'{TARGET_STEP} or {DEVICE_STEP}; it has '
                             f'{types})')
        self.steps = [TRANSFORMS.build(dict(t)) if isinstance(t, dict) else t
                      for t in pipeline[:end]]
        self.spans = spans

    @property
    def min_motion(self) -> float:
        """``BuildMMETargets.min_motion`` of the pipeline or the target
        generator's (what training counts as motionless)."""
        if self.generator is not None:
            return float(self.generator.min_motion)
        return float(self.steps[-1].min_motion)

    def _device(self, results: Dict, report: SpanReport) -> None:
        """The model's target generator on this span (CPU, float32)."""
        out = self.generator.compute(results['motion_frames'][None],
                                     results['motion_scale'][None])
        cuts = out.get('cut_pairs')
        if cuts is not None:
            report.cut_density = float(cuts.float().mean())
        report.reliable = float(out['point_valid'].float().mean())
        report.motion = float(out['motion'][0])
        if float(out['traj_unusable'][0]) > 0:
            fraction = float(out['valid_fraction'][0])
            report.unusable = (
                'non-finite targets' if not bool(out['finite'][0]) else
                f'{fraction:.1%} of the tokens have valid trajectories, '
                'below model.target_generator.min_valid_fraction '
                f'{self.generator.min_valid_fraction:g}')

    def _flow(self, step, results: Dict, report: SpanReport) -> Dict:
        """``ComputeFlow`` as training runs it, but writing no cache: read
        the cache where it has the video, else compute this span's flows."""
        cache = getattr(step, 'cache', None)
        if cache is None:
            return step(results)
        if step.check_cache(results['filename'],
                            int(results['total_frames'])) is None:
            return step(results)
        if step.cache_mode == 'read':  # training raises FlowCacheError here
            try:
                step(results)
            except Exception as e:  # noqa: BLE001 - reported as training's
                report.error = f'{type(e).__name__}: {e}'
        return step._compute_all(results)  # the flows, no cache write

    def _shift(self, results: Dict, offset_index: int) -> Tuple[int, int]:
        """Move the sampler's frame indices to the ``offset_index``-th
        fixed position; the sampled layout itself is the sampler's."""
        keys = _frame_keys(results)
        lo = min(int(np.min(results[k])) for k in keys)
        hi = max(int(np.max(results[k])) for k in keys)
        total = int(results['total_frames'])
        offsets = span_offsets(total, hi - lo + 1, self.spans)
        delta = offsets[min(offset_index, len(offsets) - 1)] - lo
        for k in keys:
            results[k] = np.asarray(results[k]) + delta
        return lo + delta, hi + delta

    def probe_span(self, info: Dict, index: int) -> SpanReport:
        """Run the pipeline on one span.

        Args:
            info (dict): The dataset's sample (``filename``, ``label``...).
            index (int): Span number.

        Returns:
            SpanReport: Its measures.
        """
        report = SpanReport(index)
        states = np.random.get_state(), random.getstate()
        np.random.seed(index)  # crop choices etc.: the same on every run
        random.seed(index)
        results = dict(info)
        try:
            for step in self.steps:
                name = transform_type(step)
                if name == TARGET_STEP:
                    cuts = results.get('traj_cut_pairs')
                    if cuts is not None:
                        report.cut_density = float(np.mean(cuts))
                    report.reliable = float(
                        np.mean(results['traj_point_valid']))
                    try:
                        step(results)
                    finally:  # set before BuildMMETargets' refusal
                        report.motion = float(
                            results.get('traj_motion', math.nan))
                    break
                had_frames = bool(_frame_keys(results))
                if name == 'ComputeFlow':
                    results = self._flow(step, results, report)
                else:
                    results = step(results)
                if not had_frames and _frame_keys(results):
                    report.frames = self._shift(results, index)
                if name == DEVICE_STEP and self.generator is not None:
                    self._device(results, report)
                    break
        except Exception as e:  # noqa: BLE001 - what training would raise
            report.error = report.error or f'{type(e).__name__}: {e}'
        finally:
            np.random.set_state(states[0])
            random.setstate(states[1])
        return report

    def __call__(self, path: str, label: int = -1) -> List[SpanReport]:
        """Every span of one video.

        Args:
            path (str): Video file.
            label (int): Its label. Defaults to -1.

        Returns:
            list[SpanReport]: One per distinct span.
        """
        info = dict(filename=path, label=label, modality='RGB',
                    start_index=0)
        reports, seen = [], set()
        for k in range(max(1, self.spans)):
            r = self.probe_span(info, k)
            if r.frames != (-1, -1) and r.frames in seen:
                continue  # short video: the same span again
            seen.add(r.frames)
            reports.append(r)
        return reports


_PROBE: Optional[TargetProbe] = None


def _init_worker(pipeline: Sequence, spans: int,
                 model_cfg: Optional[Mapping] = None) -> None:
    # No cv2.setNumThreads here: in a child forked after the parent used
    # OpenCV's thread pool it deadlocks (seen with OpenCV 4 on Linux).
    global _PROBE
    _PROBE = TargetProbe(pipeline, spans, model_cfg)
    if _PROBE.generator is not None:  # one thread per process, as the
        import torch  # dataloader's workers (and no OpenMP pool after fork)
        torch.set_num_threads(1)


def _probe(path: str) -> Tuple[str, List[SpanReport]]:
    return path, _PROBE(path)


def probe_videos(paths: Iterable[str], pipeline: Sequence, spans: int = 3,
                 workers: int = 1,
                 progress: Optional[Callable[[int, int, float], None]] = None,
                 model_cfg: Optional[Mapping] = None
                 ) -> Dict[str, List[SpanReport]]:
    """:class:`TargetProbe` over many videos, in parallel.

    Args:
        paths (Iterable[str]): Video files.
        pipeline (Sequence[dict]): The effective pipeline (configs).
        spans (int): Spans per video. Defaults to 3.
        workers (int): Processes (forked; each builds the pipeline once).
            Defaults to 1 (in this process).
        progress (Callable, optional): Called with (done, total, eta_s).
        model_cfg (Mapping, optional): ``cfg.model``, for the device
            placement (see :class:`TargetProbe`). Defaults to None.

    Returns:
        dict: path -> its span reports.
    """
    paths = list(paths)
    pipeline = [dict(t) for t in pipeline]
    out, start = {}, time.time()
    if workers > 1:
        pool = mp.get_context('fork').Pool(
            workers, initializer=_init_worker,
            initargs=(pipeline, spans, model_cfg))
        it = pool.imap_unordered(_probe, paths)
    else:
        probe = TargetProbe(pipeline, spans, model_cfg)
        pool, it = None, ((p, probe(p)) for p in paths)
    try:
        for i, (path, reports) in enumerate(it, 1):
            out[path] = reports
            if progress:
                el = time.time() - start
                progress(i, len(paths), el / i * (len(paths) - i))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return out
