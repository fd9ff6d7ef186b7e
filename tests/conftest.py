"""Shared fixtures: a tiny generated synthetic dataset and tool runners
(in process through a tool's ``main(argv)``, or as a subprocess where a
separate process is the point)."""
import importlib.util
import json
import logging
import os
import os.path as osp
import subprocess
import sys
from glob import glob
from typing import Any, Dict, List, NamedTuple, Optional

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import mme_plugin  # noqa: E402,F401

# The distributed tests run 2 gloo processes on this CPU-only machine: opt in
# (mme_plugin/utils/cuda_setup.py refuses a CPU launch otherwise; subprocess
# environments copy this). tests/test_dist_guard.py removes it to test the
# refusal.
os.environ.setdefault('MME_ALLOW_CPU_DIST', '1')

# Single-process data loading: fast and deterministic tests on 2 cores.
FAST_LOADER = [
    f'{split}_dataloader.{key}'
    for split in ('train', 'val', 'test')
    for key in ('num_workers=0', 'persistent_workers=False')
]


def pytest_collection_modifyitems(config: pytest.Config,
                                  items: List[pytest.Item]) -> None:
    """Test files with real-size runs (``slow`` tests) first, the file with
    the most of them first: ``tools/run_tests.sh`` hands whole files to
    parallel workers in this order, so the longest file starts at once
    instead of last (it alone takes about half the suite). Files keep their
    tests' order; the rest keep theirs.

    Args:
        config: pytest's configuration (unused).
        items: The collected tests, sorted in place.
    """
    slow: Dict[str, int] = {}
    for item in items:
        if item.get_closest_marker('slow'):
            slow[str(item.path)] = slow.get(str(item.path), 0) + 1
    items.sort(key=lambda item: -slow.get(str(item.path), 0))


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> str:
    """A synthetic motion dataset with 3 train / 1 val clips per class."""
    from mme_plugin.datasets.synthetic import make_synthetic_dataset
    root = str(tmp_path_factory.mktemp('synthetic'))
    make_synthetic_dataset(root, dict(train=3, val=1), num_frames=32,
                           size=(64, 64), seed=0)
    return root


@pytest.fixture(autouse=True)
def _forget_runner_singletons():
    """Forget the mmengine singletons (visualizer, logger, message hub) a
    test's runners created, when the test ends.

    mmengine keys them by experiment name, ``<config>_<timestamp>`` to the
    second: two runners of one config built in one process within a second
    (tests calling the tools in-process) shared the first one's visualizer,
    whose save dir was the earlier test's, and the later run died writing
    its config there (seen in the full suite: ``tools/test.py`` on
    ``finetune_tiny_synthetic.py`` twice in a row). Instances that existed
    before the test (module fixtures) are kept; the dropped loggers' log
    files are closed. ``DefaultScope`` instances
    are left alone: a shared one only names the same registry scope, and
    later registry builds may rely on the current one.
    """
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.visualization import Visualizer

    def managed():
        classes, todo = [], [Visualizer, MMLogger, MessageHub]
        while todo:  # subclasses have their own instance dicts
            cls = todo.pop()
            classes.append(cls)
            todo.extend(cls.__subclasses__())
        return classes

    before = {cls: set(cls._instance_dict) for cls in managed()}
    yield
    for cls in managed():
        for name in set(cls._instance_dict) - before.get(cls, set()):
            instance = cls._instance_dict.pop(name)
            # a logger's log file closes now, not whenever the garbage
            # collector frees it (the open-file counts of test_collate
            # would see it close)
            for handler in getattr(instance, 'handlers', [])[:]:
                if isinstance(handler, logging.FileHandler):
                    instance.removeHandler(handler)
                    handler.close()


def data_options(root: str) -> List[str]:
    """``--cfg-options`` that point every split of a config at ``root``."""
    opts = []
    for split, ann in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        opts += [
            f'{split}_dataloader.dataset.ann_file={root}/{ann}.txt',
            f'{split}_dataloader.dataset.data_prefix.video={root}'
        ]
    return opts


def run_tool(args: List[str], timeout: int = 600,
             env_extra: dict = None) -> subprocess.CompletedProcess:
    """Run a command from the repo root; fail with its output if it fails."""
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1',
               PYTHON=sys.executable, **(env_extra or {}))
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}')
    return proc


_TOOLS: Dict[str, Any] = {}


def load_tool(path: str):
    """A tool script (``tools/...py``, repo-relative) imported as a module,
    once per session."""
    if path not in _TOOLS:
        name = 'tool_' + osp.splitext(path)[0].replace('/', '_')
        spec = importlib.util.spec_from_file_location(
            name, osp.join(REPO, path))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # its functions pickle (worker pools)
        spec.loader.exec_module(mod)
        _TOOLS[path] = mod
    return _TOOLS[path]


class ToolRun(NamedTuple):
    """What an in-process tool run left: its exit code (0, or the code or
    message of its ``SystemExit``) and its captured output."""
    code: Any
    out: str


