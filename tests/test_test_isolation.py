"""The suite's isolation between tests that run tools in-process
(``tests/conftest.py``): mmengine singletons a test created are forgotten
when it ends, so a later runner with the same experiment name (same config,
same second) builds its own visualizer, logger and message hub.

The two tests run in file order: the first leaves instances behind, the
second checks they are gone.
"""
import logging

import pytest
from mmengine.logging import MessageHub, MMLogger
from mmengine.visualization import Visualizer

NAME = 'isolation_probe_20261205_000000'
#: Set by the first test: the second only means something after it.
CREATED = []
#: The first test's log-file handlers.
FILES = []


def test_a_test_creates_runner_singletons(tmp_path):
    Visualizer.get_instance(NAME, save_dir=str(tmp_path))
    logger = MMLogger.get_instance(NAME, log_file=str(tmp_path / 'a.log'))
    FILES.extend(h for h in logger.handlers
                 if isinstance(h, logging.FileHandler))
    assert FILES and FILES[0].stream is not None
    MessageHub.get_instance(NAME)
    assert NAME in Visualizer._instance_dict
    CREATED.append(NAME)


def test_the_next_test_does_not_see_them():
    if not CREATED:
        pytest.skip('run with the test above (file order)')
    for cls in (Visualizer, MMLogger, MessageHub):
        assert NAME not in cls._instance_dict, cls.__name__
    # its log file was closed then, not whenever gc frees the logger
    assert all(h.stream is None for h in FILES)
    # the current logger and hub still work (mmengine falls back to its own)
    MMLogger.get_current_instance().info('isolation ok')
    assert MessageHub.get_current_instance() is not None
