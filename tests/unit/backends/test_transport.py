"""backends.transport against a tiny real HTTP(S) server on 127.0.0.1.

No mock of requests: a scripted ``http.server`` answers each path with a
list of canned responses (the last one repeats) and counts the hits, so
retries, timeouts and TLS are what urllib3 really does.
"""

import collections
import datetime
import http.server
import ipaddress
import json
import os
import socket
import socketserver
import ssl
import struct
import threading
import time

import pytest
import requests

from backends import exceptions
from backends import transport as transport_mod

Reply = collections.namedtuple('Reply', 'status body headers delay')


def reply(status=200, body=None, headers=None, delay=0.0):
    return Reply(status, body, headers or {}, delay)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def _serve(self):
        length = int(self.headers.get('Content-Length') or 0)
        sent = self.rfile.read(length) if length else b''
        srv = self.server
        with srv.lock:
            srv.hits[(self.command, self.path)] += 1
            srv.bodies.append(sent)
            script = srv.script.get(self.path) or [reply(404, 'no script')]
            answer = script.pop(0) if len(script) > 1 else script[0]
        if answer.status is None:     # close without a byte of an answer
            self.close_connection = True
            return
        if answer.status == 'reset':  # RST instead of an answer
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack('ii', 1, 0))
            self.close_connection = True
            return
        if answer.delay:
            srv.stopped.wait(answer.delay)
        body = answer.body
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            ctype = 'application/json'
        else:
            ctype = 'text/plain'
        data = (body or '').encode()
        self.send_response(answer.status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve  # noqa: N815

    def log_message(self, *args):
        pass


class ScriptedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls_context=None):
        super().__init__(('127.0.0.1', 0), _Handler)
        if tls_context is not None:
            self.socket = tls_context.wrap_socket(self.socket,
                                                  server_side=True)
        self.lock = threading.Lock()
        self.hits = collections.Counter()
        self.bodies = []
        self.script = {}
        self.stopped = threading.Event()
        self.scheme = 'https' if tls_context else 'http'
        self.thread = threading.Thread(target=self.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self):
        return '%s://127.0.0.1:%d' % (self.scheme, self.server_address[1])

    def on(self, path, *replies):
        self.script[path] = list(replies)

    def handle_error(self, request, client_address):
        pass  # clients that time out or fail the TLS handshake

    def stop(self):
        self.stopped.set()
        self.shutdown()
        self.server_close()


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.stop()


def make(srv_or_url, **kwargs):
    url = getattr(srv_or_url, 'url', srv_or_url)
    kwargs.setdefault('connect_timeout', 1)
    kwargs.setdefault('read_timeout', 5)
    kwargs.setdefault('backoff_factor', 0.01)
    return transport_mod.Transport(url, **kwargs)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# -- answers ---------------------------------------------------------------


def test_2xx_returns_status_and_parsed_body(server):
    server.on('/json', reply(200, {'a': 1}))
    server.on('/text', reply(201, 'hello'))
    server.on('/empty', reply(200))
    t = make(server)
    assert t.request('GET', '/json') == (200, {'a': 1})
    assert t.request('POST', 'text', json={'x': [1]}) == (201, 'hello')
    assert t.request('delete', '/empty') == (200, None)
    assert server.bodies[1] == b'{"x": [1]}'


def test_4xx_is_rejected_with_the_appliance_error_text(server):
    server.on('/bad', reply(400, {'error': 'unknown module: nope'}))
    server.on('/gone', reply(404, 'no such thing'))
    t = make(server)
    with pytest.raises(exceptions.BackendRejected) as info:
        t.request('PUT', '/bad', json={})
    err = info.value
    assert str(err) == ('%s PUT /bad: HTTP 400 Bad Request: unknown '
                        'module: nope' % server.url)
    assert (err.status, err.body, err.retry_after) == (
        400, {'error': 'unknown module: nope'}, None)
    with pytest.raises(exceptions.BackendRejected, match='no such thing'):
        t.request('GET', '/gone')
    assert server.hits[('PUT', '/bad')] == 1
    assert server.hits[('GET', '/gone')] == 1


def test_long_error_text_is_cut(server):
    server.on('/big', reply(422, 'x' * 5000))
    with pytest.raises(exceptions.BackendRejected) as info:
        make(server).request('GET', '/big')
    assert len(str(info.value)) < 600
    assert str(info.value).endswith('x...')


