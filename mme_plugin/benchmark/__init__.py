"""The synthetic motion benchmark behind ``tools/synthetic_benchmark.py``:
what it runs (:mod:`.methods`, :mod:`.jobs`), how it runs the tools
(:class:`BenchmarkRun`), how it probes encoders (:class:`Probe`),
the trivial levels its losses are measured against (:mod:`.levels`) and
what it reports (:mod:`.report`, :mod:`.curves`)."""
from .curves import plot_curves
from .jobs import downstream, rescore_run, run_seed
from .levels import end_ratios, levels_of, rescore
from .methods import (ABLATIONS, DOWNSTREAM, FINETUNE, LINEAR, METHODS,
                      NUM_CLASSES, PRETRAIN, REPO, SUPERVISED, method_spec,
                      parse_options)
from .probe import LOW_LABEL_EPOCHS, LOW_LABEL_PER_CLASS, Probe
from .report import (AT_LEVEL, INFORMATIVE, informative, loss_state,
                     mean_sd, summarize)
from .run import (CPU_OMP_WAIT_POLICY, BenchmarkRun, checkpoints, scalars,
                  parse_accuracy)

__all__ = [
    'ABLATIONS', 'AT_LEVEL', 'BenchmarkRun', 'CPU_OMP_WAIT_POLICY',
    'DOWNSTREAM', 'FINETUNE', 'INFORMATIVE', 'LINEAR', 'LOW_LABEL_EPOCHS',
    'LOW_LABEL_PER_CLASS', 'METHODS',
    'NUM_CLASSES', 'PRETRAIN', 'Probe', 'REPO', 'SUPERVISED', 'checkpoints',
    'downstream', 'end_ratios', 'informative', 'levels_of', 'loss_state',
    'mean_sd', 'method_spec', 'parse_options', 'plot_curves', 'rescore',
    'rescore_run', 'run_seed', 'scalars', 'summarize', 'parse_accuracy'
]
