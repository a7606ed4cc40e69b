"""Real HTTP backend servers ("members" of a pool) for load-balancing tests.

A :class:`MemberServer` is a stdlib ``ThreadingHTTPServer`` in a thread of
the test process.  Given a :class:`~tools.localstack.netns.MemberLab`, it
listens on an address of its own inside the lab's network namespace
(``lab.next_address()``, or ``host``) and a free port there: a tenant's
member must not be on this host's loopback, and multilb refuses one that
is.  The test process reaches it through the lab's veth pair like any
other client in the root namespace.  Without a lab it listens on
``127.0.0.1:<free port>`` (only for tests that never hand the member to
the Octavia API).  It:

* ``GET /health`` answers 200 ``ok`` while ``healthy`` is true, else 503
  (flip ``member.healthy`` at run time to fail an active health check);
* every other GET (and HEAD) answers 200 with ``member=<name>\\n``, after
  ``delay`` seconds (a slow member);
* ``hits`` counts the non-health requests served, ``health_hits`` the
  health checks; ``paths`` remembers the non-health request paths.

``stop()`` closes the listening socket (new connections are refused, as
for a dead member); ``start()`` again binds the same address and port.

A :class:`MemberProcess` runs the same server in a process of its own, for
stacks that outlive the Python that started them (``python -m
tools.localstack up --members N``); with a lab it is started with ``ip
netns exec <lab namespace>``::

    python -m tools.localstack.members serve --name m1 --port 8081 \
        [--host 127.0.0.1] [--workdir DIR]

answers like a MemberServer (``member=m1``, ``/health``), logs every request
to stderr and exits on SIGTERM or SIGINT.
"""

import argparse
import http.server
import logging
import os
import signal
import socketserver
import sys
import threading
import time
import urllib.request

from . import ports
from .process import Service, wait_until

LOG = logging.getLogger(__name__)

