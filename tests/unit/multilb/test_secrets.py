"""Credentials in a cluster's endpoints never leave the process.

A caddy cluster whose endpoints carry user info and a token
(``http://user:pw@127.0.0.1:PORT?token=...``) runs against a real local
HTTP server that plays a Caddy node (it insists on the credentials, and
when told to fail it echoes the request, token and Authorization header
included) and a port where nothing listens. The worker applies, probes,
fails, opens its breaker and polls health and statistics; then the logs
(every logger, DEBUG included), every key and value of the state store
and every ``multilb-manage`` output (text and JSON) are searched for the
password, the token, the user name and the user info: none may appear.
"""

import base64
import http.server
import json
import logging
import threading
import traceback
import urllib.parse

import pytest
from octavia_lib.api.drivers import data_models as dm

from backends import transport
from multilb.cmd import manage
from multilb import driver as driver_mod
from multilb import monitor as monitor_mod
from multilb import worker as worker_mod
from tests.unit import fixtures as fx
from tests.unit.multilb.cmd import common
from tests.unit.backends.test_transport import free_port

USER, PASSWORD, TOKEN = 'opsUser7', 'Pa55:w0rd-Zq', 'T0k3n-Xy9'
USERINFO = '%s:%s' % (USER, urllib.parse.quote(PASSWORD, safe=''))
BASIC = base64.b64encode(('%s:%s' % (USER, PASSWORD)).encode()).decode()
FORBIDDEN = (PASSWORD, urllib.parse.quote(PASSWORD, safe=''), TOKEN, USER,
             USERINFO, BASIC)


