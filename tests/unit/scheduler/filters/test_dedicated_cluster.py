"""DedicatedClusterFilter (scheduler/filters/dedicated_cluster.py)."""

import pytest

from scheduler.filters import dedicated_cluster
from tests.unit.scheduler import fakes

FLEET = [fakes.cluster('shared1'),
         fakes.cluster('mine', projects=['p-rich']),
         fakes.cluster('both', projects=['p-rich', 'p-other']),
         fakes.cluster('theirs', projects=['p-other'])]


def run(project, clusters=FLEET, confine=True):
    plugin = dedicated_cluster.DedicatedClusterFilter(
        fakes.options(confine_dedicated_projects=confine))
    return fakes.run(plugin, clusters, fakes.request(project=project))


def test_other_projects_only_get_shared_clusters():
    kept, removed = run('p-plain')
    assert kept == ['shared1']
    assert removed == {'mine': 'dedicated to other projects',
                       'both': 'dedicated to other projects',
                       'theirs': 'dedicated to other projects'}


def test_owner_is_confined_to_its_dedicated_clusters():
    kept, removed = run('p-rich')
    assert kept == ['mine', 'both']
    assert removed == {
        'shared1': 'shared, and project p-rich has dedicated clusters',
        'theirs': 'dedicated to other projects'}


def test_owner_may_use_shared_clusters_when_not_confined():
    assert run('p-rich', confine=False)[0] == ['shared1', 'mine', 'both']


def test_owner_uses_shared_clusters_when_no_dedicated_one_is_a_candidate():
    # An earlier filter (flavor, zone) removed the project's own cluster.
    assert run('p-rich', [FLEET[0], FLEET[3]])[0] == ['shared1']


@pytest.mark.parametrize('confine', [True, False])
def test_fleet_without_dedicated_clusters(confine):
    fleet = [fakes.cluster('x'), fakes.cluster('y')]
    assert run('p-rich', fleet, confine) == (['x', 'y'], {})
