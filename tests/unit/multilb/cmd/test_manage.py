"""multilb-manage (multilb/cmd/manage.py) over a sqlite store in tmp_path.

Every test calls ``main([...])`` as the console script does and checks
what an operator sees: stdout, stderr and the exit code.
"""

import datetime
import json
import re
import socket
import time

import pytest

from multilb.cmd import manage
from multilb import keys
from multilb import octavia as octavia_mod
from multilb import outbox as outbox_mod
from multilb import placement
from multilb import runtime
from multilb import state as state_mod
from scheduler import cluster_state
from tests.unit import fixtures
from tests.unit.multilb.cmd import common

CLUSTERS = common.CLUSTERS
conf_path, state, fleet = common.conf_path, common.state, common.fleet
operator = common.operator
place, run, run_json = common.place, common.run, common.run_json
LB1, LB2, LB3, LB4 = common.LB1, common.LB2, common.LB3, common.LB4
LISTENER1, uuid = common.LISTENER1, common.uuid
ATTENTION = manage.EXIT_ATTENTION
NOTICE = ('multilb-manage: 3 cluster(s) need attention: beta (unreachable), '
          'nosuch (config-error), gone (not-configured)\n')


# -- cluster list ------------------------------------------------------------

def test_cluster_list_table(capsys, conf_path, fleet):
    code, out, err = run(capsys, 'cluster', 'list', conf=conf_path)
    assert (code, err) == (ATTENTION, NOTICE)
    lines = out.splitlines()
    assert lines[0].split() == ['NAME', 'BACKEND', 'STATE',
                                'PLACED/CAPACITY', 'HEALTH', 'PENDING',
                                'OUTBOX']
    assert lines[5] == ''
    rows = {line.split()[0]: line for line in lines[1:5]}
    assert rows['alpha'].split()[:4] == ['alpha', 'fake', 'active', '2/10']
    assert re.search(r'  ok \(\d+s ago\)  ', rows['alpha'])
    assert rows['alpha'].split()[-2:] == ['3', '0']
    assert rows['beta'].split()[:4] == ['beta', 'fake', 'active',
                                        '1/unlimited']
    assert 'unreachable: connection refused (' in rows['beta']
    assert rows['beta'].split()[-2:] == ['1', '1']
    assert rows['nosuch'].split()[:4] == ['nosuch', 'does-not-exist',
                                          'config-error', '0/?']
    assert rows['gone'].split()[:4] == ['gone', '-', 'not-configured',
                                        '1/?']
    # Columns are aligned: every row starts each column at the same place.
    start = lines[0].index('STATE')
    assert all(line[start - 2:start] == '  ' and line[start] != ' '
               for line in lines[1:5])
    assert ("nosuch: [cluster:nosuch] backend: unknown backend "
            "'does-not-exist'; installed backends: caddy, f5, fake") in out
    assert 'gone: not in [multilb] enabled_clusters' in out
    # what the operator can do about it
    assert ('its 1 load balancer(s) can only be deleted, and deleting one '
            'does not remove it from the appliance: add the cluster back'
            ) in out


def test_cluster_list_json(capsys, conf_path, fleet):
    rows = run_json(capsys, conf_path, 'cluster', 'list', code=ATTENTION)
    assert [r['name'] for r in rows] == ['alpha', 'beta', 'nosuch', 'gone']
    alpha, beta, nosuch, gone = rows
    assert set(alpha) == {
        'name', 'backend', 'state', 'error', 'draining', 'admin', 'placed',
        'max_loadbalancers', 'health', 'breaker', 'pending_intents',
        'pending_loadbalancers', 'outbox', 'outbox_failing', 'attention',
        'agents'}
    # no agent is running: nobody to count, not a reason of its own
    assert {r['agents'] for r in rows} == {None}
    assert [r['attention'] for r in rows] == [
        [], ['unreachable'], ['config-error'], ['not-configured']]
    assert alpha['state'] == 'active' and alpha['error'] is None
    assert (alpha['placed'], alpha['max_loadbalancers']) == (2, 10)
    assert (alpha['pending_intents'], alpha['pending_loadbalancers'],
            alpha['outbox']) == (3, 2, 0)
    assert alpha['health']['status'] == 'ok'
    assert alpha['health']['stale'] is False
    assert 4 <= alpha['health']['age_seconds'] < 30
    assert beta['health']['status'] == 'unreachable'
    assert beta['health']['detail'] == 'connection refused'
    assert (beta['max_loadbalancers'], beta['outbox']) == (0, 1)
    assert nosuch['state'] == 'config-error'
    assert nosuch['backend'] == 'does-not-exist'
    assert "unknown backend 'does-not-exist'" in nosuch['error']
    assert nosuch['health'] == {
        'status': 'unknown', 'detail': None, 'at': None,
        'age_seconds': None, 'stale': None, 'breaker_open': None,
        'recent_errors': None}
    assert gone['state'] == 'not-configured' and gone['placed'] == 1
    assert gone['max_loadbalancers'] is None


