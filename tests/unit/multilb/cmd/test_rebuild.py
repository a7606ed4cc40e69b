"""``multilb-manage store rebuild`` (multilb/cmd/rebuild.py and
multilb/rebuild.py) after the state store was lost.

The clusters are ``fake`` backends (FAKE appliances kept in process
memory: what they list is what tests applied to them) and Octavia is
:class:`tests.unit.fixtures.FakeOctavia` (a FAKE of the driver agent's
``get_loadbalancer``), put in place of the command's OctaviaClient.
"""

import json
import socket

import pytest
from octavia_lib.api.drivers import data_models as dm

from multilb.cmd import rebuild as rebuild_cmd
from multilb import rebuild
from multilb import runtime
from tests.unit import fixtures as fx
from tests.unit.multilb.cmd import common

run, run_json, place = common.run, common.run_json, common.place
LB1, LB2, QUIET, TYPO = (common.uuid(n) for n in (1, 2, 41, 42))
TWO = {'alpha': {'max_loadbalancers': 10}, 'beta': {}}


def wipe(state):
    """The store lost: every key gone."""
    keys = [e.key for e in state.kv.get_prefix('')]
    for start in range(0, len(keys), 100):
        assert state.kv.commit(deletes=keys[start:start + 100])


def fake_octavia(monkeypatch, octavia=None):
    """FAKE: the command asks this instead of the driver agent."""
    octavia = octavia or fx.FakeOctavia()
    monkeypatch.setattr(rebuild_cmd, 'octavia_client', lambda conf: octavia)
    return octavia


def on_cluster(rt, name, *graphs):
    """Put graphs on a FAKE cluster, as an earlier apply would have."""
    cluster = rt.clusters.clusters[name]
    backend = cluster.backend_class(cluster)
    for graph in graphs:
        backend.apply_loadbalancer(graph)


def graph(lb_id, project='proj-a', listeners=0):
    """A load balancer without pools and with ``listeners`` HTTP
    listeners (ports 80, 81...)."""
    lb = fx.lb_graph(loadbalancer_id=lb_id, project_id=project)
    lb['listeners'] = [
        dict(lb['listeners'][0], listener_id='%s-l%d' % (lb_id, i),
             loadbalancer_id=lb_id, protocol_port=80 + i, l7policies=[],
             default_pool_id=None)
        for i in range(listeners)]
    lb['pools'] = []
    return lb


def runtime_of(conf):
    """The runtime over ``conf``, its (empty) store file created as the
    services create it when they start."""
    rt = runtime.Runtime(fx.load_conf(conf))
    rt.state.cluster_runtime()
    return rt


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    """Clusters alpha and beta (FAKE), an empty store, FAKE Octavia."""
    conf = fx.write_conf(tmp_path, TWO)
    rt = runtime_of(conf)
    octavia = fake_octavia(monkeypatch)
    return conf, rt, octavia


def outcomes(data):
    return {r['id']: (r['outcome'], r['cluster'])
            for r in data['loadbalancers']}


# -- the whole path: an ACTIVE load balancer, the store lost, rebuilt ------


def test_a_lost_lb_is_recovered_and_stays_manageable(env, capsys,
                                                     monkeypatch):
    common.accept_sample_lb_id(monkeypatch)
    env.create_active()
    conf = env.tmp_path / 'multilb.conf'
    before = run_json(capsys, conf, 'lb', 'show', fx.LB)
    record = env.state.get_lb(fx.LB)
    wipe(env.state)
    code, _out, err = run(capsys, 'lb', 'show', fx.LB, conf=conf)
    assert code == 2 and 'no load balancer lb-1' in err
    fake_octavia(monkeypatch, env.octavia)

    data = run_json(capsys, conf, 'store', 'rebuild')

    assert outcomes(data) == {fx.LB: ('recovered', 'alpha')}
    assert data['clusters'] == [{'name': 'alpha', 'listed': 1,
                                 'error': None}]
    after = run_json(capsys, conf, 'lb', 'show', fx.LB)
    for key in ('cluster', 'cluster_state', 'project_id', 'pools', 'bound',
                'vip', 'pending', 'refused'):
        assert after[key] == before[key], key
    assert after['reservation'] == {'cluster': 'alpha', 'placed': 1,
                                    'max_loadbalancers': 0}
    rebuilt = env.state.get_lb(fx.LB)
    for key in ('indexed', 'listeners', 'locks', 'pools', 'applied',
                'project_id', 'addresses', 'binds'):
        assert rebuilt[key] == record[key], key
    assert env.state.cluster_listeners('alpha') == 2
    assert env.state.project_counts(fx.PROJECT)['alpha'][0] == 1
    assert env.state.lookup(fx.M1) == (fx.LB, 'member')

    # a later change through Octavia goes ACTIVE
    env.driver.member_update(fx.member(fx.M1, fx.POOL_WEB, '192.0.2.10'),
                             dm.Member(member_id=fx.M1, weight=5))
    env.committed()['pools'][0]['members'][0]['weight'] = 5
    env.process()
    assert fx.reported(env)[fx.M1] == fx.ACTIVE
    assert fx.reported(env)[fx.LB] == fx.ACTIVE
    assert env.appliance()['pools'][0]['members'][0]['weight'] == 5

    # run again: the record now exists and is kept, nothing counted twice
    code, out, err = run(capsys, 'store', 'rebuild', conf=conf)
    assert (code, err) == (0, '')
    assert 'kept' in out.splitlines()[4]
    assert env.state.cluster_counts()['alpha'][0] == 1


