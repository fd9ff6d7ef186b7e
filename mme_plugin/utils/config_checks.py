"""Refuse config values that cannot be right before the first iteration.

Three families, each named by the config key a user edits:

* **Transform arguments** (:func:`check_transform_arguments`): a
  ``pipeline_edits`` (or positional ``pipeline.N``) value is checked against
  the registered transform's ``__init__`` signature: unknown argument names
  and values of an obviously wrong type (``int`` expected, ``str`` given)
  are errors naming the edit, the transform and what it accepts.
* **Loss weights** (:func:`check_loss_weights`, called when the MME model is
  built): every target weight is a finite number >= 0 and not all are 0.
* **Geometry** (:func:`check_pipeline_geometry`, :func:`check_config`,
  called by ``tools/train.py`` and ``tools/test.py`` before the runner is
  built): the pipeline a dataset runs (its ``pipeline_edits`` applied)
  samples the clip length, tubelet, trajectory length, point grid, patch
  size and frame size that the model's backbone and targets are sized for.
  A disagreement otherwise fails at iteration 1 with a shape error that
  points at ``decoder.head_dims`` or an attention layer.
"""
import difflib
import dis
import inspect
import math
import numbers
import typing
from collections import abc
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Tuple)

__all__ = ['ConfigCheckError', 'accepted_arguments',
           'check_transform_arguments', 'check_loss_weights',
           'check_mme_weights', 'check_pipeline_geometry', 'check_config',
           'dataset_configs']


class ConfigCheckError(ValueError):
    """A config value that cannot be right, found before training."""


_EMPTY = inspect.Parameter.empty


def _kwargs_use(func: Callable, name: str) -> str:
    """How ``func`` uses its ``**name``: ``'unused'``, ``'forwarded'`` (to
    ``super().__init__``) or ``'other'`` (read from the bytecode, so
    docstrings do not count)."""
    try:
        instructions = list(dis.get_instructions(func))
    except TypeError:
        return 'other'
    if not any(ins.argval == name and ins.opname.startswith('LOAD')
               for ins in instructions):
        return 'unused'
    if any(ins.argval in ('super', '__class__') for ins in instructions):
        return 'forwarded'
    return 'other'


def accepted_arguments(cls: type) -> Tuple[Dict[str, inspect.Parameter],
                                           Dict[str, Any], bool]:
    """The keyword arguments a class's constructor accepts.

    ``**kwargs`` handed on to a base class are followed along the MRO; a
    ``**kwargs`` that the body never uses (mmaction's ``SampleFrames``)
    accepts nothing, one that is used some other way accepts anything.

    Args:
        cls (type): The class.

    Returns:
        tuple: ``{name: Parameter}`` (first definition wins), ``{name:
        annotation}`` (resolved where possible) and whether any other name
        is accepted too.
    """
    params: Dict[str, inspect.Parameter] = {}
    hints: Dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass is object:
            return params, hints, False
        try:
            sig = inspect.signature(init)
        except (TypeError, ValueError):
            return params, hints, True
        try:
            resolved = typing.get_type_hints(init)
        except Exception:  # unresolvable forward references
            resolved = {}
        var_kw = None
        for name, p in list(sig.parameters.items())[1:]:
            if p.kind == p.VAR_KEYWORD:
                var_kw = name
            elif p.kind != p.VAR_POSITIONAL and name not in params:
                params[name] = p
                ann = resolved.get(name, p.annotation)
                hints[name] = _EMPTY if isinstance(ann, str) else ann
        if var_kw is None:
            return params, hints, False
        use = _kwargs_use(init, var_kw)
        if use == 'unused':
            return params, hints, False  # swallowed: nothing else accepted
        if use == 'other':
            return params, hints, True
    return params, hints, True


def _type_ok(value: Any, ann: Any) -> Optional[bool]:
    """True/False where ``ann`` makes the type clear, None where not."""
    if ann is _EMPTY or ann is Any:
        return None
    origin = typing.get_origin(ann)
    if origin is typing.Union:
        answers = [_type_ok(value, a) for a in typing.get_args(ann)]
        if any(a is True for a in answers):
            return True
        return None if any(a is None for a in answers) else False
    if ann is type(None):
        return value is None
    base = origin or ann
    if base in (list, tuple, abc.Sequence, abc.MutableSequence):
        return isinstance(value, (list, tuple))
    if base in (dict, abc.Mapping, abc.MutableMapping):
        return isinstance(value, abc.Mapping)
    if isinstance(value, bool):
        if ann is bool:
            return True
        return False if ann in (int, float, str) else None
    if ann is bool:
        return isinstance(value, numbers.Integral) and value in (0, 1)
    if ann is int:
        return isinstance(value, numbers.Integral)
    if ann is float:
        return isinstance(value, numbers.Real)
    if ann is str:
        return isinstance(value, str)
    if isinstance(ann, type) and ann.__module__ in ('mmengine.config.config',
                                                    'collections.abc'):
        return isinstance(value, abc.Mapping) or None
    return None