def test_cluster_list_without_state(capsys, conf_path, state):
    rows = run_json(capsys, conf_path, 'cluster', 'list', code=ATTENTION)
    assert [(r['name'], r['state'], r['placed'], r['attention'])
            for r in rows] == [
        ('alpha', 'active', 0, ['never-probed']),
        ('beta', 'active', 0, ['never-probed']),
        ('nosuch', 'config-error', 0, ['config-error'])]


def test_stale_health_is_flagged(capsys, conf_path, state):
    state.set_health('alpha', {'reachable': True, 'at': time.time() - 600})
    code, out, _err = run(capsys, 'cluster', 'list', conf=conf_path)
    assert code == ATTENTION
    assert 'ok (10m ago, stale)' in out
    rows = run_json(capsys, conf_path, 'cluster', 'list', code=ATTENTION)
    assert rows[0]['health']['stale'] is True
    assert rows[0]['attention'] == ['stale']


def test_cluster_show_names_an_open_breaker_and_its_last_error(
        capsys, conf_path, state):
    now = time.time()
    state.set_breaker('alpha', {
        'state': 'open', 'opened_at': now - 5, 'failures': 5, 'at': now,
        'last_error': 'http://10.0.0.1:2019 GET /config: timed out'})
    code, out, _err = run(capsys, 'cluster', 'show', 'alpha',
                          conf=conf_path)
    assert code == 0
    line = [x for x in out.splitlines() if x.startswith('circuit breaker')]
    assert 'OPEN since' in line[0] and 'timed out' in line[0]
    row = run_json(capsys, conf_path, 'cluster', 'show', 'alpha')
    assert row['breaker']['state'] == 'open'
    assert row['breaker']['stale'] is False
    state.set_breaker('alpha', {'state': 'closed', 'at': now})
    row = run_json(capsys, conf_path, 'cluster', 'show', 'alpha')
    assert row['breaker']['state'] == 'closed'


def test_removed_cluster_with_nothing_left_is_not_listed(
        capsys, conf_path, state):
    place(state, uuid(9), 'gone')
    state.complete(uuid(9), 'gone', list(state.pending('gone')[uuid(9)]),
                   release=True)
    assert state.cluster_runtime()['gone']['placed'] == 0
    rows = run_json(capsys, conf_path, 'cluster', 'list', code=ATTENTION)
    assert 'gone' not in [r['name'] for r in rows]


# -- cluster show ------------------------------------------------------------

def test_cluster_show_table(capsys, conf_path, fleet):
    code, out, err = run(capsys, 'cluster', 'show', 'alpha', conf=conf_path)
    assert (code, err) == (0, '')
    assert 'description      DC1 rack 4\n' in out
    assert 'tags             dc1, gold\n' in out
    assert 'dedicated to     any project\n' in out
    assert 'placed/capacity  2/10\n' in out
    assert 'pending          3 operation(s) on 2 load balancer(s)\n' in out
    assert 'load balancers (2):' in out
    table = out.split('load balancers (2):\n')[1].splitlines()
    assert table[0].split() == ['ID', 'PROJECT', 'CREATED', 'AT', 'PENDING']
    assert table[1].split() == [LB1, 'proj-a',
                                '2023-11-14T22:13:20+00:00', '2']
    assert table[2].split() == [LB2, 'proj-b',
                                '2023-11-14T22:13:20+00:00', '1']