def test_table_output_reports_what_no_record_gets(fleet, capsys):
    conf, rt, octavia = fleet
    lb = octavia.commit(graph('lb-1', listeners=1))
    on_cluster(rt, 'alpha', lb)
    code, out, err = run(capsys, 'store', 'rebuild', conf=conf)
    assert (code, err) == (0, '')
    lines = out.splitlines()
    assert lines[0].split() == ['CLUSTER', 'LISTED', 'ERROR']
    assert lines[1].split() == ['alpha', '1', '-']
    assert lines[2].split() == ['beta', '0', '-']
    assert lines[5].startswith('lb-1           recovered  alpha    recorded '
                               'on alpha (project proj-a, 1 listener(s), 2 '
                               'object(s) indexed)')
    assert 'recovered 1, would-recover 0, kept 0, orphan 0' in out
    assert 'Not rebuilt for any load balancer:' in out
    for word in ('availability-zone metadata', 'statistics totals',
                 'sent/', 'PENDING_*'):
        assert word in out
    assert rt.state.cluster_listeners('alpha') == 1


# -- what cannot be recovered ------------------------------------------------


def test_an_lb_held_by_two_clusters_is_not_recovered_until_assigned(
        fleet, capsys):
    conf, rt, octavia = fleet
    lb = octavia.commit(graph(LB1))
    on_cluster(rt, 'alpha', lb)
    on_cluster(rt, 'beta', lb)
    code, out, err = run(capsys, 'store', 'rebuild', '--format', 'json',
                         conf=conf)
    assert code == 1
    assert err == ('multilb-manage: error: store rebuild did what it '
                   'could: load balancer(s) without a record: %s\n' % LB1)
    [row] = json.loads(out)['loadbalancers']
    assert (row['outcome'], row['holders'], row['writes']) == (
        'held-by-several', ['alpha', 'beta'], [])
    assert 'held by alpha and beta: not recovered' in row['detail']
    assert '--assign %s=CLUSTER' % LB1 in row['detail']
    assert rt.state.get_lb(LB1) is None
    assert rt.state.cluster_counts() == {}

    data = run_json(capsys, conf, 'store', 'rebuild', '--assign',
                    '%s=beta' % LB1)
    assert outcomes(data) == {LB1: ('recovered', 'beta')}
    assert rt.state.get_lb(LB1)['cluster'] == 'beta'
    assert rt.state.cluster_lb_ids('alpha') == []    # the sweep's now


def test_an_orphan_is_reported_and_left_to_the_sweep(fleet, capsys):
    conf, rt, octavia = fleet
    on_cluster(rt, 'beta', graph('lb-gone'))        # Octavia: never heard
    data = run_json(capsys, conf, 'store', 'rebuild')
    assert outcomes(data) == {'lb-gone': ('orphan', None)}
    [row] = data['loadbalancers']
    assert row['detail'] == ("held by beta, unknown to Octavia: not "
                             "recorded; the agent's orphan sweep removes "
                             "it from the cluster")
    assert data['summary']['orphan'] == 1
    assert fx.all_stored_text(rt.state) == ''


def test_an_id_no_cluster_holds_is_placed_nowhere_until_assigned(
        fleet, capsys):
    conf, rt, octavia = fleet
    octavia.commit(graph(QUIET))          # no cluster lists it
    code, out, err = run(capsys, 'store', 'rebuild', '--id', QUIET,
                         '--id', TYPO, conf=conf)
    assert code == 1 and 'without a record: %s\n' % QUIET in err
    rows = {line.split()[0]: line for line in out.splitlines()[5:7]}
    assert 'placed-nowhere' in rows[QUIET]
    assert 'delete and failover included' in rows[QUIET]
    assert 'unknown to Octavia and to every cluster' in rows[TYPO]
    assert rt.state.get_lb(QUIET) is None

    data = run_json(capsys, conf, 'store', 'rebuild', '--assign',
                    '%s=alpha' % QUIET)
    [row] = data['loadbalancers']
    assert (row['outcome'], row['sync_queued']) == ('recovered', True)
    assert 'a re-apply on alpha is queued' in row['detail']
    assert [i['op'] for i in rt.state.pending('alpha')[QUIET]] == [
        'sync']
    code, _out, err = run(capsys, 'store', 'rebuild', '--assign',
                          '%s=nosuch' % QUIET, conf=conf)
    assert code == 2 and 'no cluster nosuch' in err


