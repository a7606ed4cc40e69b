"""What the scheduler sees (scheduler/cluster_state.py)."""

import dataclasses

import pytest

from tests.unit.scheduler import fakes


@pytest.mark.parametrize('max_lbs,placed,free', [
    (0, 0, None), (0, 50, None), (10, 3, 7), (10, 10, 0), (10, 12, 0)])
def test_free_slots(max_lbs, placed, free):
    assert fakes.cluster('x', max_loadbalancers=max_lbs,
                         placed=placed).free == free


def test_values_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        fakes.cluster('x').placed = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        fakes.request().project_id = 'other'
