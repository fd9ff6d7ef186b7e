"""Per-point and per-token validity have their own keys, and the plugin's
target transforms document their keys as mmaction does (issue #23.3)."""
import inspect

import numpy as np
import pytest
import torch

from mme_plugin.datasets.transforms import (BuildMMETargets,
                                            CheckTrajectoryReliability,
                                            ComputeFlow, ComputeHOG,
                                            ComputeTrajectories,
                                            MMESampleFrames,
                                            PrepareHOGInputs, TubeMasking)
from mme_plugin.ops.flow_reliability import REJECT_REASONS


def _flows(n=2, steps=4, h=32, w=32, dx=1.0):
    flows = np.zeros((n, steps, h, w, 2), np.float32)
    flows[..., 0] = dx
    return flows


def test_point_validity_is_traj_point_valid_and_token_validity_traj_valid():
    res = ComputeTrajectories(grid_step=8)(dict(flows=_flows()))
    assert 'traj_valid' not in res
    assert res['traj_point_valid'].shape == (2, 4, 4)
    # 4 steps of 1 px: the right-most point column (x = 28 -> 32) leaves
    assert res['traj_point_valid'][:, :, :3].all()
    assert not res['traj_point_valid'][:, :, 3].any()
    out = BuildMMETargets(patch_size=16, with_hog=False,
                          min_valid_fraction=0)(res)
    assert 'traj_point_valid' not in out and 'traj_positions' not in out
    # 2 tubes x 2 x 2 tokens; the right token column holds a lost point
    assert out['traj_valid'].dtype == torch.bool
    assert out['traj_valid'].tolist() == [True, False, True, False] * 2
    assert out['traj_reject'].shape == (len(REJECT_REASONS), )
    left = REJECT_REASONS.index('left_frame')
    assert out['traj_reject'][left].item() == pytest.approx(0.25)


def test_keep_positions_keeps_the_per_point_keys():
    res = ComputeTrajectories(grid_step=8)(dict(flows=_flows()))
    out = BuildMMETargets(patch_size=16, with_hog=False, keep_positions=True,
                          min_valid_fraction=0)(res)
    assert out['traj_point_valid'].shape == (2, 4, 4)
    assert out['traj_valid'].shape == (8, )


def test_token_validity_all_and_any():
    point = np.zeros((1, 4, 4), bool)
    point[0, :2, :2] = True          # token 0: all 4 points
    point[0, 0, 2] = True            # token 1: one of 4
    all_ = BuildMMETargets(token_valid='all').token_validity(point, 2)
    any_ = BuildMMETargets(token_valid='any').token_validity(point, 2)
    assert all_.tolist() == [True, False, False, False]
    assert any_.tolist() == [True, True, False, False]


def test_step_displacements_invalid_or_clamped():
    pos = np.zeros((1, 3, 2, 2, 2), np.float32)
    pos[0, 1, 0, 0] = (25.0, 0.0)  # one 25 px step of point (0, 0)
    res = dict(traj_positions=pos, scale_factor=(1.0, 1.0))
    disp, too_far = BuildMMETargets().step_displacements(dict(res))
    assert too_far.tolist() == [[[True, False], [False, False]]]
    assert disp[0, 0, 0, 0, 0] == 25.0
    disp, too_far = BuildMMETargets(
        step_overflow='clamp').step_displacements(dict(res))
    assert not too_far.any() and disp[0, 0, 0, 0, 0] == 20.0
    assert disp[0, 1, 0, 0, 0] == -20.0  # back from 25 to 0, clamped


@pytest.mark.parametrize('cls', [
    MMESampleFrames, ComputeFlow, ComputeTrajectories,
    CheckTrajectoryReliability, ComputeHOG, PrepareHOGInputs,
    BuildMMETargets, TubeMasking
])
def test_transforms_document_their_keys(cls):
    doc = inspect.getdoc(cls)
    assert 'Required Keys:' in doc and 'Added Keys:' in doc, cls.__name__
    # the per-point key is documented by its own name
    assert '- traj_valid (np.ndarray)' not in doc, cls.__name__
    if cls in (ComputeTrajectories, CheckTrajectoryReliability,
               BuildMMETargets):
        assert '- traj_point_valid (np.ndarray): ``[N, gh, gw]`` bool' in doc
