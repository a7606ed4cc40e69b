"""multilb-manage against the real fleet (etcd store, Octavia API + agent).

The operator drains the cluster that holds a load balancer: new load
balancers go elsewhere at once, the drained cluster's load balancer stays
fully updatable, and after undrain the cluster takes new ones again.
"""

import getpass
import json
import os
import socket
import subprocess
import sys
import uuid

from tests.functional import fleet as fleet_mod
from tests.functional.helpers import (
    ACTIVE, MANAGE_ATTENTION, check_manage_exit, gone, listeners_of, make_lb,
    wait_lb)

MAX_TRIES = 6


def command():
    """The installed console script (or the module)."""
    script = os.path.join(os.path.dirname(sys.executable), 'multilb-manage')
    return [script] if os.path.exists(script) else [
        sys.executable, '-m', 'multilb.cmd.manage']


def manage(fleet, *argv, conf=None):
    """Run multilb-manage as an operator, on the stack's octavia.conf."""
    conf = conf or fleet.octavia.conf_path
    return subprocess.run(command() + ['--config-file', str(conf)] +
                          list(argv), capture_output=True, text=True,
                          timeout=60)


def manage_json(fleet, *argv, code=0):
    done = check_manage_exit(manage(fleet, *argv, '--format', 'json'), code)
    return json.loads(done.stdout)


# who the commands record as having made a change
BY = 'multilb-manage (%s@%s)' % (getpass.getuser(), socket.gethostname())


def clusters(fleet):
    return {row['name']: row for row in manage_json(fleet, 'cluster',
                                                    'list')}


def ids_on(fleet, name):
    shown = manage_json(fleet, 'cluster', 'show', name)
    return {lb['id'] for lb in shown['loadbalancers']}


def cluster_of(fleet, lb_id):
    return fleet.appliance(lb_id)[0]


def test_drain_moves_new_placements_and_keeps_existing_lbs_updatable(
        fleet, conn):
    lbc = conn.load_balancer
    created = []
    first = make_lb(conn, 'manage-0')
    created.append(first.id)
    drained = cluster_of(fleet, first.id)
    [other] = set(fleet.clusters) - {drained}
    try:
        row = manage_json(fleet, 'cluster', 'drain', drained, '--reason',
                          'functional test')
        assert (row['name'], row['state'], row['changed']) == (
            drained, 'draining', True)
        assert row['admin'] == {'draining': True, 'reason': 'functional test',
                                'changed_by': BY,
                                'changed_at': row['admin']['changed_at']}
        # a draining cluster needs no attention: cluster list exits 0
        before = clusters(fleet)
        assert before[drained]['state'] == 'draining'
        assert before[drained]['attention'] == []

        # New load balancers never land on the drained cluster.
        for i in range(4):
            lb = make_lb(conn, 'manage-drained-%d' % i)
            created.append(lb.id)
            assert cluster_of(fleet, lb.id) == other

        # The load balancer already there stays fully updatable.
        listener = lbc.create_listener(name='while-draining', protocol='HTTP',
                                       protocol_port=8081,
                                       load_balancer_id=first.id)
        assert wait_lb(conn, first.id).provisioning_status == ACTIVE
        assert [li.provisioning_status for li in listeners_of(
            conn, first.id)] == [ACTIVE]
        cluster, held = fleet.appliance(first.id)
        assert cluster == drained
        assert [li['listener_id'] for li in held['listeners']] == [
            listener.id]

        # (Counts only go down behind our back: earlier tests' deletes.)
        after = clusters(fleet)
        assert after[drained]['state'] == 'draining'
        assert after[drained]['admin']['reason'] == 'functional test'
        assert after[drained]['placed'] <= before[drained]['placed']
        assert after[other]['state'] == 'active'
        on_drained = ids_on(fleet, drained)
        assert first.id in on_drained
        assert not on_drained & set(created[1:])
        assert len(on_drained) == after[drained]['placed']
        assert set(created[1:]) <= ids_on(fleet, other)

        lb = manage_json(fleet, 'lb', 'show', first.id)
        assert (lb['id'], lb['cluster'], lb['cluster_state']) == (
            first.id, drained, 'draining')
        assert lb['project_id'] == 'proj-e2e'
        assert lb['reservation'] == {
            'cluster': drained, 'placed': after[drained]['placed'],
            'max_loadbalancers': fleet.clusters[drained]}

        text = manage(fleet, 'cluster', 'list')
        assert text.returncode == 0
        assert 'draining (functional test)' in text.stdout
    finally:
        undrained = manage(fleet, 'cluster', 'undrain', drained)
    assert undrained.returncode == 0, undrained.stderr
    assert undrained.stdout.startswith('cluster %s is back in service'
                                       % drained)
    assert clusters(fleet)[drained]['state'] == 'active'

    # Placement is least loaded first: the undrained cluster, now the
    # emptier one, takes one of the next few load balancers.
    landed = []
    for i in range(MAX_TRIES):
        lb = make_lb(conn, 'manage-undrained-%d' % i)
        created.append(lb.id)
        landed.append(cluster_of(fleet, lb.id))
        if landed[-1] == drained:
            break
    assert drained in landed, landed

    for lb_id in created:
        lbc.delete_load_balancer(lb_id, cascade=True)
    for lb_id in created:
        fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb_id),
                           what='load balancer %s deleted' % lb_id)