def test_cluster_show_json(capsys, conf_path, fleet):
    beta = run_json(capsys, conf_path, 'cluster', 'show', 'beta')
    assert beta['projects'] == ['proj-b', 'proj-c']
    assert beta['tags'] == [] and beta['description'] == ''
    assert beta['loadbalancers'] == [{
        'id': LB3, 'project_id': 'proj-b',
        'created_at': '2023-11-14T22:13:20+00:00', 'pending_intents': 1}]
    gone = run_json(capsys, conf_path, 'cluster', 'show', 'gone')
    assert gone['state'] == 'not-configured'
    assert [lb['id'] for lb in gone['loadbalancers']] == [LB4]
    nosuch = run_json(capsys, conf_path, 'cluster', 'show', 'nosuch')
    assert nosuch['state'] == 'config-error'
    assert nosuch['loadbalancers'] == []


def test_cluster_show_unknown_name(capsys, conf_path, state):
    code, out, err = run(capsys, 'cluster', 'show', 'nope', conf=conf_path)
    assert (code, out) == (2, '')
    assert err == ('multilb-manage: error: no cluster nope; configured '
                   'clusters: alpha, beta, nosuch\n')


# -- drain / undrain ---------------------------------------------------------

def draining_seen_by_scheduler(conf_path):
    """What the next placement sees, from a runtime of its own."""
    rt = runtime.Runtime(fixtures.load_conf(conf_path))
    request = cluster_state.PlacementRequest('lb-x', 'proj-a')
    states, _info, _project = placement.snapshot(rt, request)
    return {s.name: s.draining for s in states}


def test_drain_and_undrain(capsys, conf_path, fleet, operator):
    code, out, err = run(capsys, 'cluster', 'drain', 'alpha', '--reason',
                         'firmware upgrade', conf=conf_path)
    assert (code, err) == (0, '')
    assert out.startswith(
        'cluster alpha is now draining: no new load balancer will be '
        'placed on it; its 2 load balancer(s) stay fully manageable\n')
    assert 'draining (firmware upgrade)  2/10' in out
    admin = fleet.cluster_runtime()['alpha']['admin']
    assert admin['draining'] is True
    assert admin['reason'] == 'firmware upgrade'
    assert admin['by'] == 'multilb-manage (ops@ctl-1)'
    assert draining_seen_by_scheduler(conf_path) == {
        'alpha': True, 'beta': False}

    code, out, err = run(capsys, 'cluster', 'show', 'alpha', conf=conf_path)
    assert 'state            draining (firmware upgrade)\n' in out
    assert 'draining since   ' in out
    assert ' by multilb-manage (ops@ctl-1)\n' in out
    code, out, err = run(capsys, 'lb', 'show', LB1, conf=conf_path)
    assert 'cluster            alpha (draining: firmware upgrade)\n' in out

    code, out, err = run(capsys, 'cluster', 'undrain', 'alpha',
                         conf=conf_path)
    assert (code, err) == (0, '')
    assert out.startswith('cluster alpha is back in service')
    assert fleet.cluster_runtime()['alpha']['admin']['draining'] is False
    assert fleet.cluster_runtime()['alpha']['admin']['reason'] is None
    assert draining_seen_by_scheduler(conf_path) == {
        'alpha': False, 'beta': False}