def _default_ok(value: Any, default: Any) -> Optional[bool]:
    """Number vs string vs bool, judged from an unannotated default."""
    if value is None or default is None or default is _EMPTY:
        return None
    if isinstance(default, bool):
        return isinstance(value, bool) or (
            isinstance(value, numbers.Integral) and value in (0, 1))
    if isinstance(default, numbers.Real):
        return None if not isinstance(value, (str, bool)) else False
    if isinstance(default, str):
        return None if not isinstance(value, (numbers.Real, bool)) else False
    return None


def _describe(ann: Any, default: Any) -> str:
    if ann is not _EMPTY:
        text = getattr(ann, '__name__', None) or str(ann)
        return text.replace('typing.', '')
    return f'{type(default).__name__} (its default is {default!r})'


def _resolve_transform(step_type: Any) -> Optional[type]:
    if isinstance(step_type, type):
        return step_type
    try:
        from mme_plugin.registry import TRANSFORMS
        return TRANSFORMS.get(step_type)
    except Exception:  # registry not importable: nothing to check against
        return None


def check_transform_arguments(step_type: Any, args: Mapping[str, Any],
                              key: Callable[[str], str],
                              where: str = 'dataset') -> None:
    """Check arguments given to a transform against its signature.

    Args:
        step_type (str | type): The transform's registered type.
        args (Mapping): Argument name -> value (``type`` is skipped).
        key (callable): Argument name -> the config key that set it, e.g.
            ``pipeline_edits.SampleFrames.num_clips``.
        where (str): Prefix of the message (the annotation file).

    Raises:
        ConfigCheckError: An argument the transform does not accept, or a
            value whose type its annotation or default rules out.
    """
    cls = _resolve_transform(step_type)
    if cls is None:
        return  # unknown type: building the pipeline names it
    name = cls.__name__
    params, hints, open_ = accepted_arguments(cls)
    for arg, value in args.items():
        if arg == 'type':
            continue
        if arg not in params:
            if open_:
                continue
            close = difflib.get_close_matches(arg, params, n=1)
            hint = f' (did you mean {close[0]!r}?)' if close else ''
            raise ConfigCheckError(
                f'{where}: {key(arg)}: {name} has no argument {arg!r}'
                f'{hint}; it accepts: {", ".join(params) or "none"}')
        ann, default = hints.get(arg, _EMPTY), params[arg].default
        if default is not _EMPTY and _type_ok(default, ann) is False:
            ann = _EMPTY  # an annotation its own default contradicts
        ok = _type_ok(value, ann)
        if ok is None and ann is _EMPTY:
            ok = _default_ok(value, default)
        if ok is False:
            raise ConfigCheckError(
                f'{where}: {key(arg)}={value!r}: {name}.{arg} expects '
                f'{_describe(ann, default)}, got {type(value).__name__}. Fix '
                'the value in the config or on the command line.')


def _weight_error(value: Any) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f'must be a number, got {value!r} ({type(value).__name__})'
    if not math.isfinite(value):
        return f'must be finite, got {value}'
    if value < 0:
        return (f'must be >= 0, got {value}: a negative weight maximises the '
                'error (the loss term goes below 0)')
    return None


def check_loss_weights(weights: Mapping[str, Any], key: str,
                       require_nonzero: bool = True) -> None:
    """Check loss weights: finite numbers >= 0, not all 0.

    Args:
        weights (Mapping): Target name -> weight.
        key (str): Format of the config key of a weight, with ``{}`` for
            the target name, e.g. ``'model.targets.{}.weight'``.
        require_nonzero (bool): Also refuse all-zero weights (nothing would
            be trained). Defaults to True.

    Raises:
        ConfigCheckError: Naming the key, the value and the fix.
    """
    for name, value in weights.items():
        problem = _weight_error(value)
        if problem:
            raise ConfigCheckError(
                f'{key.format(name)} {problem}. Set a weight >= 0 (0 switches '
                'the target off).')
    if require_nonzero and weights and not any(weights.values()):
        listed = ', '.join(f'{key.format(n)}={v}' for n, v in weights.items())
        raise ConfigCheckError(
            f'every loss weight is 0 ({listed}): nothing would be trained. '
            'Give at least one target a weight > 0.')


