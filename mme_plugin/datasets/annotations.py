"""Reading annotation lists with errors that name the file and the line."""
from typing import List, Tuple

__all__ = ['AnnotationError', 'read_video_list']


class AnnotationError(ValueError):
    """A malformed annotation line."""


def read_video_list(ann_file: str, delimiter: str = ' ',
                    num_classes: int = None) -> List[Tuple[str, int]]:
    """Parse an mmaction video list (``<path> <label>`` per line).

    Args:
        ann_file (str): The list.
        delimiter (str): Field separator. Defaults to ``' '``.
        num_classes (int, optional): If given, labels must be in
            ``[0, num_classes)``.

    Returns:
        list[tuple[str, int]]: (relative path, label) pairs.

    Raises:
        AnnotationError: Naming the file, the line number and the line.
        FileNotFoundError: If the list does not exist.
    """
    out = []
    with open(ann_file) as f:
        for num, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.strip().split(delimiter)
            if len(parts) < 2:
                raise AnnotationError(
                    f'{ann_file}:{num}: expected "<path> <label>", got '
                    f'{line.strip()!r}')
            try:
                label = int(parts[-1])
            except ValueError:
                raise AnnotationError(
                    f'{ann_file}:{num}: label {parts[-1]!r} is not an '
                    f'integer (line {line.strip()!r})') from None
            if label < 0 or (num_classes is not None and label >= num_classes):
                raise AnnotationError(
                    f'{ann_file}:{num}: label {label} outside [0, '
                    f'{num_classes}) (line {line.strip()!r})')
            out.append((delimiter.join(parts[:-1]), label))
    return out