def test_drain_is_idempotent(capsys, conf_path, state, operator):
    first = run_json(capsys, conf_path, 'cluster', 'drain', 'beta')
    assert (first['state'], first['changed']) == ('draining', True)
    assert first['admin']['changed_by'] == 'multilb-manage (ops@ctl-1)'
    at = state.cluster_runtime()['beta']['admin']['at']
    code, out, err = run(capsys, 'cluster', 'drain', 'beta', conf=conf_path)
    assert (code, err) == (0, '')
    assert out.startswith('cluster beta was already draining; nothing '
                          'changed\n')
    assert state.cluster_runtime()['beta']['admin']['at'] == at
    again = run_json(capsys, conf_path, 'cluster', 'drain', 'beta')
    assert (again['state'], again['changed']) == ('draining', False)
    # A new reason on a drained cluster replaces the old one.
    code, out, err = run(capsys, 'cluster', 'drain', 'beta', '--reason',
                         'RMA', conf=conf_path)
    assert out.startswith('cluster beta was already draining; reason '
                          'updated\n')
    assert state.cluster_runtime()['beta']['admin']['reason'] == 'RMA'

    undrained = run_json(capsys, conf_path, 'cluster', 'undrain', 'beta')
    assert (undrained['state'], undrained['changed']) == ('active', True)
    code, out, err = run(capsys, 'cluster', 'undrain', 'beta',
                         conf=conf_path)
    assert (code, err) == (0, '')
    assert out.startswith('cluster beta was already in service')


def test_drain_a_broken_cluster(capsys, conf_path, state):
    row = run_json(capsys, conf_path, 'cluster', 'drain', 'nosuch')
    assert (row['state'], row['draining']) == ('config-error', True)


@pytest.mark.parametrize('action', ['drain', 'undrain'])
@pytest.mark.parametrize('name', ['nope', 'gone'])
def test_drain_refuses_names_not_configured(capsys, conf_path, fleet,
                                            action, name):
    code, out, err = run(capsys, 'cluster', action, name, conf=conf_path)
    assert (code, out) == (2, '')
    assert err == ('multilb-manage: error: no cluster %s in [multilb] '
                   'enabled_clusters; configured clusters: alpha, beta, '
                   'nosuch\n' % name)
    assert not fleet.cluster_runtime().get(name, {}).get('admin')


# -- lb show -----------------------------------------------------------------

def test_lb_show_table(capsys, conf_path, fleet):
    code, out, err = run(capsys, 'lb', 'show', LB1, conf=conf_path)
    assert (code, err) == (0, '')
    lines = out.splitlines()
    assert lines[:7] == [
        'id                 ' + LB1,
        'cluster            alpha (active)',
        'project            proj-a',
        'created at         2023-11-14T22:13:20+00:00',
        'flavor             cluster_tags=["gold"]',
        'availability zone  zone=az1',
        'reservation        one slot on alpha (2/10 placed)']
    assert lines[7].startswith('pending            create loadbalancer '
                               '%s (recorded 20' % LB1)
    assert lines[8].startswith('                   create listener '
                               '%s (recorded 20' % LISTENER1)
    assert lines[9:] == [
        'outbox             0 status update(s) not yet delivered',
        'pools              pool-1: 2 member(s) (member-1, member-2)',
        'VIP                not from a multilb pool',
        'bound              nothing (no listener, or a backend that binds '
        'no address)',
        'refused            nothing (the cluster holds every object)',
        'move               none']


def test_lb_show_json(capsys, conf_path, fleet):
    lb = run_json(capsys, conf_path, 'lb', 'show', LB1)
    assert set(lb) == {'id', 'cluster', 'cluster_state', 'project_id',
                       'created_at', 'flavor', 'availability_zone',
                       'reservation', 'pending', 'outbox', 'pools', 'vip',
                       'bound', 'refused', 'move'}
    assert (lb['cluster'], lb['cluster_state']) == ('alpha', 'active')
    assert lb['created_at'] == '2023-11-14T22:13:20+00:00'
    assert lb['flavor'] == {'cluster_tags': ['gold']}
    assert lb['availability_zone'] == {'zone': 'az1'}
    assert lb['reservation'] == {'cluster': 'alpha', 'placed': 2,
                                 'max_loadbalancers': 10}
    assert [(p['op'], p['type'], p['id']) for p in lb['pending']] == [
        ('create', 'loadbalancer', LB1), ('create', 'listener', LISTENER1)]
    assert lb['pools'] == {'pool-1': ['member-1', 'member-2']}
    assert (lb['vip'], lb['bound']) == (None, [])
    assert lb['refused'] == []
    place(fleet, uuid(18), 'alpha', refused=['member-9', 'l7rule-2'])
    refused = run_json(capsys, conf_path, 'lb', 'show', uuid(18))['refused']
    assert refused == ['l7rule-2', 'member-9']
    code, out, _err = run(capsys, 'lb', 'show', uuid(18), conf=conf_path)
    assert out.splitlines()[-3:-1] == ['refused            l7rule-2',
                                       '                   member-9']
    beta_lb = run_json(capsys, conf_path, 'lb', 'show', LB3)
    assert beta_lb['outbox'] == 1 and len(beta_lb['pending']) == 1
    assert beta_lb['reservation']['max_loadbalancers'] == 0