def test_a_record_the_store_has_is_kept(fleet, capsys):
    conf, rt, octavia = fleet
    place(rt.state, 'lb-1', 'beta', project='proj-old', applied=True)
    on_cluster(rt, 'alpha', octavia.commit(graph('lb-1')))
    stored = fx.all_stored_text(rt.state)
    data = run_json(capsys, conf, 'store', 'rebuild')
    assert outcomes(data) == {'lb-1': ('kept', 'beta')}
    assert data['loadbalancers'][0]['detail'] == (
        'the store already places it on beta: left as it is')
    assert fx.all_stored_text(rt.state) == stored


def test_dry_run_writes_nothing_and_says_what_it_would(fleet, capsys):
    conf, rt, octavia = fleet
    on_cluster(rt, 'alpha', octavia.commit(graph('lb-1', listeners=2)))
    data = run_json(capsys, conf, 'store', 'rebuild', '--dry-run')
    assert data['dry_run'] is True
    [row] = data['loadbalancers']
    assert row['outcome'] == 'would-recover'
    assert row['writes'] == [
        'cluster/alpha/count', 'cluster/alpha/listeners', 'idx/lb-1',
        'idx/lb-1-l0', 'idx/lb-1-l1', 'lb/lb-1', 'placement/alpha/lb-1',
        'project/proj-a/alpha']
    code, out, err = run(capsys, 'store', 'rebuild', '--dry-run', conf=conf)
    assert (code, err) == (0, '')
    assert ('lb-1 would write: cluster/alpha/count, cluster/alpha/listeners,'
            ' lb/lb-1, placement/alpha/lb-1, project/proj-a/alpha, 3 idx/ '
            'entries') in out
    assert 'dry run: nothing was written' in out
    assert fx.all_stored_text(rt.state) == ''


# -- failures: a cluster that cannot be listed, Octavia unreachable ----------

USER, PASSWORD, TOKEN = 'opsUser7', 'Pa55w0rd-Zq', 'T0k3n-Xy9'


def test_an_unlistable_cluster_fails_the_run_after_the_others(
        tmp_path, monkeypatch, capsys):
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        dead = sock.getsockname()[1]
    conf = fx.write_conf(tmp_path, {
        'alpha': {},
        'leaky': {'backend': 'caddy', 'endpoints': 'http://%s:%s@127.0.0.1:'
                  '%d?token=%s' % (USER, PASSWORD, dead, TOKEN)},
        'broken': {'backend': 'caddy', 'endpoints': 'ftp://%s:%s@10.0.0.1:'
                   '2019?token=%s' % (USER, PASSWORD, TOKEN)}})
    rt = runtime_of(conf)
    octavia = fake_octavia(monkeypatch)
    on_cluster(rt, 'alpha', octavia.commit(graph('lb-1')))
    runs = []
    for extra in ([], ['--format', 'json'], ['--dry-run']):
        code, out, err = run(capsys, 'store', 'rebuild', *extra, conf=conf)
        runs.append(out + err)
        assert code == 1
        assert err == ('multilb-manage: error: store rebuild %s: '
                       'cluster(s) not listed: broken, leaky\n' % (
                           'dry run' if extra == ['--dry-run']
                           else 'did what it could'))
    code, out, err = run(capsys, '--debug', 'store', 'rebuild', conf=conf)
    runs.append(out + err)
    for text in runs:
        for secret in (USER, PASSWORD, TOKEN):
            assert secret not in text
    data = json.loads(runs[1].split('multilb-manage: error')[0])
    errors = {c['name']: c['error'] for c in data['clusters']}
    assert errors['alpha'] is None
    assert errors['leaky'] == ('cannot list its load balancers: cluster '
                               'leaky: no Caddy node answered')
    assert errors['broken'].startswith('configuration error: ')
    assert rt.state.get_lb('lb-1')['cluster'] == 'alpha'   # recovered
    assert outcomes(data) == {'lb-1': ('kept', 'alpha')}