HOST = '127.0.0.1'
# Members are reached directly, never through a proxy of the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so stop() leaves no idle
    # keep-alive connection behind and every request is counted at once.
    protocol_version = 'HTTP/1.0'
    member = None  # set on the per-server subclass

    def _answer(self, send_body):
        member = self.member
        if self.path.split('?', 1)[0] == '/health':
            member._count(health=True)
            status = 200 if member.healthy else 503
            body = b'ok\n' if member.healthy else b'unhealthy\n'
        else:
            if member.delay:
                time.sleep(member.delay)
            member._count(path=self.path)
            status, body = 200, f'member={member.name}\n'.encode()
        self.send_response(status)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.send_header('X-Member', member.name)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server API
        self._answer(True)

    def do_HEAD(self):  # noqa: N802
        self._answer(False)

    def log_message(self, fmt, *args):
        LOG.debug('member %s: ' + fmt, self.member.name, *args)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind looks the address up in DNS
        # (socket.getfqdn): 10 s of timeouts inside a lab without DNS,
        # and a query to the resolver outside it.  A member needs no name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class MemberServer:
    """``MemberServer('m1', lab=lab).start()`` ... ``.stop()``; a context
    manager.

    ``address`` is the IP (as in an Octavia member): ``host``, else the
    lab's next member address, else 127.0.0.1; ``port`` the port, ``dial``
    is ``'ADDRESS:PORT'`` (a Caddy upstream).
    """

    def __init__(self, name, host=None, port=0, lab=None):
        self.name = name
        self.lab = lab
        if host is None:
            host = lab.next_address() if lab is not None else HOST
        self.address = host
        self.port = port or None
        self.healthy = True
        self.delay = 0.0
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None
        self.reset_counts()

    @property
    def dial(self):
        return f'{self.address}:{self.port}'

    @property
    def url(self):
        return f'http://{self.address}:{self.port}'

    @property
    def running(self):
        return self._httpd is not None

    def _count(self, health=False, path=None):
        with self._lock:
            if health:
                self.health_hits += 1
            else:
                self.hits += 1
                self.paths.append(path)

    def reset_counts(self):
        with self._lock:
            self.hits = 0
            self.health_hits = 0
            self.paths = []

    def start(self):
        if self._httpd is not None:
            return self
        handler = type(f'Handler_{self.name}', (_Handler,), {'member': self})
        httpd = _HTTPServer((self.address, self.port or 0), handler,
                            bind_and_activate=False)
        try:
            if self.lab is not None:
                # the listening socket is born in the lab's namespace
                httpd.socket.close()
                httpd.socket = self.lab.socket(httpd.address_family,
                                               httpd.socket_type)
            httpd.server_bind()
            httpd.server_activate()
        except BaseException:
            httpd.server_close()
            raise
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={'poll_interval': 0.05},
            name=f'member-{self.name}', daemon=True)
        self._thread.start()
        LOG.info('member %s serving on %s', self.name, self.dial)
        return self

    def stop(self):
        """Stop serving and close the listening socket.  Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        self._thread.join(timeout=5)
        self._thread = None

    def __repr__(self):
        return f'<MemberServer {self.name} {self.dial} hits={self.hits}>'

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class MemberPool:
    """``n`` MemberServers named ``<prefix>-0`` ... ``<prefix>-<n-1>``,
    each on an address of its own in ``lab`` (or all on ``host``)."""

    def __init__(self, n, prefix='member', host=None, lab=None):
        self.members = [MemberServer(f'{prefix}-{i}', host=host, lab=lab)
                        for i in range(n)]

    @property
    def dials(self):
        return [m.dial for m in self.members]

    @property
    def hits(self):
        """``{name: hits}``."""
        return {m.name: m.hits for m in self.members}

    def reset_counts(self):
        for m in self.members:
            m.reset_counts()

    def start(self):
        for m in self.members:
            m.start()
        return self

    def stop(self):
        for m in self.members:
            m.stop()

    def __iter__(self):
        return iter(self.members)

    def __getitem__(self, index):
        return self.members[index]

    def __len__(self):
        return len(self.members)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class MemberProcess:
    """``MemberProcess(workdir, 'm1', lab=lab).start()`` ... ``.stop()``:
    ``serve`` in its own process (a
    :class:`~tools.localstack.process.Service` named ``member-<name>``),
    inside ``lab`` (``ip netns exec``) on ``host`` or the lab's next member
    address (without a lab: 127.0.0.1), on a free port picked once and
    kept.

    Its log (requests included) is ``<workdir>/members/<name>.log``.  The
    command line carries ``--workdir <workdir>``, which is how ``python -m
    tools.localstack down`` recognises the process as its own.
    """

    def __init__(self, workdir, name, host=None, port=None, python=None,
                 ready_timeout=30, detach=False, lab=None):
        self.workdir = os.path.abspath(workdir)
        self.name = name
        self.lab = lab
        if host is None:
            host = lab.next_address() if lab is not None else HOST
        self.address = host
        self.port = port
        self.python = python or sys.executable
        self.ready_timeout = ready_timeout
        self.detach = detach
        self.dir = os.path.join(self.workdir, 'members')
        self.log_path = os.path.join(self.dir, f'{name}.log')
        self.service = None

    @property
    def dial(self):
        return f'{self.address}:{self.port}'

    @property
    def url(self):
        return f'http://{self.address}:{self.port}'

    @property
    def pid(self):
        return self.service.pid if self.service else None

    def alive(self):
        return self.service is not None and self.service.alive()

    def _ready(self):
        with _DIRECT.open(self.url + '/health', timeout=2) as resp:
            return resp.status == 200

    def start(self):
        """Start ``serve`` and wait until ``GET /health`` answers 200."""
        if self.alive():
            return self
        os.makedirs(self.dir, exist_ok=True)
        if self.port is None:
            self.port = (self.lab.free_port(self.address) if self.lab
                         else ports.free_port(self.address))
        argv = [self.python, '-m', 'tools.localstack.members', 'serve',
                '--name', self.name, '--host', self.address,
                '--port', self.port, '--workdir', self.workdir]
        if self.lab is not None:
            # ip netns exec execs the command: the PID stays the member's
            argv = self.lab.exec_argv() + argv
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        env['PYTHONPATH'] = os.pathsep.join(
            p for p in (REPO, env.get('PYTHONPATH')) if p)
        self.service = Service.spawn(f'member-{self.name}', argv,
                                     self.log_path, env=env, cwd=self.dir,
                                     detach=self.detach)
        try:
            waited = wait_until(self._ready, self.ready_timeout,
                                f'member {self.name} on {self.url}',
                                watch=[self.service])
        except Exception:
            self.stop()
            raise
        LOG.info('member %s ready on %s after %.2fs', self.name, self.url,
                 waited)
        return self

    def stop(self, timeout=10):
        """SIGTERM, SIGKILL after ``timeout`` s.  Idempotent."""
        if self.service is not None:
            self.service.stop(timeout=timeout)

    def describe(self):
        return {'name': self.name, 'address': self.address,
                'port': self.port, 'url': self.url,
                'namespace': self.lab.namespace if self.lab else None,
                'log_path': self.log_path,
                'service': self.service.describe() if self.service else None}

    def __repr__(self):
        return f'<MemberProcess {self.name} {self.dial} pid={self.pid}>'

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def serve(name, host=HOST, port=0):
    """Run a :class:`MemberServer` until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    member = MemberServer(name, host=host, port=port).start()
    try:
        while not stop.wait(3600):
            pass
    finally:
        member.stop()
    LOG.info('member %s stopped', name)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tools.localstack.members',
        description='A member HTTP server: GET answers member=<name>, '
                    'GET /health answers ok.')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('serve', help='serve until SIGTERM')
    p.add_argument('--name', required=True)
    p.add_argument('--host', default=HOST)
    p.add_argument('--port', type=int, required=True,
                   help='0: any free port (logged)')
    p.add_argument('--workdir', help='stack directory it belongs to; it '
                   'runs there, and the command line shows it')
    args = parser.parse_args(argv)
    if args.workdir:
        os.chdir(args.workdir)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='%(asctime)s %(levelname)s %(message)s')
    LOG.setLevel(logging.DEBUG)  # one line per request
    return serve(args.name, args.host, args.port)


if __name__ == '__main__':
    sys.exit(main())