def test_5xx_is_unavailable(server):
    server.on('/boom', reply(500, {'error': 'internal'}))
    with pytest.raises(exceptions.BackendUnavailable) as info:
        make(server).request('PUT', '/boom', json={})
    assert info.value.status == 500
    assert 'HTTP 500 Internal Server Error: internal' in str(info.value)
    # 500 is not a retry status by default (it is rarely transient)
    assert server.hits[('PUT', '/boom')] == 1


def test_redirect_is_rejected_and_not_followed(server):
    target = server.url.replace('://', '://u:s3cret@') + '/new?t=s3cret'
    server.on('/old', reply(302, headers={'Location': target}))
    server.on('/new', reply(200, 'moved'))
    with pytest.raises(exceptions.BackendRejected) as info:
        make(server).request('GET', '/old')
    assert str(info.value).endswith(
        'unexpected redirect (HTTP 302) to %s/new' % server.url)
    assert server.hits[('GET', '/new')] == 0


# -- retries ---------------------------------------------------------------


def test_get_retries_503_until_it_succeeds(server):
    server.on('/flaky', reply(503), reply(503), reply(200, {'ok': True}))
    assert make(server, retries=2).request('GET', '/flaky') == (
        200, {'ok': True})
    assert server.hits[('GET', '/flaky')] == 3


def test_post_is_never_retried_on_503(server):
    server.on('/flaky', reply(503, 'busy'), reply(200))
    with pytest.raises(exceptions.BackendUnavailable) as info:
        make(server, retries=3).request('POST', '/flaky', json={})
    assert info.value.status == 503
    assert server.hits[('POST', '/flaky')] == 1


def test_exhausted_retries_raise_the_last_answer(server):
    server.on('/down', reply(503, {'error': 'overloaded'}))
    with pytest.raises(exceptions.BackendUnavailable, match='overloaded'):
        make(server, retries=2).request('DELETE', '/down')
    assert server.hits[('DELETE', '/down')] == 3


def test_retries_zero_means_one_attempt(server):
    server.on('/down', reply(503))
    with pytest.raises(exceptions.BackendUnavailable):
        make(server, retries=0).request('GET', '/down')
    assert server.hits[('GET', '/down')] == 1


def test_retry_after_is_honoured_but_capped(server):
    server.on('/later', reply(429, headers={'Retry-After': '30'}),
              reply(200, 'now'))
    t0 = time.monotonic()
    assert make(server, retry_after_max=0.3).request('GET', '/later') == (
        200, 'now')
    elapsed = time.monotonic() - t0
    assert 0.25 < elapsed < 2, elapsed
    assert server.hits[('GET', '/later')] == 2


def test_429_and_503_with_retry_after_are_unavailable(server):
    server.on('/429', reply(429, 'slow down', {'Retry-After': '7'}))
    server.on('/503', reply(503, 'maintenance', {'Retry-After': '9'}))
    server.on('/429-bare', reply(429, 'slow down'))
    t = make(server)
    for path, after in (('/429', 7.0), ('/503', 9.0), ('/429-bare', None)):
        with pytest.raises(exceptions.BackendUnavailable) as info:
            t.request('POST', path, json={})   # POST: no retry, no wait
        assert info.value.retry_after == after
        assert info.value.status == int(path[1:4])
        if after is not None:
            assert 'retry after %gs' % after in str(info.value)
    assert server.hits[('POST', '/429')] == 1


def test_unparsable_retry_after_does_not_break_the_call(server):
    server.on('/odd', reply(503, headers={'Retry-After': 'soon-ish'}),
              reply(200, 'ok'))
    assert make(server).request('GET', '/odd') == (200, 'ok')


# -- timeouts and connections ---------------------------------------------


def test_read_timeout_is_honoured(server):
    server.on('/slow', reply(200, 'late', delay=3))
    t = make(server, read_timeout=0.3, retries=0)
    t0 = time.monotonic()
    with pytest.raises(exceptions.BackendUnavailable) as info:
        t.request('GET', '/slow')
    assert time.monotonic() - t0 < 1.5
    assert 'read timed out' in str(info.value)
    assert str(info.value).startswith(server.url + ' GET /slow: ')
    assert info.value.status is None


def test_read_timeout_retried_for_get_only(server):
    server.on('/slow', reply(200, 'late', delay=3))
    t = make(server, read_timeout=0.2, retries=2)
    t0 = time.monotonic()
    with pytest.raises(exceptions.BackendUnavailable):
        t.request('GET', '/slow')
    # (connect + read) x (retries + 1) + backoff, nowhere near 3 x 3 s
    assert time.monotonic() - t0 < 2.5
    assert server.hits[('GET', '/slow')] == 3
    with pytest.raises(exceptions.BackendUnavailable, match='read timed out'):
        t.request('POST', '/slow', json={})
    assert server.hits[('POST', '/slow')] == 1


