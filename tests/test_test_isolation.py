"""The suite's isolation between tests that run tools in-process
(``tests/conftest.py``): mmengine singletons a test created are forgotten
when it ends, so a later runner with the same experiment name (same config,
same second) builds its own visualizer, logger and message hub.

The two tests run in file order: the first leaves instances behind, the
second checks they are gone.
"""
import pytest
from mmengine.logging import MessageHub, MMLogger
from mmengine.visualization import Visualizer

NAME = 'isolation_probe_20261205_000000'
#: Set by the first test: the second only means something after it.
CREATED = []


def test_a_test_creates_runner_singletons(tmp_path):
    Visualizer.get_instance(NAME, save_dir=str(tmp_path))
    MMLogger.get_instance(NAME)
    MessageHub.get_instance(NAME)
    assert NAME in Visualizer._instance_dict
    CREATED.append(NAME)


def test_the_next_test_does_not_see_them():
    if not CREATED:
        pytest.skip('run with the test above (file order)')
    for cls in (Visualizer, MMLogger, MessageHub):
        assert NAME not in cls._instance_dict, cls.__name__
    # the current logger and hub still work (mmengine falls back to its own)
    MMLogger.get_current_instance().info('isolation ok')
    assert MessageHub.get_current_instance() is not None
