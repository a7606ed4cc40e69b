"""The member lab (tools/localstack/netns.py): member servers in a network
namespace of their own, reached from the root namespace through a veth
pair, never bound on loopback; its /24 never clashes with a route or
another lab; stop() leaves nothing behind.

Needs root (the labs are real namespaces); a clash is simulated with
routes added in a scratch namespace, never in the root one.
"""

import concurrent.futures
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request

import pytest

from backends import transport as transport_mod
from backends.caddy import client as caddy_client
from tools.localstack import caddy as caddy_mod
from tools.localstack import netns
from tools.localstack import ports
from tools.localstack.members import MemberServer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url):
    with DIRECT.open(url, timeout=5) as response:
        return response.status, response.read().decode()


def refused(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def leftovers(lab_record):
    """What of a stopped lab the root namespace still shows."""
    subnet = ipaddress.ip_network(lab_record['subnet'])
    return {'namespace': lab_record['namespace'] in netns.namespaces(),
            'veth': lab_record['host_if'] in netns.links(),
            'routes': netns.clashes(subnet, netns.routes())}


NOTHING = {'namespace': False, 'veth': False, 'routes': []}


@pytest.fixture(scope='module')
def lab():
    started = netns.MemberLab()
    try:
        started.start()
    except netns.LabError as exc:
        pytest.fail('no member lab: %s' % exc, pytrace=False)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def scratch():
    """A scratch namespace (not a lab) with ``lo`` up, for routes that
    must not touch the root namespace."""
    name = 'mlbtest-%d' % os.getpid()
    subprocess.run(['ip', 'netns', 'add', name], check=True)
    try:
        subprocess.run(['ip', '-n', name, 'link', 'set', 'lo', 'up'],
                       check=True)
        yield name
    finally:
        subprocess.run(['ip', 'netns', 'delete', name], check=True)


def test_lab_layout(lab):
    subnet = lab.subnet
    assert subnet.prefixlen == 24 and subnet.subnet_of(netns.LAB_RANGE)
    assert not subnet.overlaps(ipaddress.ip_network('192.0.2.0/24'))
    assert lab.namespace in netns.namespaces()
    assert lab.host_if in netns.links()
    assert netns.lab_subnets()[lab.namespace] == subnet
    # the root namespace routes the /24 to the host end, and only there
    hits = netns.clashes(subnet, netns.routes())
    assert hits and all(lab.host_if in line.split() for line in hits), hits
    assert lab.address(0) == str(subnet.network_address + 10)
    assert len({lab.next_address() for _ in range(3)}) == 3


def test_members_answer_on_their_own_lab_addresses_not_on_loopback(lab):
    port = ports.free_port()        # free on 127.0.0.1 right now
    first = MemberServer('a', port=port, lab=lab)
    second = MemberServer('b', port=port, lab=lab)
    fixed = MemberServer('c', host=str(lab.subnet.network_address + 37),
                         port=8080, lab=lab)
    with first, second, fixed:
        # every member its own address of the lab, all on the same port
        assert len({first.address, second.address, fixed.address}) == 3
        for member in (first, second, fixed):
            address = ipaddress.ip_address(member.address)
            assert address in lab.subnet and not address.is_loopback
        assert fixed.dial == '%s:8080' % (lab.subnet.network_address + 37)
        assert get(first.url + '/x') == (200, 'member=a\n')
        assert get(second.url + '/') == (200, 'member=b\n')
        assert get(fixed.url + '/health') == (200, 'ok\n')
        # nothing of them is on this namespace's loopback
        assert refused('127.0.0.1', port)
        assert first.hits == 1 and second.hits == 1
        # another process of the root namespace reaches them too
        script = ('import urllib.request as u, sys; o = u.build_opener('
                  'u.ProxyHandler({})); print(o.open(sys.argv[1], '
                  'timeout=5).read().decode(), end="")')
        done = subprocess.run([sys.executable, '-c', script, fixed.url],
                              capture_output=True, text=True, timeout=60)
        assert done.stdout == 'member=c\n', done.stderr
        if shutil.which('curl'):
            done = subprocess.run(
                ['curl', '-sS', '--noproxy', '*', '-m', '5', fixed.url],
                capture_output=True, text=True, timeout=60)
            assert done.stdout == 'member=c\n', done.stderr
        # stop() refuses, start() serves again on the same address:port
        first.stop()
        assert refused(first.address, port)
        first.start()
        assert first.port == port
        assert get(first.url + '/')[1] == 'member=a\n'


def test_caddy_in_the_root_namespace_proxies_to_a_lab_member(lab,
                                                             tmp_path):
    try:
        caddy_mod.find_caddy()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    member = MemberServer('behind-caddy', lab=lab)
    node = caddy_mod.CaddyCluster(str(tmp_path), 'labproxy', nodes=1)
    with member, node:
        client = caddy_client.CaddyClient(transport_mod.Transport(
            node.endpoints[0], connect_timeout=1, read_timeout=10))
        try:
            port = ports.free_port()
            client.ensure_http_app()
            client.put_server('lab', {
                'listen': ['127.0.0.1:%d' % port],
                'routes': [{'handle': [{
                    'handler': 'reverse_proxy',
                    'upstreams': [{'dial': member.dial}]}]}]})
            assert get('http://127.0.0.1:%d/via' % port) == (
                200, 'member=behind-caddy\n')
            assert member.paths == ['/via']
        finally:
            client.transport.close()


def test_a_clashing_subnet_is_refused(lab, scratch):
    # the running lab's /24: its namespace, and the host end's route
    with pytest.raises(netns.LabError, match='in use by the lab in '
                       'namespace %s' % lab.namespace):
        netns.MemberLab(subnet=str(lab.subnet)).start()
    with pytest.raises(netns.LabError, match='clashes with route') as err:
        netns.check_subnet(lab.subnet, netns.routes(), labs={})
    assert lab.host_if in str(err.value)
    # not a /24 of 198.18.0.0/15 (this host's own TEST-NET, say)
    with pytest.raises(netns.LabError, match='inside 198.18.0.0/15'):
        netns.MemberLab(subnet='192.0.2.0/24').start()

    # routes of a scratch namespace, checked from inside it
    for family, route in (('-4', '198.18.77.0/25'),
                          ('-6', '::ffff:198.18.90.0/120'),
                          ('-4', '198.18.64.0/18')):
        subprocess.run(['ip', '-n', scratch, family, 'route', 'add', route,
                        'dev', 'lo'], check=True)
    before = netns.namespaces()
    for requested, route in (('198.18.77.0/24', '198.18.77.0/25'),
                             ('198.18.90.0/24', '::ffff:198.18.90.0/120'),
                             ('198.18.100.0/24', '198.18.64.0/18')):
        with pytest.raises(netns.LabError) as err:
            netns.run_in_netns(
                scratch, netns.MemberLab(subnet=requested).start)
        message = str(err.value)
        assert 'member lab subnet %s clashes with route(s)' % requested \
            in message
        assert route in message
    assert netns.namespaces() == before     # nothing was created
    # a /24 picked there is the first one no route covers and no lab
    # (of any namespace: the names are shared) uses

    def first_free(*covered):
        used = list(netns.lab_subnets().values()) + [
            ipaddress.ip_network(net) for net in covered]
        return next(net for net in netns.LAB_RANGE.subnets(new_prefix=24)
                    if not any(net.overlaps(u) for u in used))

    assert netns.run_in_netns(scratch, netns.choose_subnet) == first_free(
        '198.18.77.0/25', '198.18.90.0/24', '198.18.64.0/18')
    subprocess.run(['ip', '-n', scratch, 'route', 'add', '198.18.0.0/17',
                    'dev', 'lo'], check=True)
    picked = netns.run_in_netns(scratch, netns.choose_subnet)
    assert picked == first_free('198.18.0.0/17')
    assert picked.subnet_of(ipaddress.ip_network('198.18.128.0/17'))
    subprocess.run(['ip', '-n', scratch, 'route', 'add', '198.18.0.0/15',
                    'dev', 'lo'], check=True)
    with pytest.raises(netns.LabError, match='no /24 of 198.18.0.0/15 is '
                       'free'):
        netns.run_in_netns(scratch, netns.choose_subnet)


def test_labs_started_at_once_get_different_subnets():
    labs = [netns.MemberLab() for _ in range(3)]
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda lab: lab.start(), labs))
        assert len({lab.subnet for lab in labs}) == 3
        assert len({lab.namespace for lab in labs}) == 3
    finally:
        for lab in labs:
            lab.stop()
    for lab in labs:
        assert leftovers(lab.describe()) == NOTHING


