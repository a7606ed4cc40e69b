"""Traffic is balanced as the pool's algorithm and persistence say, on a
real Caddy node in front of real members (backend level, one node so that
the counts are exact: two nodes would each keep their own rotation)."""

import urllib.request

import pytest

from tests.functional import caddy_lab
from tools.localstack import ports

LB = '0c0ffee0-0000-4000-8000-0000000000a2'


@pytest.fixture(scope='module')
def lab(tmp_path_factory, member_lab):
    workdir = tmp_path_factory.mktemp('caddybalance', numbered=True)
    with caddy_lab.backend_lab(workdir, 'balance', nodes=1,
                               prefix='b', lab=member_lab) as found:
        yield found


def graph(port, members, algorithm='ROUND_ROBIN', weights=(1, 1),
          persistence=None):
    return caddy_lab.backend_graph(
        LB, port, members.members, weights=list(weights),
        lb_algorithm=algorithm, session_persistence=persistence)


def hits(port, members, count, cookie=None):
    """``{member name: requests answered}`` and the last Set-Cookie."""
    members.reset_counts()
    set_cookie = None
    for _ in range(count):
        request = urllib.request.Request('http://127.0.0.1:%d/' % port)
        if cookie:
            request.add_header('Cookie', cookie)
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            set_cookie = response.headers.get('Set-Cookie') or set_cookie
    return {m.name: m.hits for m in members.members}, set_cookie


@pytest.fixture
def port(lab):
    backend, _nodes, _members = lab
    yield ports.free_port()
    backend.delete_loadbalancer(LB)


def test_round_robin_alternates(lab, port):
    backend, _nodes, members = lab
    backend.apply_loadbalancer(graph(port, members))
    found, _ = hits(port, members, 6)
    assert sorted(found.values()) == [3, 3]


def test_weights_split_traffic_in_proportion(lab, port):
    backend, _nodes, members = lab
    backend.apply_loadbalancer(graph(port, members, weights=(3, 1)))
    found, _ = hits(port, members, 8)
    first, second = (m.name for m in members.members)
    assert (found[first], found[second]) == (6, 2)


def test_source_ip_keeps_a_client_on_one_member(lab, port):
    backend, _nodes, members = lab
    backend.apply_loadbalancer(graph(port, members, algorithm='SOURCE_IP'))
    found, _ = hits(port, members, 6)
    assert sorted(found.values()) == [0, 6]


def test_http_cookie_persistence_sticks_to_the_cookie(lab, port):
    backend, _nodes, members = lab
    backend.apply_loadbalancer(graph(
        port, members, persistence={'type': 'HTTP_COOKIE'}))
    _found, cookie = hits(port, members, 1)
    assert cookie and cookie.startswith('SRV=')
    sticky, _ = hits(port, members, 6, cookie=cookie.split(';', 1)[0])
    assert sorted(sticky.values()) == [0, 6]
    # without the cookie the algorithm (round robin) applies again
    free, _ = hits(port, members, 6)
    assert sorted(free.values()) == [3, 3]
