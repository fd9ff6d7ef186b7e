"""Which keys of a state dict a model lacks, does not know, or has in
another shape: the one comparison behind every checkpoint check.

:func:`~mme_plugin.checkpoint.verify_state_dict` (the converters) and
:func:`~mme_plugin.engine.checkpoint_fit.check_checkpoint_fits` (every
checkpoint a ``Runner`` loads) both judge a checkpoint by
:func:`diff_state_dicts` and differ only in which of its findings they
refuse. :class:`CheckpointMismatchError` lives here, beside the comparison,
so that the engine does not import the converters for it
(:mod:`mme_plugin.checkpoint` re-exports it).
"""
from dataclasses import dataclass, field
from typing import Any, Collection, List, Mapping, Tuple

__all__ = ['CheckpointMismatchError', 'ShapeMismatch', 'StateDiff',
           'diff_state_dicts']


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is meant for."""


@dataclass(frozen=True)
class ShapeMismatch:
    """A key present on both sides with different shapes.

    Args:
        key (str): The state dict key.
        given (tuple[int, ...]): Its shape in the checkpoint.
        expected (tuple[int, ...]): Its shape in the model.
    """
    key: str
    given: Tuple[int, ...]
    expected: Tuple[int, ...]

    def __str__(self) -> str:
        return (f'{self.key}: checkpoint {self.given} vs model '
                f'{self.expected}')


@dataclass
class StateDiff:
    """How a given state dict differs from an expected one.

    Args:
        missing (list[str]): Expected keys absent from the given dict, in
            the expected dict's order.
        unexpected (list[str]): Given keys the expected dict lacks, in the
            given dict's order.
        mismatched (list[ShapeMismatch]): Keys on both sides whose shapes
            differ, in the expected dict's order.
        matched (int): How many given keys the expected dict has.
    """
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[ShapeMismatch] = field(default_factory=list)
    matched: int = 0

    def missing_in(self, names: Collection[str]) -> List[str]:
        """The missing keys that are in ``names`` (e.g. the model's
        parameters, leaving out its buffers)."""
        return [k for k in self.missing if k in names]

    def missing_under(self, prefix: str) -> List[str]:
        """The missing keys starting with ``prefix``."""
        return [k for k in self.missing if k.startswith(prefix)]

    def mismatch_lines(self) -> List[str]:
        """One ``'<key>: checkpoint (..) vs model (..)'`` line per shape
        mismatch."""
        return [str(m) for m in self.mismatched]


def _shape(value: Any) -> Tuple[int, ...]:
    return tuple(value.shape)


def diff_state_dicts(expected: Mapping[str, Any],
                     given: Mapping[str, Any]) -> StateDiff:
    """Compare a checkpoint's state dict with a model's.

    Values without a ``shape`` (e.g. a module's ``_extra_state``) take part
    in the key comparison only.

    Args:
        expected (Mapping): The model's state dict (``model.state_dict()``).
        given (Mapping): The checkpoint's state dict, keys as the model's.

    Returns:
        StateDiff: Missing, unexpected and shape-mismatched keys.
    """
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    mismatched = [
        ShapeMismatch(k, _shape(given[k]), _shape(expected[k]))
        for k in expected
        if k in given and hasattr(given[k], 'shape')
        and hasattr(expected[k], 'shape')
        and _shape(given[k]) != _shape(expected[k])
    ]
    return StateDiff(missing, unexpected, mismatched,
                     len(given) - len(unexpected))