def test_lb_show_unknown(capsys, conf_path, fleet):
    code, out, err = run(capsys, 'lb', 'show', uuid(99), conf=conf_path)
    assert (code, out) == (2, '')
    assert err == ('multilb-manage: error: no load balancer %s in the '
                   'multilb state store\n' % uuid(99))
    code, out, err = run(capsys, 'lb', 'show', LISTENER1, conf=conf_path)
    assert code == 2
    assert '(%s is a listener of load balancer %s)' % (LISTENER1, LB1) in err
    # an id in capitals is the same id
    assert run_json(capsys, conf_path, 'lb', 'show', LB1.upper())['id'] == LB1


# -- outbox list -------------------------------------------------------------

DB_DOWN = ('loadbalancers %s: (pymysql.err.OperationalError) (2003, '
           '"Can\'t connect to MySQL server on \'127.0.0.1\'")' % LB1)


@pytest.fixture
def refused(fleet):
    """LB1's status update on alpha refused twice by Octavia (its
    database away), as the agent's outbox records it in the store."""
    key = fleet.complete(LB1, 'alpha', [], status={'loadbalancers': [
        {'id': LB1, 'provisioning_status': 'ACTIVE'}]})
    octavia = fixtures.FakeOctavia()
    octavia.update_errors = [octavia_mod.StatusRejected(DB_DOWN)] * 2
    box = outbox_mod.Outbox('alpha', fleet, octavia)
    assert box.deliver(key) is False
    record = fleet.outbox_entry(key)['delivery']
    fleet.record_delivery_failure(key, dict(
        record, next_attempt_at=time.time()))    # due again
    box.deliver_all()
    assert octavia.update_attempts == 2
    return key


def test_outbox_list_table(capsys, conf_path, fleet, refused):
    code, out, err = run(capsys, 'outbox', 'list', conf=conf_path)
    assert (code, err) == (0, '')
    lines = out.splitlines()
    assert lines[0].split() == ['CLUSTER', 'LOAD', 'BALANCER', 'AGE',
                                'ATTEMPTS', 'NEXT', 'RETRY', 'LAST', 'ERROR']
    assert re.fullmatch(r'alpha +%s +\ds +2 +now +refused: ' % LB1
                        + re.escape(DB_DOWN), lines[1]), lines[1]
    assert re.fullmatch(r'beta +%s +\ds +0 +now +-' % LB3, lines[2]), lines[2]
    assert lines[4] == ('A status update Octavia keeps refusing is dropped '
                        '1d after its first refusal ([multilb] '
                        'status_delivery_deadline).')
    [(key, _entry)] = fleet.outbox('beta')
    fleet.record_delivery_failure(key, {
        'attempts': 7, 'next_attempt_at': time.time() + 95,
        'last_error': 'driver agent unreachable: socket gone'})
    code, out, err = run(capsys, 'outbox', 'list', '--cluster', 'beta',
                         conf=conf_path)
    assert [line.split() for line in out.splitlines()[1:3]] == [
        ['beta', LB3, '0s', '7', 'in', '1m', 'driver', 'agent',
         'unreachable:', 'socket', 'gone'], []]