def test_connection_refused_is_unavailable():
    url = 'http://127.0.0.1:%d' % free_port()
    t0 = time.monotonic()
    with pytest.raises(exceptions.BackendUnavailable) as info:
        make(url, retries=1).request('POST', '/x', json={})
    assert time.monotonic() - t0 < 2
    assert str(info.value).startswith(url + ' POST /x: connection refused')


def test_messages_never_carry_credentials(server):
    server.on('/bad', reply(403, 'forbidden'))
    secret_url = server.url.replace('://', '://admin:s3cret@')
    t = make(secret_url)
    assert t.name == server.url
    assert 's3cret' not in repr(t)
    with pytest.raises(exceptions.BackendRejected) as info:
        t.request('GET', '/bad')
    assert 's3cret' not in str(info.value)
    refused = 'http://admin:s3cret@127.0.0.1:%d' % free_port()
    with pytest.raises(exceptions.BackendUnavailable) as info:
        make(refused, retries=0).request('GET', '/')
    assert 's3cret' not in str(info.value)


def test_environment_does_not_reach_the_session(server, monkeypatch):
    """REQUESTS_CA_BUNDLE and proxy variables are ignored (trust_env)."""
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/nonexistent/ca.pem')
    monkeypatch.setenv('CURL_CA_BUNDLE', '/nonexistent/ca.pem')
    dead_proxy = 'http://127.0.0.1:%d' % free_port()
    for var in ('HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy',
                'ALL_PROXY', 'all_proxy'):
        monkeypatch.setenv(var, dead_proxy)
    for var in ('NO_PROXY', 'no_proxy'):
        monkeypatch.delenv(var, raising=False)
    server.on('/ok', reply(200, 'fine'))
    assert make(server).request('GET', '/ok') == (200, 'fine')
    # the counterfactual: a default Session obeys the environment
    with pytest.raises(requests.RequestException):
        requests.Session().get(server.url + '/ok', timeout=2)


def test_one_session_per_process(server, monkeypatch):
    server.on('/ok', reply(200))
    t = make(server)
    first = t.session
    assert t.session is first
    assert first.trust_env is False
    monkeypatch.setattr(transport_mod.os, 'getpid', lambda: -1)
    assert t.session is not first          # as in a forked child
    assert t.request('GET', '/ok') == (200, None)
    monkeypatch.undo()
    t.close()
    assert t.session is not first


# -- TLS -------------------------------------------------------------------


def _cert(x509, name, key, issuer_name, issuer_key, ca, san_ip=None,
          client=False):
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_name or subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                   key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier
                              .from_issuer_public_key(
                                  (issuer_key or key).public_key()),
                              critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        usage = (ExtendedKeyUsageOID.CLIENT_AUTH if client
                 else ExtendedKeyUsageOID.SERVER_AUTH)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]),
                                        critical=False)
    if san_ip:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(san_ip))]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    """A private CA, a server cert for 127.0.0.1 and a client cert."""
    pytest.importorskip('cryptography')
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    tmp = tmp_path_factory.mktemp('pki')
    paths = {}

    def write(name, cert, key):
        cert_path, key_path = tmp / (name + '.pem'), tmp / (name + '.key')
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        paths[name] = (str(cert_path), str(key_path))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert(x509, 'multilb test CA', ca_key, None, None, ca=True)
    write('ca', ca, ca_key)
    for name, kwargs in (('server', {'san_ip': '127.0.0.1'}),
                         ('client', {'client': True})):
        key = ec.generate_private_key(ec.SECP256R1())
        write(name, _cert(x509, 'multilb-' + name, key, ca.subject, ca_key,
                          ca=False, **kwargs), key)
    return paths


def _tls_server(pki, require_client_cert=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*pki['server'])
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki['ca'][0])
    srv = ScriptedServer(tls_context=ctx)
    srv.on('/ok', reply(200, {'tls': True}))
    return srv


def test_verify_with_a_private_ca_despite_the_environment(pki, monkeypatch):
    system = '/etc/ssl/certs/ca-certificates.crt'
    bundle = system if os.path.exists(system) else '/nonexistent/ca.pem'
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', bundle)
    monkeypatch.setenv('CURL_CA_BUNDLE', bundle)
    srv = _tls_server(pki)
    try:
        ca = pki['ca'][0]
        assert make(srv, verify=ca).request('GET', '/ok') == (
            200, {'tls': True})
        assert make(srv, ca_bundle=ca).request('GET', '/ok')[0] == 200
        with pytest.raises(exceptions.BackendUnavailable, match='TLS'):
            make(srv, retries=0).request('GET', '/ok')  # system trust
        with pytest.warns(Warning):   # urllib3 InsecureRequestWarning
            assert make(srv, verify=False).request('GET', '/ok')[0] == 200
    finally:
        srv.stop()