def check_mme_weights(targets: Optional[Mapping[str, Mapping]],
                      loss: Mapping) -> None:
    """Check the MME model's loss weights as configured (before building).

    ``loss.weights``, when given, are the weights the loss uses; otherwise
    each target's ``weight`` (default 1.0) is.

    Args:
        targets (Mapping, optional): ``model.targets``.
        loss (Mapping): ``model.loss``.

    Raises:
        ConfigCheckError: See :func:`check_loss_weights`.
    """
    explicit = loss.get('weights')
    if explicit is not None:
        check_loss_weights(explicit, 'model.loss.weights.{}')
    if targets:
        check_loss_weights(
            {n: (t.get('weight', 1.0) if isinstance(t, Mapping) else 1.0)
             for n, t in targets.items()}, 'model.targets.{}.weight',
            require_nonzero=explicit is None)


# ------------------------------------------------------------------ geometry
def _class_defaults(registry_name: str, type_: Any) -> Dict[str, Any]:
    try:
        from mme_plugin import registry
        cls = type_ if isinstance(type_, type) else getattr(
            registry, registry_name).get(type_)
    except Exception:
        return {}
    if cls is None:
        return {}
    params, _, _ = accepted_arguments(cls)
    return {n: p.default for n, p in params.items() if p.default is not _EMPTY}


def _short(type_: Any) -> str:
    return type_.__name__ if isinstance(type_, type) else \
        str(type_).split('.')[-1]


class _Steps:
    """The effective pipeline of one dataset config, with the keys that
    set each argument (edit, positional or default)."""

    def __init__(self, dataset_key: str, dataset_cfg: Mapping) -> None:
        from .pipeline import effective_pipeline, transform_type
        self.key = dataset_key
        self.steps = effective_pipeline(dataset_cfg, log=False)
        self.edits = dict(dataset_cfg.get('pipeline_edits') or {})
        self.types = [transform_type(s) if isinstance(s, Mapping) else
                      type(s).__name__ for s in self.steps]

    def find(self, type_name: str) -> Optional[int]:
        found = [i for i, t in enumerate(self.types) if t == type_name]
        return found[0] if len(found) == 1 else None

    def value(self, i: int, arg: str) -> Tuple[Any, str]:
        """The argument's value and the key that set it."""
        step, type_name = self.steps[i], self.types[i]
        if not isinstance(step, Mapping):
            return getattr(step, arg, None), f'{self.key}.pipeline.{i}.{arg}'
        if arg in (self.edits.get(type_name) or {}):
            return step[arg], f'{self.key}.pipeline_edits.{type_name}.{arg}'
        if arg in step:
            return step[arg], (f'{self.key}.pipeline.{i}.{arg} '
                               f'({type_name}.{arg})')
        default = _class_defaults('TRANSFORMS', step['type']).get(arg, _EMPTY)
        return (None if default is _EMPTY else default,
                f'{self.key}.pipeline.{i}.{arg} ({type_name}.{arg}, '
                'default)')

    def edit_form(self, i: int, arg: str) -> str:
        return f'{self.key}.pipeline_edits.{self.types[i]}.{arg}'


def _model_value(cfg: Mapping, key: str, registry: str, arg: str
                 ) -> Tuple[Any, str]:
    if arg in cfg:
        return cfg[arg], f'{key}.{arg}'
    default = _class_defaults(registry, cfg.get('type')).get(arg, _EMPTY)
    return (None if default is _EMPTY else default,
            f'{key}.{arg} (default)')