def test_outbox_list_json(capsys, conf_path, fleet, refused):
    rows = run_json(capsys, conf_path, 'outbox', 'list')
    assert [(r['cluster'], r['loadbalancer_id']) for r in rows] == [
        ('alpha', LB1), ('beta', LB3)]
    alpha, beta = rows
    assert set(alpha) == {
        'cluster', 'loadbalancer_id', 'key', 'created_at', 'age_seconds',
        'attempts', 'first_failure_at', 'last_attempt_at', 'last_error',
        'next_attempt_at', 'next_attempt_in_seconds', 'dropped_at'}
    assert alpha['key'] == refused
    assert (alpha['attempts'], alpha['last_error']) == (
        2, 'refused: ' + DB_DOWN)
    assert 0 < alpha['next_attempt_in_seconds'] <= 0.5
    assert 0 <= alpha['age_seconds'] < 30
    first = datetime.datetime.fromisoformat(alpha['first_failure_at'])
    dropped = datetime.datetime.fromisoformat(alpha['dropped_at'])
    assert (dropped - first).total_seconds() == 86400
    assert beta['attempts'] == 0
    assert (beta['last_error'], beta['first_failure_at'],
            beta['next_attempt_in_seconds'], beta['dropped_at']) == (
                None, None, None, None)


def test_outbox_failures_show_in_the_cluster_views(
        capsys, conf_path, fleet, refused):
    code, out, _err = run(capsys, 'cluster', 'list', conf=conf_path)
    [alpha] = [line for line in out.splitlines() if line.startswith('alpha')]
    assert alpha.endswith('  3        1 (1 failing)')
    row = run_json(capsys, conf_path, 'cluster', 'show', 'alpha')
    assert (row['outbox'], row['outbox_failing']) == (1, 1)
    code, out, _err = run(capsys, 'cluster', 'show', 'alpha',
                          conf=conf_path)
    assert ('outbox           1 status update(s) not yet delivered, 1 '
            'failing (see outbox list)\n') in out
    assert run_json(capsys, conf_path, 'lb', 'show', LB1)['outbox'] == 1


def test_outbox_list_empty_and_unknown_cluster(capsys, conf_path, state):
    code, out, err = run(capsys, 'outbox', 'list', conf=conf_path)
    assert (code, out, err) == (
        0, 'no status update is waiting for delivery\n', '')
    code, out, err = run(capsys, 'outbox', 'list', '--cluster', 'alpha',
                         conf=conf_path)
    assert out == 'no status update is waiting for delivery on cluster ' \
        'alpha\n'
    assert run_json(capsys, conf_path, 'outbox', 'list') == []
    code, out, err = run(capsys, 'outbox', 'list', '--cluster', 'nope',
                         conf=conf_path)
    assert (code, out) == (2, '')
    assert err == ('multilb-manage: error: no cluster nope; configured '
                   'clusters: alpha, beta, nosuch\n')


# -- errors ------------------------------------------------------------------

def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize('argv', [
    ['cluster', 'list'], ['cluster', 'show', 'alpha'],
    ['cluster', 'drain', 'alpha'], ['lb', 'show', LB1],
    ['outbox', 'list']])
def test_store_unreachable(capsys, tmp_path, argv):
    url = 'etcd3+http://127.0.0.1:%d?timeout=1' % closed_port()
    conf = fixtures.write_conf(tmp_path, CLUSTERS,
                               options={'store_url': url})
    started = time.monotonic()
    code, out, err = run(capsys, *argv, conf=conf)
    assert time.monotonic() - started < 10
    assert (code, out) == (1, '')
    assert err.startswith('multilb-manage: error: cannot reach the multilb '
                          'state store (%s): etcd state store at ' % url)
    assert 'connection refused' in err.lower()
    assert 'Traceback' not in err and len(err.splitlines()) == 1


def test_missing_sqlite_file_is_not_created(capsys, tmp_path, conf_path):
    code, out, err = run(capsys, 'cluster', 'list', conf=conf_path)
    assert code == 1
    path = tmp_path / 'state.db'
    assert ('cannot reach the multilb state store (sqlite:///%s): the '
            'file %s does not exist' % (path, path)) in err
    assert not (tmp_path / 'state.db').exists()


def test_unexpected_error_no_traceback_unless_debug(
        capsys, conf_path, state, monkeypatch):
    def broken(self):
        raise RuntimeError('disk on fire')
    monkeypatch.setattr(state_mod.State, 'cluster_runtime', broken)
    code, out, err = run(capsys, 'cluster', 'list', conf=conf_path)
    assert (code, out) == (1, '')
    assert err == ('multilb-manage: error: unexpected error: RuntimeError: '
                   'disk on fire (run with --debug for details)\n')
    code, out, err = run(capsys, '--debug', 'cluster', 'list',
                         conf=conf_path)
    assert code == 1
    assert 'Traceback (most recent call last)' in err
    assert 'RuntimeError: disk on fire' in err