def test_client_certificate_for_mutual_tls(pki):
    srv = _tls_server(pki, require_client_cert=True)
    try:
        ca = pki['ca'][0]
        ok = make(srv, ca_bundle=ca, client_cert=pki['client'])
        assert ok.request('GET', '/ok')[0] == 200
        with pytest.raises(exceptions.BackendUnavailable):
            make(srv, ca_bundle=ca, retries=0).request('GET', '/ok')
    finally:
        srv.stop()


# -- unix sockets ------------------------------------------------------------


class _RecordingHandler(_Handler):
    """_Handler that also keeps the headers of every request."""

    def _serve(self):
        with self.server.lock:
            self.server.headers_seen.append(dict(self.headers))
        super()._serve()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve  # noqa: N815


class UnixScriptedServer(socketserver.ThreadingMixIn,
                         socketserver.UnixStreamServer):
    """ScriptedServer's scripts and counters, on a unix socket."""

    daemon_threads = True
    on = ScriptedServer.on
    handle_error = ScriptedServer.handle_error
    stop = ScriptedServer.stop

    def __init__(self, path):
        super().__init__(str(path), _RecordingHandler)
        self.lock = threading.Lock()
        self.hits = collections.Counter()
        self.bodies, self.headers_seen, self.script = [], [], {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self):
        return 'unix://' + self.server_address


@pytest.fixture
def unix_server(tmp_path):
    srv = UnixScriptedServer(tmp_path / 'admin.sock')
    yield srv
    srv.stop()


def test_unix_socket_answers_and_errors_as_over_tcp(unix_server, tmp_path):
    unix_server.on('/config/', reply(200, {'admin': {}}))
    unix_server.on('/bad', reply(400, {'error': 'unknown module: nope'}))
    unix_server.on('/boom', reply(500, {'error': 'internal'}))
    t = make(unix_server)
    assert t.socket_path == str(tmp_path / 'admin.sock')
    assert t.name == 'unix://%s/admin.sock' % tmp_path
    assert repr(t) == '<Transport %s>' % t.name
    assert t.request('GET', '/config/') == (200, {'admin': {}})
    assert t.request('GET', 'config/') == (200, {'admin': {}})
    with pytest.raises(exceptions.BackendRejected) as info:
        t.request('POST', '/bad', json={'a': 1})
    assert str(info.value) == ('%s POST /bad: HTTP 400 Bad Request: unknown '
                               'module: nope' % t.name)
    assert info.value.status == 400
    with pytest.raises(exceptions.BackendUnavailable) as info:
        t.request('PUT', '/boom', json={})
    assert info.value.status == 500
    assert unix_server.bodies[2] == b'{"a": 1}'
    # Go's HTTP server refuses a request without Host; Caddy's admin API
    # refuses any Origin it was not told to allow
    for headers in unix_server.headers_seen:
        assert headers['Host'] == 'localhost'
        assert 'Origin' not in headers


def test_unix_socket_retries_reads_and_times_out(unix_server):
    unix_server.on('/flaky', reply(503), reply(503), reply(200, 'ok'))
    unix_server.on('/post', reply(503, 'busy'), reply(200))
    unix_server.on('/slow', reply(200, 'late', delay=3))
    assert make(unix_server, retries=2).request('GET', '/flaky') == (
        200, 'ok')
    assert unix_server.hits[('GET', '/flaky')] == 3
    with pytest.raises(exceptions.BackendUnavailable):
        make(unix_server, retries=3).request('POST', '/post', json={})
    assert unix_server.hits[('POST', '/post')] == 1
    t0 = time.monotonic()
    with pytest.raises(exceptions.BackendUnavailable) as info:
        make(unix_server, read_timeout=0.3, retries=0).request('GET',
                                                               '/slow')
    assert time.monotonic() - t0 < 1.5
    assert str(info.value).startswith(unix_server.url + ' GET /slow: '
                                      'read timed out')
    assert info.value.status is None