def test_unknown_names_and_unreachable_store(fleet, tmp_path):
    done = manage(fleet, 'cluster', 'drain', 'nope')
    assert done.returncode == 2
    assert done.stderr == (
        'multilb-manage: error: no cluster nope in [multilb] '
        'enabled_clusters; configured clusters: %s\n'
        % ', '.join(sorted(fleet.clusters)))
    done = manage(fleet, 'lb', 'show', 'no-such-lb')
    assert (done.returncode, done.stdout) == (2, '')
    assert ("multilb-manage lb show: error: argument LOADBALANCER_ID: "
            "'no-such-lb' is not a load balancer id: expected the UUID "
            "Octavia gave it") in done.stderr
    unknown = str(uuid.uuid4())
    done = manage(fleet, 'lb', 'show', unknown)
    assert done.returncode == 2
    assert done.stderr == ('multilb-manage: error: no load balancer %s in '
                           'the multilb state store\n' % unknown)

    # The same configuration with etcd gone (a port nobody listens on).
    with open(fleet.octavia.conf_path) as f:
        text = f.read()
    url = fleet.etcd.store_url + '?prefix=/multilb/'
    assert url in text
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        dead = 'etcd3+http://127.0.0.1:%d?timeout=2' % sock.getsockname()[1]
    conf = tmp_path / 'octavia.conf'
    conf.write_text(text.replace(url, dead))
    done = manage(fleet, 'cluster', 'list', conf=conf)
    assert done.returncode == 1
    assert done.stderr.startswith(
        'multilb-manage: error: cannot reach the multilb state store (%s): '
        % dead)
    assert 'Traceback' not in done.stderr


def test_endpoint_credentials_are_never_shown(fleet, tmp_path):
    """The operator's configuration gains two caddy clusters whose
    endpoints carry credentials: one that loads (its nodes do not answer:
    nobody listens), one that is refused. No output of multilb-manage,
    text, JSON or --debug logs, shows the password, token or user."""
    user, password, token = 'opsUser7', 'Pa55w0rd-Zq', 'T0k3n-Xy9'
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        dead = sock.getsockname()[1]
    with open(fleet.octavia.conf_path) as f:
        text = f.read()
    enabled = 'enabled_clusters = %s' % ', '.join(fleet.clusters)
    assert enabled in text
    conf = tmp_path / 'octavia.conf'
    conf.write_text(text.replace(
        enabled, enabled + ', leaky, refused') + (
        '[cluster:leaky]\nbackend = caddy\n'
        'endpoints = http://%s:%s@127.0.0.1:%d?token=%s\n'
        '[cluster:refused]\nbackend = caddy\n'
        'endpoints = ftp://%s:%s@10.0.0.1:2019?token=%s\n'
        % (user, password, dead, token, user, password, token)))
    runs = [('cluster', 'list'), ('cluster', 'list', '--format', 'json'),
            ('cluster', 'show', 'leaky'),
            ('cluster', 'show', 'refused', '--format', 'json'),
            ('--debug', 'cluster', 'list')]
    for argv in runs:
        done = manage(fleet, *argv, conf=conf)
        # cluster list: the broken section and the cluster no agent of
        # this fleet can drive (its configuration is this file's only:
        # no-agent) need attention; the list is printed all the same
        expected = MANAGE_ATTENTION if 'list' in argv else 0
        assert done.returncode == expected, (argv, done.stderr)
        assert done.stdout, argv
        if 'list' in argv:
            assert 'need attention: ' in done.stderr
            assert 'leaky (no-agent, never-probed)' in done.stderr
            assert 'refused (config-error)' in done.stderr
        for secret in (password, token, user):
            assert secret not in done.stdout + done.stderr, (argv, secret)
    row = json.loads(manage(fleet, 'cluster', 'show', 'refused',
                            '--format', 'json', conf=conf).stdout)
    assert row['state'] == 'config-error'
    assert "'ftp://***@10.0.0.1:2019?token=***'" in row['error']


def test_version_and_global_options_after_the_command(fleet):
    done = subprocess.run(command() + ['--version'], capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, '')
    assert done.stdout.startswith('multilb-manage ') and \
        len(done.stdout.split()) == 2
    # the options where an operator may type them: after the command
    [name] = sorted(fleet.clusters)[:1]
    done = subprocess.run(
        command() + ['cluster', 'show', name, '--format', 'json',
                     '--config-file', fleet.octavia.conf_path],
        capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, '')
    assert json.loads(done.stdout)['name'] == name
