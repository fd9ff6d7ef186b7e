"""Registries of the ``mme_plugin`` scope.

Every registry node of mmaction (``mmaction.registry``) gets a child here with
``scope='mme_plugin'``. Consequences:

* plugin configs set ``default_scope='mme_plugin'`` and use unprefixed names
  of this plugin, mmaction and mmengine alike (a child looks up its parents);
* stock mmaction configs can name ``type='mme_plugin.X'`` without
  ``custom_imports``: the scope prefix finds this node, and its ``locations``
  import the plugin's modules lazily.

Mirroring only MODELS/TRANSFORMS is not enough: metrics, visualizers, hooks and
loops are looked up in the default scope too (``docs/stack_notes.md``).
"""
from mmaction import registry as mmaction_registry
from mmengine.registry import Registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
    'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR',
    'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS',
    'INFERENCERS', 'FUNCTION', 'TOKENIZER', 'SCOPE'
]

SCOPE = 'mme_plugin'
# Sub-packages that register modules; imported lazily on first lookup.
_LOCATIONS = [
    'mme_plugin.datasets', 'mme_plugin.models', 'mme_plugin.engine',
    'mme_plugin.evaluation'
]


def _child(name: str) -> Registry:
    """Create the ``mme_plugin`` child of mmaction's registry node ``name``."""
    parent = getattr(mmaction_registry, name)
    return Registry(
        parent.name,
        parent=parent,
        scope=SCOPE,
        locations=_LOCATIONS + list(parent._locations))


RUNNERS = _child('RUNNERS')
RUNNER_CONSTRUCTORS = _child('RUNNER_CONSTRUCTORS')
LOOPS = _child('LOOPS')
HOOKS = _child('HOOKS')
DATASETS = _child('DATASETS')
DATA_SAMPLERS = _child('DATA_SAMPLERS')
TRANSFORMS = _child('TRANSFORMS')
MODELS = _child('MODELS')
MODEL_WRAPPERS = _child('MODEL_WRAPPERS')
WEIGHT_INITIALIZERS = _child('WEIGHT_INITIALIZERS')
OPTIMIZERS = _child('OPTIMIZERS')
OPTIM_WRAPPERS = _child('OPTIM_WRAPPERS')
OPTIM_WRAPPER_CONSTRUCTORS = _child('OPTIM_WRAPPER_CONSTRUCTORS')
PARAM_SCHEDULERS = _child('PARAM_SCHEDULERS')
METRICS = _child('METRICS')
EVALUATOR = _child('EVALUATOR')
TASK_UTILS = _child('TASK_UTILS')
VISUALIZERS = _child('VISUALIZERS')
VISBACKENDS = _child('VISBACKENDS')
LOG_PROCESSORS = _child('LOG_PROCESSORS')
INFERENCERS = _child('INFERENCERS')
FUNCTION = _child('FUNCTION')
TOKENIZER = _child('TOKENIZER')