def call_tool(path: str, argv: List[str], capsys,
              check: bool = True, fresh: bool = False) -> ToolRun:
    """Run ``tools/...py``'s ``main(argv)`` in this process from the repo
    root (no interpreter start, no second import of torch and mmengine).

    Args:
        path: The tool, repo-relative.
        argv: Its arguments.
        capsys: pytest's fixture; the output read so far is dropped.
        check: Fail (with the output) on a non-zero exit.
        fresh: Run it as users do, in a new interpreter. Needed for tools
            that fork a worker pool: a child forked from this process,
            whose OpenMP / OpenCV thread pools earlier tests have used, can
            hang in its first parallel call (seen in the full suite:
            ``extract_trajectories.py --workers 2`` never returned).

    Returns:
        ToolRun: Exit code and stdout + stderr of the run.
    """
    if fresh:
        capsys.readouterr()
        proc = subprocess.run([sys.executable, path, *argv], cwd=REPO,
                              capture_output=True, text=True, timeout=600)
        run = ToolRun(proc.returncode, proc.stdout + proc.stderr)
        if check and run.code != 0:
            raise AssertionError(f'{path} {" ".join(argv)} exited with '
                                 f'{run.code!r}:\n{run.out[-6000:]}')
        return run
    main = load_tool(path).main
    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(REPO)
    code: Optional[Any] = 0
    try:
        main(argv)
    except SystemExit as e:
        code = e.code
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    run = ToolRun(0 if code is None else code, out + err)
    if check and run.code != 0:
        raise AssertionError(f'{path} {" ".join(argv)} exited with '
                             f'{run.code!r}:\n{run.out[-6000:]}')
    return run


def write_probe_clips(root, frames: int = 48) -> str:
    """Write the pre-flight probe's three clips under ``root`` and return it.

    ``normal.mp4`` (a sprite moving), ``cut.mp4`` (two clips spliced with a
    hard cut every 3 frames) and ``still.mp4`` (one textured frame
    repeated), 64 x 64, lossless, with the lists ``all.txt`` (all three)
    and ``no_cut.txt`` (without the cut clip). 48 frames exceed the 29-frame
    span of the tiny configs, giving 3 distinct spans.
    """
    import numpy as np

    from mme_plugin.datasets.synthetic import random_texture, render_clip
    from mme_plugin.io import write_video
    root = str(root)
    a, _ = render_clip(0, frames, (64, 64), seed=1)
    b, _ = render_clip(3, frames, (64, 64), seed=2)
    write_video(osp.join(root, 'normal.mp4'), a, lossless=True)
    cut = np.stack([a[t] if (t // 3) % 2 == 0 else b[t]
                    for t in range(frames)])
    write_video(osp.join(root, 'cut.mp4'), cut, lossless=True)
    tex = random_texture(np.random.default_rng(3), 64, 64)
    write_video(osp.join(root, 'still.mp4'), np.stack([tex] * frames),
                lossless=True)
    with open(osp.join(root, 'all.txt'), 'w') as f:
        f.write('normal.mp4 0\ncut.mp4 1\nstill.mp4 2\n')
    with open(osp.join(root, 'no_cut.txt'), 'w') as f:
        f.write('normal.mp4 0\nstill.mp4 2\n')
    return root


def run_logs(work_dir: str) -> str:
    """The text of every mmengine run log under ``work_dir``."""
    text = ''
    for log in sorted(glob(osp.join(work_dir, '*', '*.log'))):
        with open(log) as f:
            text += f.read()
    return text


def read_scalars(work_dir: str) -> List[dict]:
    """The records of the newest ``scalars.json`` under ``work_dir``."""
    logs = sorted(glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    assert logs, f'no scalars.json under {work_dir}'
    with open(logs[-1]) as f:
        return [json.loads(line) for line in f]


@pytest.fixture()
def video(tmp_path) -> str:
    """A 20-frame 64 x 64 mp4 of a texture panning 1 px/frame, under
    ``tmp_path / 'data'``."""
    import numpy as np

    from mme_plugin.datasets.synthetic import random_texture
    from mme_plugin.io import write_video
    rng = np.random.default_rng(2)
    tex = random_texture(rng, 64, 128)
    frames = np.stack([tex[:, 40 - t:104 - t] for t in range(20)])
    path = str(tmp_path / 'data' / 'a.mp4')
    write_video(path, frames)
    return path


def decoded(video: str) -> dict:
    """``video`` through VideoInit, MMESampleFrames(4, 4, L=4, test mode)
    and VideoDecode: sparse and dense frames."""
    from mme_plugin.datasets.transforms import (MMESampleFrames,
                                                VideoDecode, VideoInit)
    res = VideoInit()(dict(filename=video))
    res = MMESampleFrames(4, 4, traj_len=4, test_mode=True)(res)
    return VideoDecode(extra_keys=('dense_frame_inds', ))(res)
