"""What the benchmark pretrains and compares: configs, MME ablations and
option overrides."""
import os.path as osp
from typing import Dict, List, Tuple

from mme_plugin.utils.pipeline import edit_key

__all__ = [
    'REPO', 'PRETRAIN', 'SUPERVISED', 'FINETUNE', 'LINEAR', 'ABLATIONS',
    'METHODS', 'DOWNSTREAM', 'NUM_CLASSES', 'method_spec', 'parse_options'
]

#: The repository root: configs and tools are named relative to it (the
#: plugin is installed in editable mode, ``tools/setup_env.sh``).
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

PRETRAIN = {
    'videomae': 'configs/mme/videomae_tiny_synthetic.py',
    'mme': 'configs/mme/pretrain_tiny_synthetic.py',
    'mme_absdisp': 'configs/mme/pretrain_tiny_synthetic_absdisp.py',
}
SUPERVISED = 'configs/recognition/tiny-vit_synthetic.py'
FINETUNE = 'configs/mme/finetune_tiny_synthetic.py'
LINEAR = 'configs/mme/linear_tiny_synthetic.py'
#: MME ablations of the long variant: base method and the settings that
#: differ (``--cfg-options`` items; pipeline steps addressed by type through
#: the dataset's ``pipeline_edits``).
ABLATIONS = {
    # trajectories only: the HOG term is dropped from the loss
    'mme_nohog': ('mme', {'model.targets.hog.weight': 0.0}),
    # trajectory length L = 2 dense steps per tube instead of 4 (the heads
    # follow the targets' settings)
    'mme_L2': ('mme', {
        edit_key('MMESampleFrames', 'traj_len'): 2,
        'model.targets.traj.traj_len': 2,
        'model.targets.hog.traj_len': 2}),
}
METHODS = ['videomae', 'mme', 'mme_absdisp', *ABLATIONS]
#: Methods the long variant fine-tunes and linear-probes through the stock
#: recognizer (the ablations get the exact logistic probe only, to fit the
#: long variant's 90 minutes).
DOWNSTREAM = ('videomae', 'mme')
NUM_CLASSES = 8


def method_spec(method: str) -> Tuple[str, Dict]:
    """Config and option overrides of a method.

    Args:
        method: A name of :data:`METHODS`.

    Returns:
        tuple: The config (repo-relative) and its overrides
        (``{key: value}``).
    """
    if method not in ABLATIONS:
        return PRETRAIN[method], {}
    base, opts = ABLATIONS[method]
    return PRETRAIN[base], dict(opts)


def parse_options(options: List[str]) -> Dict:
    """``KEY=VALUE`` strings as ``--cfg-options`` parses them.

    Args:
        options: ``KEY=VALUE`` items.

    Returns:
        dict: ``{key: parsed value}``.

    Raises:
        SystemExit: An item without ``=`` or without a key (names
            ``--pretrain-options`` and the item).
    """
    from mmengine.config import DictAction
    out = {}
    for item in options:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise SystemExit(f'--pretrain-options: expected KEY=VALUE, got '
                             f'{item!r}')
        out[key] = DictAction._parse_iterable(value)
    return out