def test_missing_driver_agent_sockets_stop_before_any_write(
        tmp_path, capsys):
    conf = fx.write_conf(tmp_path, TWO, extra='[driver_agent]\n'
                         'get_socket_path = %s/nope/get.sock\n' % tmp_path)
    rt = runtime_of(conf)
    on_cluster(rt, 'alpha', graph('lb-1'))
    code, out, err = run(capsys, 'store', 'rebuild', conf=conf)
    assert (code, out) == (1, '')
    assert err.startswith("multilb-manage: error: cannot ask Octavia: the "
                          "driver agent's socket(s) ")
    assert '%s/nope/get.sock' % tmp_path in err        # [driver_agent]
    assert 'where octavia-driver-agent runs' in err
    assert fx.all_stored_text(rt.state) == ''


def test_octavia_failing_for_one_lb_fails_the_run_not_the_others(
        fleet, capsys):
    conf, rt, octavia = fleet
    on_cluster(rt, 'alpha', octavia.commit(graph('lb-1')),
               octavia.commit(graph('lb-2')))
    octavia.get_errors.append(fx.OctaviaUnavailable('get timed out'))
    code, out, err = run(capsys, 'store', 'rebuild', '--format', 'json',
                         conf=conf)
    assert code == 1 and 'without a record: lb-1\n' in err
    data = json.loads(out)
    assert outcomes(data) == {'lb-1': ('not-asked', None),
                              'lb-2': ('recovered', 'alpha')}
    assert data['loadbalancers'][0]['detail'] == (
        'Octavia could not be asked: get timed out')


# -- reservations (multilb.rebuild over a caddy cluster: no I/O) ------------

POOL = """
[vip_pool:public]
network_id = net-pool
cidr = 203.0.113.0/29
quarantine = 600
"""


def test_vip_and_port_reservations_are_rebuilt_or_left_to_their_holder(
        tmp_path, capsys):
    conf = fx.write_conf(tmp_path, {'alpha': {
        'backend': 'caddy', 'endpoints': 'http://192.0.2.250:2019',
        'vip_pools': 'public'}}, extra=POOL,
        options={'vip_pools': 'public'})
    rt = runtime_of(conf)
    cluster, pools = rt.clusters.clusters['alpha'], rt.pools.pools
    writer = rebuild.Rebuilder(rt.state)
    lb = graph(LB1, listeners=1)
    lb.update(vip_address='203.0.113.2', vip_port_id='port-9')
    result = writer.write(rebuild.plan(cluster, lb, pools))
    assert (result['outcome'], result['not_recovered']) == ('recovered', [])
    shown = run_json(capsys, conf, 'lb', 'show', LB1)
    assert shown['vip'] == {'address': '203.0.113.2', 'pool': 'public',
                            'quarantine': 600.0}
    assert shown['bound'] == ['bind/alpha/203.0.113.2/80']
    [row] = run_json(capsys, conf, 'vip-pool', 'list')
    assert row['allocated'] == 1
    assert rt.vips.allocate(pools['public'], LB1, 'proj-a') == {
        'address': '203.0.113.2', 'port_id': 'port-9'}

    # a second LB Octavia shows on the same VIP:port (created while the
    # store was lost): the holder keeps them, the report says so
    other = graph('lb-2', listeners=1)
    other.update(vip_address='203.0.113.2', vip_port_id='port-8')
    other['listeners'][0]['listener_id'] = 'lb-2-l0'
    result = writer.write(rebuild.plan(cluster, other, pools))
    assert result['outcome'] == 'recovered'
    assert result['not_recovered'] == [
        'reservation bind/alpha/203.0.113.2/80: held by another load '
        'balancer (left to it; not reserved)',
        'VIP 203.0.113.2 of pool public: held by another load balancer or '
        'in quarantine (left to it; not reserved)']
    record = rt.state.get_lb('lb-2')
    assert (record['binds'], record.get('vip')) == ({}, None)
    assert rt.vips.holder('public', '203.0.113.2')['lb'] == LB1


def test_a_large_lb_is_recovered_with_its_whole_index(fleet):
    _conf, rt, _octavia = fleet
    lb = fx.lb_graph()
    lb['pools'][0]['members'] = [
        dict(lb['pools'][0]['members'][0], member_id='m-%03d' % i)
        for i in range(200)]
    result = rebuild.Rebuilder(rt.state).write(
        rebuild.plan(rt.clusters.clusters['alpha'], lb))
    assert result['outcome'] == 'recovered'
    assert rt.state.lookup('m-199') == (fx.LB, 'member')
    assert len(rt.state.get_lb(fx.LB)['pools'][fx.POOL_WEB]) == 200
    assert rebuild.Rebuilder(rt.state).write(rebuild.plan(
        rt.clusters.clusters['beta'], lb))['outcome'] == 'kept'
