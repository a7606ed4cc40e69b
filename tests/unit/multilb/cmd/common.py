"""What the multilb-manage tests share: a configuration with a broken
cluster section, a state store in tmp_path, a small fleet placed in it,
and running ``main([...])`` as the console script does."""

import json
import time

import pytest

from multilb.cmd import manage
from multilb import state as state_mod
from multilb import store
from tests.unit import fixtures

CLUSTERS = {
    'alpha': {'max_loadbalancers': 10, 'description': 'DC1 rack 4',
              'tags': 'gold, dc1'},
    'beta': {'projects': 'proj-b, proj-c'},
}
BROKEN = """
[cluster:nosuch]
backend = does-not-exist
"""
CREATED = 1700000000.0


@pytest.fixture
def conf_path(tmp_path):
    return fixtures.write_conf(tmp_path, CLUSTERS, extra=BROKEN,
                               enabled='alpha, beta, nosuch')


@pytest.fixture
def state(tmp_path, conf_path):
    url = 'sqlite:///%s' % (tmp_path / 'state.db')
    return state_mod.State(store.get_kv_store(url))


def place(state, lb_id, cluster, project='proj-a', **extra):
    info = state.cluster_runtime().get(cluster, {})
    record = {'id': lb_id, 'cluster': cluster, 'project_id': project,
              'flavor': {}, 'availability_zone': {}, 'created_at': CREATED,
              'pools': {}}
    record.update(extra)
    assert state.place_loadbalancer(
        record, 0, (info.get('placed', 0), info.get('version')),
        {'op': 'create', 'type': 'loadbalancer', 'id': lb_id},
        {lb_id: 'loadbalancer'},
        project_count=state.project_counts(project).get(cluster, (0, None)))


@pytest.fixture
def fleet(state):
    """alpha: 2 LBs, healthy; beta: 1 LB, unreachable; gone: 1 LB left
    behind by a cluster removed from the configuration."""
    place(state, 'lb-1', 'alpha', flavor={'cluster_tags': ['gold']},
          availability_zone={'zone': 'az1'},
          pools={'pool-1': ['member-2', 'member-1']})
    place(state, 'lb-2', 'alpha', project='proj-b')
    place(state, 'lb-3', 'beta', project='proj-b')
    place(state, 'lb-4', 'gone', project='proj-z')
    state.add_intent('lb-1', 'alpha', {'op': 'create', 'type': 'listener',
                                       'id': 'listener-1'},
                     index={'listener-1': 'listener'})
    state.complete('lb-3', 'beta', [], status={'loadbalancers': [
        {'id': 'lb-3', 'provisioning_status': 'ACTIVE'}]})
    state.set_health('alpha', {'reachable': True, 'at': time.time() - 5})
    state.set_health('beta', {'reachable': False, 'at': time.time() - 3,
                              'detail': 'connection refused'})
    return state


def run(capsys, *argv, conf=None):
    args = list(argv)
    if conf is not None:
        args = ['--config-file', str(conf)] + args
    code = manage.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, conf, *argv):
    code, out, err = run(capsys, *argv, '--format', 'json', conf=conf)
    assert (code, err) == (0, ''), err
    return json.loads(out)