def _as_size(value: Any) -> Optional[Tuple[int, int]]:
    """``(w, h)`` of an int or a pair (None otherwise)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, numbers.Integral) for v in value):
        return int(value[0]), int(value[1])
    return None


#: Steps that set the frame size, and the argument that holds it.
_CROPS = dict(CenterCrop='crop_size', ThreeCrop='crop_size',
              TenCrop='crop_size', RandomCrop='size',
              MultiScaleCrop='input_size', MotionMultiScaleCrop='input_size')
_RESIZES = ('Resize', 'MotionResize')
#: Steps after which the size is not known from the config.
_UNKNOWN_SIZE = ('RandomResizedCrop', 'TorchVisionWrapper',
                 'PytorchVideoWrapper', 'RandomRescale', 'Fuse')
_SAMPLERS = ('MMESampleFrames', 'DenseSampleFrames', 'SampleFrames',
             'UniformSample', 'UniformSampleFrames')


def _final_size(steps: _Steps) -> Optional[Tuple[Tuple[int, int], int, str]]:
    """The frame size the pipeline ends with, its step and argument."""
    found = None
    for i, type_name in enumerate(steps.types):
        if type_name in _CROPS:
            arg = _CROPS[type_name]
            size = _as_size(steps.value(i, arg)[0])
            found = None if size is None else (size, i, arg)
        elif type_name in _RESIZES:
            scale = _as_size(steps.value(i, 'scale')[0])
            keep = steps.value(i, 'keep_ratio')[0]
            found = None if keep or scale is None or -1 in scale else (
                scale, i, 'scale')
        elif type_name in _UNKNOWN_SIZE:
            found = None
    return found


#: Worker-placement steps of the motion targets (docs/mme_design.md).
_WORKER_STEPS = ('ComputeFlow', 'ComputeTrajectories',
                 'CheckTrajectoryReliability', 'BuildMMETargets',
                 'PrepareHOGInputs')
_DEVICE_STEP = 'PrepareMotionInputs'


def _placement_problems(model_cfg: Mapping, dataset_key: str,
                        steps: _Steps) -> List[str]:
    """Where the motion targets are computed: the pipeline
    (``ComputeFlow`` ... ``BuildMMETargets``) or the model
    (``PrepareMotionInputs`` + ``model.target_generator``), never both or
    half of one; and the generator's point spacing against the targets'."""
    gen = model_cfg.get('target_generator')
    has_gen = bool(gen)
    device = _DEVICE_STEP in steps.types
    worker = [t for t in _WORKER_STEPS if t in steps.types]
    gen_key = 'model.target_generator'
    pipe_key = f'{dataset_key}.pipeline'
    problems = []
    if has_gen and not device:
        problems.append(
            f'{gen_key} is set (the model computes the motion targets) but '
            f'{pipe_key} has no {_DEVICE_STEP} to hand it the dense frames; '
            f"add dict(type='{_DEVICE_STEP}') after the crop / resize "
            '(MotionResize)' + (f' instead of {worker}' if worker else '') +
            f', or set {gen_key}=None to compute the targets in the '
            'pipeline (worker placement, as pretrain_k400_worker.py; '
            'docs/mme_design.md)')
    if device and not has_gen:
        problems.append(
            f'{pipe_key} has {_DEVICE_STEP} (the dense frames go to the '
            f'model) but {gen_key} is not set, so nothing computes the '
            f"motion targets; set {gen_key}=dict(type="
            "'MotionTargetGenerator') (as pretrain_k400.py), or replace "
            f'{_DEVICE_STEP} by ComputeFlow ... BuildMMETargets (worker '
            'placement, as pretrain_k400_worker.py)')
    if device and worker:
        problems.append(
            f'{pipe_key} has both {_DEVICE_STEP} (targets computed by the '
            f'model) and the worker-placement steps {worker}; keep one '
            'placement (docs/mme_design.md)')
    if not (has_gen and isinstance(gen, Mapping)):
        return problems
    step, step_key = _model_value(gen, gen_key, 'MODELS', 'grid_step')
    grids, hogs = {}, {}
    for name, target in (model_cfg.get('targets') or {}).items():
        if not isinstance(target, Mapping):
            continue
        key = f'model.targets.{name}'
        kind = _short(target.get('type', ''))
        if kind == 'TrajectoryTarget':
            val, val_key = _model_value(target, key, 'MODELS', 'grid_step')
            grids[val_key] = val
        elif kind == 'HOGTarget':
            mode = _model_value(target, key, 'MODELS', 'mode')[0]
            if mode == 'trajectory':
                val, val_key = _model_value(target, key, 'MODELS',
                                            'cell_size')
                hogs[val_key] = val
            source, source_key = _model_value(target, key, 'MODELS',
                                              'source')
            if source == 'pipeline':
                problems.append(
                    f"{source_key} = 'pipeline' but the model computes the "
                    f'motion targets ({gen_key}); the pipeline computes no '
                    f"HOG: set {source_key.split(' ')[0]}='device'")
    if step is not None:
        for val_key, val in grids.items():
            if val is not None and val != step:
                problems.append(
                    f'{step_key} = {step!r} but {val_key} = {val!r} (the '
                    'target holds (patch / grid_step)^2 points per token); '
                    f"drop {step_key.split(' ')[0]} (it is taken from the "
                    'trajectory target) or make them equal')
    effective = step if step is not None else next(
        (v for v in grids.values() if v is not None), None)
    if effective is not None:
        source = step_key if step is not None else next(iter(grids))
        for val_key, val in hogs.items():
            if val is not None and val != effective:
                problems.append(
                    f'{val_key} = {val!r} but the target generator tracks '
                    f'points every {effective} px ({source}) (HOG is '
                    'sampled at the tracked points, one cell each); make '
                    'them equal')
    return problems


def check_pipeline_geometry(model_cfg: Mapping, dataset_key: str,
                            dataset_cfg: Mapping) -> None:
    """Check that a dataset's pipeline fits the model it feeds.

    Compared (where both sides are in the configs): the sampled clip length
    with ``backbone.num_frames``; the tubelet and patch sizes of
    ``MMESampleFrames`` / ``TubeMasking`` / ``BuildMMETargets`` with the
    backbone's; the frame size the pipeline ends with (last resize or crop)
    with ``backbone.img_size``; and for an MME model each target's
    ``traj_len`` with ``MMESampleFrames``, its point spacing
    (``grid_step`` / ``cell_size``) with ``ComputeTrajectories``, and the
    HOG settings with ``ComputeHOG`` / ``PrepareHOGInputs`` /
    ``device_hog``. Where the motion targets are computed: a pipeline with
    ``PrepareMotionInputs`` needs ``model.target_generator`` and vice
    versa, never with the worker steps (``ComputeFlow`` ...
    ``BuildMMETargets``) as well; the generator's ``grid_step`` (if set)
    must equal the trajectory target's, and a trajectory HOG target's
    ``cell_size`` the generator's point spacing.

    Args:
        model_cfg (Mapping): ``cfg.model``.
        dataset_key (str): The dataset's config key, e.g.
            ``'train_dataloader.dataset'``.
        dataset_cfg (Mapping): Its config (``pipeline``, ``pipeline_edits``).

    Raises:
        ConfigCheckError: Every disagreement, each naming both keys, both
            values and the ``pipeline_edits`` form that fixes the pipeline.
    """
    steps = _Steps(dataset_key, dataset_cfg)
    problems: List[str] = []

    def compare(type_name: str, arg: str, model_val: Any, model_key: str,
                why: str) -> None:
        i = steps.find(type_name)
        if i is None or model_val is None:
            return
        pipe_val, pipe_key = steps.value(i, arg)
        if pipe_val is None or pipe_val == model_val:
            return
        problems.append(
            f'{pipe_key} = {pipe_val!r} but {model_key} = {model_val!r} '
            f'({why}); set {steps.edit_form(i, arg)}={model_val!r} or '
            f'change {model_key.split(" ")[0]}')

    backbone = model_cfg.get('backbone') or {}
    if isinstance(backbone, Mapping) and backbone.get('type') is not None:
        bb = {arg: _model_value(backbone, 'model.backbone', 'MODELS', arg)
              for arg in ('num_frames', 'tubelet_size', 'patch_size',
                          'img_size')}
        frames, frames_key = bb['num_frames']
        for sampler in _SAMPLERS:
            compare(sampler, 'clip_len', frames, frames_key,
                    'the encoder\'s position embedding is sized for this '
                    'many frames per clip')
        tubelet, tubelet_key = bb['tubelet_size']
        for type_name in ('MMESampleFrames', 'TubeMasking'):
            compare(type_name, 'tubelet_size', tubelet, tubelet_key,
                    'tokens span this many frames')
        patch, patch_key = bb['patch_size']
        for type_name in ('TubeMasking', 'BuildMMETargets'):
            compare(type_name, 'patch_size', patch, patch_key,
                    'masks and targets are per encoder token')
        img, img_key = bb['img_size']
        final = _final_size(steps)
        size = _as_size(img)
        if final is not None and size is not None and final[0] != size:
            (w, h), i, arg = final
            value, key = steps.value(i, arg)
            problems.append(
                f'{key} = {value!r} ends the pipeline with {w}x{h} frames '
                f'but {img_key} = {img!r} (the encoder\'s position '
                f'embedding is sized for {size[0]}x{size[1]}); set '
                f'{steps.edit_form(i, arg)} to the encoder size or change '
                f'{img_key.split(" ")[0]}')
    for name, target in (model_cfg.get('targets') or {}).items():
        if not isinstance(target, Mapping):
            continue
        key = f'model.targets.{name}'
        kind = _short(target.get('type', ''))

        def get(arg: str) -> Tuple[Any, str]:
            return _model_value(target, key, 'MODELS', arg)

        if kind == 'TrajectoryTarget':
            compare('MMESampleFrames', 'traj_len', *get('traj_len'),
                    'the trajectory target holds traj_len steps per tube')
            compare('ComputeTrajectories', 'grid_step', *get('grid_step'),
                    'the target holds (patch / grid_step)^2 points per token')
        elif kind == 'HOGTarget':
            mode = get('mode')[0]
            if mode == 'trajectory':
                compare('MMESampleFrames', 'traj_len', *get('traj_len'),
                        'HOG along the trajectory has traj_len + 1 steps')
            compare('ComputeTrajectories', 'grid_step', *get('cell_size'),
                    'HOG is sampled at the tracked points, one cell each')
            for step in ('ComputeHOG', 'PrepareHOGInputs'):
                compare(step, 'mode', *get('mode'),
                        'the target is sized for this HOG mode')
            for arg in ('cell_size', 'channels', 'nbins'):
                compare('ComputeHOG', arg, *get(arg),
                        'the target is sized from its own HOG settings')
            device = target.get('device_hog')
            if isinstance(device, Mapping):
                for arg in ('cell_size', 'channels', 'nbins'):
                    dev_val, dev_key = _model_value(
                        device, f'{key}.device_hog', 'MODELS', arg)
                    val, val_key = get(arg)
                    if None not in (dev_val, val) and dev_val != val:
                        problems.append(
                            f'{dev_key} = {dev_val!r} but {val_key} = '
                            f'{val!r} (the target is sized from its own '
                            'settings); make them equal')
            elif steps.find('PrepareHOGInputs') is not None and \
                    steps.find('ComputeHOG') is None:
                problems.append(
                    f'{dataset_key} ends HOG with PrepareHOGInputs (HOG '
                    f'computed by the model) but {key} has no device_hog; '
                    f"set {key}.device_hog=dict(type='PointHOG') or use "
                    'ComputeHOG in the pipeline')
    problems += _placement_problems(model_cfg, dataset_key, steps)
    if problems:
        raise ConfigCheckError(
            f'{dataset_key}: the pipeline does not fit the model '
            '(this would fail at the first iteration):\n  ' +
            '\n  '.join(problems))


def dataset_configs(key: str, cfg: Any) -> Iterable[Tuple[str, Mapping]]:
    """``(key, dataset config)`` of every dataset with a ``pipeline`` under
    ``cfg`` (through ``dataset`` / ``datasets`` wrappers)."""
    if not isinstance(cfg, Mapping):
        return
    if 'pipeline' in cfg:
        yield key, cfg
    elif isinstance(cfg.get('dataset'), Mapping):
        yield from dataset_configs(f'{key}.dataset', cfg['dataset'])
    elif isinstance(cfg.get('datasets'), (list, tuple)):
        for i, ds in enumerate(cfg['datasets']):
            yield from dataset_configs(f'{key}.datasets.{i}', ds)


def check_config(cfg: Mapping,
                 loaders: Sequence[str] = ('train_dataloader',
                                           'val_dataloader')) -> None:
    """The checks a run makes before building its runner.

    Every dataset of the named dataloaders (those set in ``cfg``): its
    ``pipeline_edits`` against the transforms' signatures, and its pipeline
    against ``cfg.model`` (:func:`check_pipeline_geometry`); the MME loss
    weights (:func:`check_mme_weights`, also checked when the model is
    built).

    Args:
        cfg (Mapping): The merged config.
        loaders (Sequence[str]): Dataloader keys the run uses. Defaults to
            train and val (``tools/test.py`` passes ``test_dataloader``).

    Raises:
        ConfigCheckError: The first problem found.
    """
    model = cfg.get('model') or {}
    if isinstance(model.get('targets'), Mapping) or 'loss' in model and \
            _short(model.get('type', '')) == 'MME':
        check_mme_weights(model.get('targets'), model.get('loss') or {})
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if not isinstance(loader_cfg, Mapping):
            continue
        for key, ds in dataset_configs(loader, loader_cfg):
            check_pipeline_geometry(model, key, ds)