def test_missing_config_file(capsys, tmp_path):
    code, out, err = run(capsys, 'cluster', 'list',
                         conf=tmp_path / 'nope.conf')
    assert code == 2
    assert 'cannot read the configuration' in err
    assert str(tmp_path / 'nope.conf') in err


def test_a_bad_value_in_multilb_is_a_configuration_error(capsys, tmp_path):
    conf = fixtures.write_conf(tmp_path, CLUSTERS,
                               options={'health_interval': 'often'})
    code, out, err = run(capsys, 'cluster', 'list', conf=conf)
    assert (code, out) == (2, '')
    assert err == ("multilb-manage: error: configuration error: "
                   "health_interval: invalid value (could not convert "
                   "string to float: 'often') (multilb-status upgrade check "
                   "lists every problem)\n")


def test_config_without_multilb_section(capsys, tmp_path):
    path = tmp_path / 'octavia.conf'
    path.write_text('[DEFAULT]\ndebug = true\n[api_settings]\nbind_port = 1\n')
    code, out, err = run(capsys, 'cluster', 'list', conf=path)
    assert code == 2
    assert err == ('multilb-manage: error: no [multilb] section in %s; pass '
                   'the octavia.conf that octavia-api uses with '
                   '--config-file\n' % path)


def test_bad_store_url(capsys, tmp_path):
    conf = fixtures.write_conf(tmp_path, CLUSTERS,
                               options={'store_url': 'redis://localhost/'})
    code, out, err = run(capsys, 'cluster', 'list', conf=conf)
    assert code == 2
    assert ("[multilb] store_url: Unsupported state store URL scheme "
            "'redis'") in err


def test_store_url_credentials_are_never_shown(capsys, tmp_path):
    url = 'etcd3+http://user:s3cret@127.0.0.1:%d?timeout=1' % closed_port()
    conf = fixtures.write_conf(tmp_path, CLUSTERS,
                               options={'store_url': url})
    code, out, err = run(capsys, 'cluster', 'list', conf=conf)
    assert (code, out) == (1, '')
    assert 'cannot reach the multilb state store (etcd3+http://***@' in err
    assert 's3cret' not in err and 'user' not in err


def test_broken_defaults_section(capsys, tmp_path):
    conf = fixtures.write_conf(tmp_path, CLUSTERS, defaults={
        'backend': 'fake', 'max_loadbalancers': 'many'})
    code, out, err = run(capsys, 'cluster', 'list', conf=conf)
    assert code == 2
    assert err.startswith('multilb-manage: error: configuration error: '
                          '[cluster_defaults] max_loadbalancers: invalid '
                          'value')


def test_config_dir(capsys, tmp_path, state):
    main = tmp_path / 'octavia.conf'
    main.write_text('[DEFAULT]\n')
    confd = tmp_path / 'octavia.conf.d'
    confd.mkdir()
    fixtures.write_conf(tmp_path, CLUSTERS, name='octavia.conf.d/50.conf')
    common.healthy(state, 'alpha', 'beta')
    code, out, err = run(capsys, '--config-file', str(main),
                         '--config-dir', str(confd), 'cluster', 'list')
    assert (code, err) == (0, '')
    assert [line.split()[0] for line in out.splitlines()] == [
        'NAME', 'alpha', 'beta']


@pytest.mark.parametrize('argv', [
    [], ['cluster'], ['lb'], ['cluster', 'list'], ['cluster', 'show'],
    ['cluster', 'drain'], ['cluster', 'undrain'], ['lb', 'show'],
    ['outbox'], ['outbox', 'list']])
def test_help_at_every_level(capsys, argv):
    code, out, err = run(capsys, *argv, '--help')
    assert (code, err) == (0, '')
    assert out.startswith('usage: multilb-manage')


