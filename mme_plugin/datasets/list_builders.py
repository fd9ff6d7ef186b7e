"""Annotation lists (``<path> <label>``) from the standard dataset downloads.

* Kinetics-400: the official CSVs (``label,youtube_id,time_start,time_end,
  split``) and a folder of clips named ``<youtube_id>_<start:06d>_<end:06d>``
  (any extension, any sub-folder). Classes: the sorted label names.
* Something-Something V2: ``labels.json`` (template -> id),
  ``something-something-v2-{train,validation}.json`` (``id``, ``template``
  with ``[something]`` placeholders) and ``<id>.webm`` clips.
* UCF101: ``ucfTrainTestlist/`` (``classInd.txt`` 1-based,
  ``trainlist0{1,2,3}.txt``, ``testlist0{1,2,3}.txt``) and
  ``<Class>/v_*.avi`` clips.
* HMDB51: ``testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt`` (per
  video 1 = train, 2 = test, 0 = unused) and ``<class>/<video>.avi`` clips.
  Classes: the sorted class names.

Every builder returns ``{list_name: [(relative_path, label), ...]}``.
"""
import csv
import json
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

__all__ = [
    'k400_lists', 'ssv2_lists', 'ucf101_lists', 'hmdb51_lists', 'write_list',
    'index_videos'
]

Entries = List[Tuple[str, int]]
_VIDEO_EXT = ('.mp4', '.webm', '.avi', '.mkv', '.mov')


def index_videos(root: str) -> Dict[str, str]:
    """Map each video's file stem to its path relative to ``root``."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.lower().endswith(_VIDEO_EXT):
                rel = osp.relpath(osp.join(dirpath, f), root)
                out[osp.splitext(f)[0]] = rel
    return out


def write_list(path: str, entries: Entries) -> None:
    """Write an mmaction video list."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.writelines(f'{p} {label}\n' for p, label in entries)


def k400_lists(ann_dir: str, video_dirs: Dict[str, str],
               missing: List[str]) -> Dict[str, Entries]:
    """Kinetics-400 train / val lists.

    Args:
        ann_dir (str): Folder with ``train.csv`` and ``validate.csv`` (or
            ``val.csv``).
        video_dirs (dict[str, str]): ``{'train': dir, 'val': dir}``.
        missing (list[str]): Receives ``split: youtube_id`` of clips
            without a file.
    """
    files = {'train': 'train.csv', 'val': 'validate.csv'}
    rows = {}
    for split, name in files.items():
        path = osp.join(ann_dir, name)
        if split == 'val' and not osp.isfile(path):
            path = osp.join(ann_dir, 'val.csv')
        with open(path, newline='') as f:
            rows[split] = list(csv.DictReader(f))
    classes = sorted({r['label'] for r in rows['train']})
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for split, rs in rows.items():
        videos = index_videos(video_dirs[split])
        entries = []
        for r in rs:
            stem = (f"{r['youtube_id']}_{int(float(r['time_start'])):06d}_"
                    f"{int(float(r['time_end'])):06d}")
            if stem not in videos:
                missing.append(f"{split}: {r['youtube_id']}")
                continue
            entries.append((videos[stem], index[r['label']]))
        out[f'kinetics400_{split}_list_videos'] = entries
    out['kinetics400_classes'] = [(c, i) for i, c in enumerate(classes)]
    return out


def _ssv2_template(t: str) -> str:
    return t.replace('[', '').replace(']', '')


def ssv2_lists(ann_dir: str, missing: List[str]) -> Dict[str, Entries]:
    """Something-Something V2 train / val lists (labels from templates)."""
    with open(osp.join(ann_dir, 'labels.json')) as f:
        labels = {k: int(v) for k, v in json.load(f).items()}
    out = {}
    for split, name in (('train', 'something-something-v2-train.json'),
                        ('val', 'something-something-v2-validation.json')):
        with open(osp.join(ann_dir, name)) as f:
            items = json.load(f)
        entries = []
        for it in items:
            template = _ssv2_template(it['template'])
            if template not in labels:
                missing.append(f"{split}: {it['id']} unknown template "
                               f'{template!r}')
                continue
            entries.append((f"{it['id']}.webm", labels[template]))
        out[f'sthv2_{split}_list_videos'] = entries
    return out


def ucf101_lists(split_dir: str,
                 dropped: Optional[List[str]] = None) -> Dict[str, Entries]:
    """UCF101 train / val lists of splits 1-3 (0-based labels).

    Paths are everything before an optional trailing label field, so names
    with spaces are kept whole; a line whose class folder is not in
    ``classInd.txt`` is appended to ``dropped`` (``file:line: text``).

    Args:
        split_dir (str): The ``ucfTrainTestlist`` folder.
        dropped (list, optional): Receives the unusable lines.
    """
    classes = {}
    with open(osp.join(split_dir, 'classInd.txt')) as f:
        for line in f:
            if line.strip():
                idx, name = line.split(None, 1)
                classes[name.strip()] = int(idx) - 1
    line_pat = re.compile(r'^(.*?\S)(?:\s+\d+)?\s*$')
    out = {}
    for k in (1, 2, 3):
        for split, name in (('train', f'trainlist0{k}.txt'),
                            ('val', f'testlist0{k}.txt')):
            entries = []
            with open(osp.join(split_dir, name)) as f:
                for num, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    rel = line_pat.match(line.strip()).group(1)
                    label = classes.get(rel.split('/')[0])
                    if label is None:
                        if dropped is not None:
                            dropped.append(f'{name}:{num}: {line.strip()!r} '
                                           '(class not in classInd.txt)')
                        continue
                    entries.append((rel, label))
            out[f'ucf101_{split}_split_{k}_videos'] = entries
    return out


def hmdb51_lists(split_dir: str,
                 dropped: Optional[List[str]] = None) -> Dict[str, Entries]:
    """HMDB51 train / val lists of splits 1-3 (70/30 splits).

    A split line is ``<video name> <0|1|2>``; the name is everything before
    the last field, so names with spaces or quotes are kept whole. Lines
    that do not end in 0, 1 or 2 are not guessed at: each is appended to
    ``dropped`` as ``file:line: text`` (and reported by
    ``tools/data/build_lists.py``).

    Args:
        split_dir (str): Folder of ``<class>_test_split<k>.txt`` files.
        dropped (list, optional): Receives the unparseable lines.
    """
    pat = re.compile(r'^(.+)_test_split([123])\.txt$')
    line_pat = re.compile(r'^(.*\S)\s+([012])\s*$')
    per_split: Dict[int, Dict[str, List[Tuple[str, str]]]] = {}
    names = set()
    for f in sorted(os.listdir(split_dir)):
        m = pat.match(f)
        if not m:
            continue
        cls, k = m.group(1), int(m.group(2))
        names.add(cls)
        with open(osp.join(split_dir, f), encoding='utf-8',
                  errors='surrogateescape') as fh:
            for num, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                lm = line_pat.match(line.rstrip('\r\n'))
                if not lm:
                    if dropped is not None:
                        dropped.append(f'{f}:{num}: {line.strip()!r}')
                    continue
                name, tag = lm.groups()
                if tag == '0':
                    continue
                split = 'train' if tag == '1' else 'val'
                per_split.setdefault(k, {}).setdefault(split, []).append(
                    (f'{cls}/{name.strip()}', cls))
    index = {c: i for i, c in enumerate(sorted(names))}
    return {
        f'hmdb51_{split}_split_{k}_videos': [(p, index[c]) for p, c in items]
        for k, splits in sorted(per_split.items())
        for split, items in splits.items()
    }