def test_stop_leaves_no_namespace_veth_or_route():
    lab = netns.MemberLab().start()
    record = lab.describe()
    member = MemberServer('m', lab=lab).start()
    try:
        assert get(member.url)[1] == 'member=m\n'
        assert leftovers(record) != NOTHING
        # a member socket still open keeps the namespace itself alive,
        # but nothing of the lab is left in the root namespace
        lab.stop()
        assert leftovers(record) == NOTHING
        assert record['host_if'] not in subprocess.run(
            ['ip', 'route', 'show', 'table', 'all'], capture_output=True,
            text=True, check=True).stdout
        lab.stop()      # idempotent
    finally:
        member.stop()
        lab.stop()


def test_a_lab_is_removed_when_its_python_exits():
    script = ('import json; from tools.localstack import netns; '
              'lab = netns.MemberLab().start(); '
              'print(json.dumps(lab.describe()))')
    done = subprocess.run([sys.executable, '-c', script], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert leftovers(json.loads(done.stdout)) == NOTHING


def test_preflight_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(netns, '_capabilities', lambda: 0)
    with pytest.raises(netns.LabError, match='CAP_NET_ADMIN and '
                       'CAP_SYS_ADMIN; run as root'):
        netns.preflight()
    monkeypatch.setattr(netns, 'ip_binary', lambda: None)
    with pytest.raises(netns.LabError, match='iproute2.*install-system-'
                       'deps.sh'):
        netns.MemberLab().start()