@pytest.mark.parametrize('argv, expected', [
    ([], 'the following arguments are required'),
    (['cluster'], 'the following arguments are required'),
    (['cluster', 'show'], 'the following arguments are required: name'),
    (['cluster', 'list', '--format', 'xml'], "invalid choice: 'xml'"),
    (['pool', 'list'], "invalid choice: 'pool'"),
])
def test_usage_errors(capsys, argv, expected):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert expected in err and 'Traceback' not in err


# -- VIP pools ---------------------------------------------------------------

POOLS = """
[vip_pool:public]
network_id = net-pool
cidr = 203.0.113.0/29
exclude = 203.0.113.1
quarantine = 600
[vip_pool:clash]
network_id = net-2
cidr = 203.0.113.4/30
"""


def test_vip_pool_list_shows_usage_and_broken_pools(capsys, tmp_path):
    conf = fixtures.write_conf(
        tmp_path, {'alpha': {'vip_pools': 'public'}, 'beta': {}},
        extra=POOLS, options={'vip_pools': 'public, clash'})
    rt = runtime.Runtime(fixtures.load_conf(conf))
    pool = rt.pools.pools['public']
    first = rt.vips.allocate(pool, 'lb-1', 'proj-a')
    rt.vips.allocate(pool, 'lb-2', 'proj-a')
    place(rt.state, 'lb-1', 'alpha', vip={
        'pool': 'public', 'address': first['address'], 'quarantine': 600})
    rt.state.complete('lb-1', 'alpha', rt.state.pending('alpha')['lb-1'],
                      release=True)
    rows = run_json(capsys, conf, 'vip-pool', 'list')
    assert rows[0] == {
        'name': 'public', 'state': 'active', 'cidr': '203.0.113.0/29',
        'network_id': 'net-pool', 'subnet_id': None, 'quarantine': 600.0,
        'clusters': ['alpha'], 'error': None, 'size': 5, 'allocated': 1,
        'quarantined': 1, 'free': 3}
    assert rows[1]['state'] == 'disabled'
    assert 'overlaps pool public' in rows[1]['error']
    code, out, err = run(capsys, 'vip-pool', 'list', conf=conf)
    assert (code, err) == (0, '')
    assert out.splitlines()[1].split() == [
        'public', 'active', '203.0.113.0/29', 'net-pool', '1', '1', '3',
        'alpha']
    assert 'clash: [vip_pool:clash] cidr: 203.0.113.4/30 overlaps' in out


@pytest.mark.parametrize('argv', [
    ('cluster', 'drain', 'alpha'), ('cluster', 'list'), ('outbox', 'list')])
def test_a_store_a_newer_multilb_upgraded_is_not_touched(capsys, conf_path,
                                                         state, argv):
    """multilb-manage on a host not upgraded yet reads and writes nothing
    of a store in a newer key layout."""
    state.kv.commit(puts={keys.schema_key(): json.dumps(
        {'version': keys.SCHEMA_VERSION + 1})})
    before = [(e.key, e.value) for e in state.kv.get_prefix('')]

    code, out, err = run(capsys, *argv, conf=conf_path)

    assert (code, out) == (2, '')
    assert ('key layout version %d, newer than this multilb reads'
            % (keys.SCHEMA_VERSION + 1)) in err
    assert [(e.key, e.value) for e in state.kv.get_prefix('')] == before


def test_store_upgrade_records_then_has_nothing_to_do_and_refuses_newer(
        capsys, conf_path, state):
    code, out, err = run(capsys, 'store', 'upgrade', conf=conf_path)
    assert (code, err) == (0, '')
    assert out == ('The store recorded no key layout version: recorded %d '
                   '(its layout).\n' % keys.SCHEMA_VERSION)
    assert run_json(capsys, conf_path, 'store', 'upgrade') == {
        'version_before': keys.SCHEMA_VERSION,
        'version': keys.SCHEMA_VERSION, 'migrations': []}
    state.kv.commit(puts={keys.schema_key(): json.dumps(
        {'version': keys.SCHEMA_VERSION + 1})})
    code, out, err = run(capsys, 'store', 'upgrade', conf=conf_path)
    assert (code, out) == (2, '')
    assert 'newer than this multilb reads' in err