def test_unix_socket_that_nobody_serves(tmp_path):
    missing = 'unix://%s/missing.sock' % tmp_path
    with pytest.raises(exceptions.BackendUnavailable) as info:
        make(missing, retries=1).request('POST', '/x', json={})
    assert str(info.value).startswith(missing + ' POST /x: cannot connect')
    assert 'No such file or directory' in str(info.value)
    dead = tmp_path / 'dead.sock'
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(dead))      # the file stays, nothing listens
    with pytest.raises(exceptions.BackendUnavailable) as info:
        make('unix://%s' % dead, retries=1).request('GET', '/x')
    assert str(info.value).startswith(
        'unix://%s GET /x: connection refused' % dead)
    # a full backlog: a unix connect fails at once, it never waits
    full = tmp_path / 'full.sock'
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(full))
        sock.listen(0)
        queued = socket.socket(socket.AF_UNIX)
        queued.connect(str(full))
        t0 = time.monotonic()
        with pytest.raises(exceptions.BackendUnavailable) as info:
            make('unix://%s' % full, connect_timeout=5,
                 retries=0).request('GET', '/x')
        queued.close()
    assert time.monotonic() - t0 < 1
    assert 'cannot connect' in str(info.value)


def test_unix_socket_failures_open_the_breaker(unix_server, tmp_path):
    unix_server.on('/bad', reply(404, 'no such key'))
    breaker = transport_mod.ClusterBreaker('c1', fail_max=2,
                                           reset_timeout=60)
    good = make(unix_server, retries=0, breaker=breaker)
    for _ in range(3):   # rejections do not count against the cluster
        with pytest.raises(exceptions.BackendRejected):
            good.request('GET', '/bad')
    assert breaker.state == transport_mod.BREAKER_CLOSED
    gone = make('unix://%s/gone.sock' % tmp_path, retries=0,
                breaker=breaker)
    for _ in range(2):
        with pytest.raises(exceptions.BackendUnavailable):
            gone.request('GET', '/x')
    assert breaker.state == transport_mod.BREAKER_OPEN
    with pytest.raises(exceptions.BackendUnavailable) as info:
        good.request('GET', '/bad')
    assert info.value.breaker_open
    assert unix_server.hits[('GET', '/bad')] == 3


def test_unix_socket_ignores_tls_options(unix_server):
    unix_server.on('/ok', reply(200, 'plain'))
    t = make(unix_server, ca_bundle='/nonexistent/ca.pem',
             client_cert=('/nonexistent/c.pem', '/nonexistent/c.key'))
    assert t.request('GET', '/ok') == (200, 'plain')
    first = t.session
    t.close()
    assert t.request('GET', '/ok') == (200, 'plain')
    assert t.session is not first


@pytest.mark.parametrize('endpoint,path', [
    ('unix:///run/caddy/admin.sock', '/run/caddy/admin.sock'),
    ('UNIX:///run/caddy/admin.sock/', '/run/caddy/admin.sock'),
    ('http://127.0.0.1:2019', None),
    ('https://node.example:2019', None),
])
def test_unix_socket_path_of_an_endpoint(endpoint, path):
    assert transport_mod.unix_socket_path(endpoint) == path


@pytest.mark.parametrize('endpoint', [
    'unix://run/caddy/admin.sock',         # a host, not a path
    'unix://',
    'unix:///run/admin.sock?x=1',
    'unix:///run/admin.sock#frag',
    'unix:///' + 'd' * 110 + '/admin.sock',
])
def test_bad_unix_endpoints_are_refused(endpoint):
    with pytest.raises(ValueError):
        transport_mod.unix_socket_path(endpoint)
    with pytest.raises(ValueError):
        transport_mod.Transport(endpoint, 1, 1)


def test_a_dropped_connection_is_replayed_once_for_idempotent_requests(
        server):
    """A node that closes a connection without any answer (Caddy restarts
    its admin endpoint at every config load) must not fail a probe, which
    has no retries: a GET is sent once more at once; a POST is not."""
    dropped = reply(None)
    server.on('/config/admin', dropped, reply(200, {}))
    server.on('/config/apps', dropped, reply(200, {}))
    t = make(server, retries=0)
    assert t.request('GET', 'config/admin') == (200, {})
    assert server.hits[('GET', '/config/admin')] == 2
    with pytest.raises(exceptions.BackendUnavailable) as caught:
        t.request('POST', 'config/apps', json={})
    assert 'connection closed without a response' in str(caught.value)
    assert server.hits[('POST', '/config/apps')] == 1
    server.on('/config/admin', dropped)          # every time: one replay
    with pytest.raises(exceptions.BackendUnavailable):
        t.request('GET', 'config/admin')
    assert server.hits[('GET', '/config/admin')] == 4
    server.on('/config/servers', reply('reset'), reply(200, {}))
    assert t.request('GET', 'config/servers') == (200, {})   # a reset too
    assert server.hits[('GET', '/config/servers')] == 2
    t.close()
