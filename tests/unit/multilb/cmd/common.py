"""What the multilb-manage tests share: a configuration with a broken
cluster section, a state store in tmp_path, a small fleet placed in it,
and running ``main([...])`` as the console script does."""

import json
import time

import pytest

from multilb.cmd import arguments
from multilb.cmd import manage
from multilb.cmd import who
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


def uuid(n, kind=0):
    """An id as Octavia gives them (LOADBALANCER_ID arguments must be
    UUIDs): ``kind`` tells objects apart (0 load balancer, 1 listener)."""
    return '%08x-0000-4000-8000-%012x' % (kind, n)


LB1, LB2, LB3, LB4 = (uuid(n) for n in range(1, 5))
LISTENER1 = uuid(1, kind=1)
BY = 'multilb-manage (ops@ctl-1)'


@pytest.fixture
def operator(monkeypatch):
    """The commands run as the OS user ``ops`` on host ``ctl-1``: what
    drains and moves record as who made them (:data:`BY`)."""
    monkeypatch.setattr(who.getpass, 'getuser', lambda: 'ops')
    monkeypatch.setattr(who.socket, 'gethostname', lambda: 'ctl-1')
    return BY


@pytest.fixture
def conf_path(tmp_path):
    return fixtures.write_conf(tmp_path, CLUSTERS, extra=BROKEN,
                               enabled='alpha, beta, nosuch')


def open_state(tmp_path):
    """The store of fixtures.write_conf(tmp_path, ...), created."""
    url = 'sqlite:///%s' % (tmp_path / 'state.db')
    return state_mod.State(store.get_kv_store(url))


@pytest.fixture
def state(tmp_path, conf_path):
    return open_state(tmp_path)


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
    """alpha: 2 LBs (LB1, LB2), healthy; beta: 1 LB (LB3), unreachable;
    gone: 1 LB (LB4) left behind by a cluster removed from the
    configuration. (cluster list exits 3: beta, nosuch and gone need
    attention.)"""
    place(state, LB1, 'alpha', flavor={'cluster_tags': ['gold']},
          availability_zone={'zone': 'az1'},
          pools={'pool-1': ['member-2', 'member-1']})
    place(state, LB2, 'alpha', project='proj-b')
    place(state, LB3, 'beta', project='proj-b')
    place(state, LB4, 'gone', project='proj-z')
    state.add_intent(LB1, 'alpha', {'op': 'create', 'type': 'listener',
                                    'id': LISTENER1},
                     index={LISTENER1: 'listener'})
    state.complete(LB3, 'beta', [], status={'loadbalancers': [
        {'id': LB3, 'provisioning_status': 'ACTIVE'}]})
    state.set_health('alpha', {'reachable': True, 'at': time.time() - 5})
    state.set_health('beta', {'reachable': False, 'at': time.time() - 3,
                              'detail': 'connection refused'})
    return state


def healthy(state, *names, at=None):
    """Fresh probes that found ``names`` reachable, as their agent
    records them."""
    for name in names:
        state.set_health(name, {'reachable': True,
                                'at': time.time() if at is None else at})


def run(capsys, *argv, conf=None):
    args = list(argv)
    if conf is not None:
        args = ['--config-file', str(conf)] + args
    code = manage.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, conf, *argv, code=0):
    """The parsed JSON output of a command that exits ``code``; with 3
    (cluster list: some cluster needs attention, or the agents' group
    could not be read) stderr says which."""
    got, out, err = run(capsys, *argv, '--format', 'json', conf=conf)
    if code == manage.EXIT_ATTENTION:
        assert got == code, err
        assert err.startswith('multilb-manage: ') and (
            'need attention' in err or "agents' group" in err)
        assert len(err.splitlines()) == 1, err
    else:
        assert (got, err) == (code, ''), err
    return json.loads(out)


def accept_sample_lb_id(monkeypatch):
    """Let the command line take the sample load balancer of
    tests.unit.fixtures (``fx.LB``, not a UUID as Octavia's ids are) as a
    LOADBALANCER_ID; every other argument is still checked."""
    checked = arguments.loadbalancer_id
    monkeypatch.setattr(arguments, 'loadbalancer_id', lambda text: (
        text if text == fixtures.LB else checked(text)))