class FakeCaddy(http.server.ThreadingHTTPServer):
    """Just enough of a Caddy node's admin API; ``failing`` makes it
    answer 500 with an echo of the whole request."""

    daemon_threads = True

    def __init__(self):
        super().__init__(('127.0.0.1', 0), _Admin)
        self.failing = False
        self.servers = {}
        self.seen = []      # (Authorization, query) of every request
        self.thread = threading.Thread(target=self.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server_address[1]

    def stop(self):
        self.shutdown()
        self.server_close()


class _Admin(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def _serve(self):
        node = self.server
        length = int(self.headers.get('Content-Length') or 0)
        sent = json.loads(self.rfile.read(length) or 'null')
        path, _sep, query = self.path.partition('?')
        auth = self.headers.get('Authorization', '')
        node.seen.append((auth, query))
        if auth != 'Basic ' + BASIC or query != 'token=' + TOKEN:
            return self._answer(401, {'error': 'who are you?'})
        if node.failing:
            return self._answer(500, {'error': 'cannot serve %s %s for %s' % (
                self.command, self.path, auth)})
        servers = '/config/apps/http/servers'
        if path == '/metrics':
            return self._answer(200, 'caddy_reverse_proxy_upstreams_healthy'
                                '{upstream="192.0.2.10:8080"} 1\n')
        if path == '/config/admin':
            return self._answer(200, {})
        if path == servers:
            if self.command == 'PUT':
                return self._answer(409, {'error': 'key already exists'})
            if self.command == 'PATCH':         # batched writes (batch.py)
                node.servers = dict(sent)
                return self._answer(200, None)
            return self._answer(200, node.servers)
        if path.startswith(servers + '/') and self.command == 'POST':
            node.servers[path.rpartition('/')[2]] = sent
            return self._answer(200, None)
        if path.startswith(servers + '/') and self.command == 'DELETE':
            node.servers.pop(path.rpartition('/')[2], None)
            return self._answer(200, None)
        if path == '/config/apps/tls':
            return self._answer(200, None)
        return self._answer(200, None)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

    def _answer(self, status, body):
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def node():
    server = FakeCaddy()
    yield server
    server.stop()


def endpoint(port):
    return 'http://%s@127.0.0.1:%d?token=%s' % (USERINFO, port, TOKEN)


def run_manage(capsys, conf_path, *argv, code=0):
    got = manage.main(['--config-file', str(conf_path), *argv])
    out, err = capsys.readouterr()
    assert got == code, err
    return out + err


def test_endpoint_credentials_reach_no_log_record_and_no_output(
        tmp_path, monkeypatch, settings, node, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    dead = free_port()
    options = {'backend': 'caddy', 'listen_address': '127.0.0.1',
               'connect_timeout': 1, 'read_timeout': 2, 'probe_timeout': 1,
               'breaker_fail_max': 3}
    conf_path = fx.write_conf(tmp_path, {
        'alpha': dict(options, endpoints='%s, %s' % (
            endpoint(node.port), endpoint(dead))),
        # a configuration error quotes the endpoint it refuses
        'broken': dict(options, endpoints='ftp://%s@10.0.0.1:2019?token=%s'
                       % (USERINFO, TOKEN)),
        'broken-unix': dict(options, endpoints='unix:///run/a.sock?token=%s'
                            % TOKEN),
        'broken-unix-user': dict(options, endpoints='unix://%s@/run/a.sock'
                                 % USERINFO)})
    rt = fx.use_runtime(monkeypatch, fx.runtime.Runtime(
        fx.load_conf(conf_path)))
    assert {'broken', 'broken-unix', 'broken-unix-user'} <= set(
        rt.clusters.errors)
    state, octavia = rt.state, fx.FakeOctavia()
    cluster = rt.clusters.clusters['alpha']
    worker = worker_mod.ClusterWorker(cluster, state, octavia, settings)
    # ClusterWorker.start() without its threads: every step is called here
    worker.breaker = transport.ClusterBreaker(
        'alpha', fail_max=cluster.breaker_fail_max, reset_timeout=60,
        store=state.breaker_record('alpha'),
        on_change=worker._breaker_changed)
    worker.backend = cluster.backend_class(cluster)
    worker.backend.breaker = worker.breaker
    worker.backend.start()
    worker.monitor = monitor_mod.ClusterMonitor(
        'alpha', worker.backend, state, octavia, settings)
    driver = driver_mod.MultiLBProviderDriver()
    try:
        # One node answers, one does not: applied, with a WARNING, and
        # urllib3 retrying the dead one (its WARNINGs name the path+query).
        driver.loadbalancer_create(fx.create_lb())
        octavia.commit(fx.full_lb())
        worker.process(fx.LB, state.pending('alpha')[fx.LB])
        assert fx.reported(_Env(octavia))[fx.LB] == fx.ACTIVE
        assert node.servers
        worker.probe(force=True)
        worker.monitor.poll_health()
        worker.monitor.poll_statistics()

        # The answering node fails too, echoing the request: no node
        # answers, the breaker opens, the probe records why.
        node.failing = True
        driver.member_update(fx.member(fx.M1, fx.POOL_WEB, '192.0.2.10'),
                             dm.Member(member_id=fx.M1, weight=5))
        octavia.lbs[fx.LB]['pools'][0]['members'][0]['weight'] = 5
        worker.process(fx.LB, state.pending('alpha')[fx.LB])
        worker.probe(force=True)
        worker.monitor.poll_health()
        assert worker.breaker.state == transport.BREAKER_OPEN
    finally:
        worker.backend.stop()

    # cluster list exits 3: alpha is unreachable, the others broken
    attention = manage.EXIT_ATTENTION
    common.accept_sample_lb_id(monkeypatch)     # lb show fx.LB
    outputs = [run_manage(capsys, conf_path, 'cluster', 'list',
                          code=attention),
               run_manage(capsys, conf_path, 'cluster', 'list', '-f',
                          'json', code=attention),
               run_manage(capsys, conf_path, 'cluster', 'show', 'alpha'),
               run_manage(capsys, conf_path, 'cluster', 'show', 'alpha',
                          '-f', 'json'),
               run_manage(capsys, conf_path, 'cluster', 'show', 'broken',
                          '-f', 'json'),
               run_manage(capsys, conf_path, 'cluster', 'show', 'broken-unix',
                          '-f', 'json'),
               run_manage(capsys, conf_path, 'cluster', 'show',
                          'broken-unix-user'),
               run_manage(capsys, conf_path, 'lb', 'show', fx.LB),
               run_manage(capsys, conf_path, '--debug', 'cluster', 'list',
                          code=attention)]
    stored = fx.all_stored_text(state)

    # the paths above ran: the credentials were sent, failures recorded
    assert ('Basic ' + BASIC, 'token=' + TOKEN) in node.seen
    health = state.cluster_runtime()['alpha']['health']
    assert 'http://127.0.0.1:%d' % dead in stored
    assert not health['reachable'] and 'cannot serve' in stored
    assert 'missed by 1 of 2' in caplog.text
    assert 'cannot serve GET /config/apps/tls?token=***' in caplog.text
    assert "endpoints: 'ftp://***@10.0.0.1:2019?token=***'" in outputs[4]
    assert "'unix:///run/a.sock?token=***' is not unix://" in outputs[5]
    assert "'unix://***@/run/a.sock' is not unix://" in outputs[6]
    for where, text in [('logs', caplog.text), ('state store', stored)] + [
            ('multilb-manage #%d' % i, out) for i, out in enumerate(outputs)]:
        for secret in FORBIDDEN:
            assert secret not in text, (secret, where)


class _Env:
    def __init__(self, octavia):
        self.octavia = octavia


def test_urllib3_retry_warnings_carry_no_credentials(node, caplog):
    """urllib3 logs a retried request's path and query (at WARNING)."""
    caplog.set_level(logging.DEBUG)
    node.failing = True
    dead = transport.Transport(endpoint(free_port()), 1, 2, retries=2,
                               backoff_factor=0.01)
    with pytest.raises(transport.exceptions.BackendUnavailable) as err:
        dead.request('GET', '/config/admin')
    alive = transport.Transport(endpoint(node.port), 1, 2, retries=2,
                                backoff_factor=0.01)
    with pytest.raises(transport.exceptions.BackendUnavailable) as echoed:
        alive.request('GET', '/config/admin')
    retried = [r for r in caplog.records if 'Retrying' in r.getMessage()]
    assert len(retried) == 2
    assert '/config/admin?token=***' in retried[0].getMessage()
    assert 'cannot serve GET /config/admin?token=*** for Basic ***' in str(
        echoed.value)
    texts = [caplog.text, str(err.value), str(echoed.value),
             ''.join(traceback.format_exception(err.value)),
             repr(err.value.__cause__), repr(err.value.__context__)]
    for text in texts:
        for secret in FORBIDDEN:
            assert secret not in text, (secret, text)
