"""Reading annotation lists with errors that name the file and the line."""
import os.path as osp
from typing import List, Tuple

__all__ = ['AnnotationError', 'read_video_list', 'list_builder_hint']


class AnnotationError(ValueError):
    """A missing, empty or malformed annotation list."""


# Dataset folder names of the recipes -> build_lists.py sub-command.
_BUILDERS = (('kinetics', 'k400'), ('k400', 'k400'), ('sthv2', 'ssv2'),
             ('ssv2', 'ssv2'), ('ucf101', 'ucf101'), ('hmdb51', 'hmdb51'))


def list_builder_hint(ann_file: str) -> str:
    """The command that writes ``ann_file``, judged from its path."""
    low = ann_file.lower()
    for key, sub in _BUILDERS:
        if key in low:
            return (f'`python tools/data/build_lists.py {sub} ... --out '
                    f'{osp.dirname(ann_file) or "."}` (README, "Fine-tuning'
                    ', linear probing and testing", step 1)')
    return ('tools/data/build_lists.py (README), or write one '
            '"<video path> <label>" line per video')


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
        AnnotationError: Naming the file (and the line number and the line):
            a missing or empty list, bytes that are not UTF-8, a malformed
            line or a label out of range.
    """
    if not osp.isfile(ann_file):
        raise AnnotationError(
            f'annotation list {ann_file} does not exist. Build it with '
            f'{list_builder_hint(ann_file)}, or point the config at yours '
            '(--cfg-options train_dataloader.dataset.ann_file=...).')
    with open(ann_file, 'rb') as f:
        raw_lines = f.read().splitlines()
    lines = []
    for num, raw in enumerate(raw_lines, 1):
        try:
            lines.append(raw.decode('utf-8'))
        except UnicodeDecodeError as e:
            raise AnnotationError(
                f'{ann_file}:{num}: not UTF-8 ({e.reason} at byte {e.start}:'
                f' {raw[max(0, e.start - 20):e.start + 20]!r}); re-encode '
                'the list as UTF-8 (e.g. iconv -f latin1 -t utf-8)') from None
    out = []
    for num, line in enumerate(lines, 1):
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
    if not out:
        raise AnnotationError(
            f'annotation list {ann_file} has no entries. Build it with '
            f'{list_builder_hint(ann_file)}.')
    return out
