"""Listener traffic counted by the caddy backend on two real Caddy nodes
(backend level): every config change restarts Caddy's counters, yet each
request is counted once, including those served just before a change."""

import copy
import urllib.error
import urllib.request

import pytest

from tests.functional import caddy_lab
from tools.localstack import ports

LB = '0c0ffee0-0000-4000-8000-0000000000a1'
LISTENER = LB + '-listener'


def graph(port, members, weight=1):
    return caddy_lab.backend_graph(LB, port, members.members,
                                   weights=[weight] * len(members))


@pytest.fixture(scope='module')
def lab(tmp_path_factory, member_lab):
    workdir = tmp_path_factory.mktemp('caddytraffic', numbered=True)
    with caddy_lab.backend_lab(workdir, 'traffic', prefix='tr',
                               lab=member_lab) as found:
        yield found


def get(port, count):
    sizes = 0
    for _ in range(count):
        with urllib.request.urlopen('http://127.0.0.1:%d/' % port,
                                    timeout=5) as response:
            sizes += len(response.read())
    return sizes


def counted(backend):
    return backend.collect_statistics().get(LISTENER)


def test_each_request_is_counted_once_across_config_changes(lab,
                                                            member_lab):
    backend, nodes, members = lab
    port = ports.free_port()
    backend.apply_loadbalancer(graph(port, members))
    total = out = 0

    out += get(port, 5)
    # A change reloads both nodes: their counters restart from zero.
    backend.apply_loadbalancer(graph(port, members, weight=2))
    out += get(port, 3)
    first = counted(backend)
    total += first.total_connections
    assert total == 8
    assert first.bytes_out == out and first.bytes_in > 0

    # Re-applying the same config reloads nothing: nothing counted twice.
    backend.apply_loadbalancer(graph(port, members, weight=2))
    again = counted(backend)
    assert again is None or again.total_connections == 0

    # A node restarted (not empty) loses its counters: still no double
    # count, and later requests are counted.
    get(port, 4)
    total += counted(backend).total_connections
    nodes.nodes[1].restart(empty=False)
    get(port, 6)
    total += counted(backend).total_connections
    assert total == 8 + 4 + 6

    # A request that fails upstream is an error: the pool's members stop
    # (moved to a lab address where nothing listens: refused).
    stopped = copy.deepcopy(graph(port, members, weight=2))
    nobody = member_lab.next_address()
    stopped['pools'][0]['members'][0]['address'] = nobody
    stopped['pools'][0]['members'][1]['address'] = nobody
    backend.apply_loadbalancer(stopped)
    with pytest.raises(urllib.error.HTTPError) as err:
        get(port, 1)
    assert err.value.code == 502
    after = counted(backend)
    assert after.request_errors == 1 and after.total_connections == 1
    backend.delete_loadbalancer(LB)
