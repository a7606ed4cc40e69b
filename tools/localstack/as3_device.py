"""An **emulator** of an F5 BIG-IP device with AS3 (Application Services
3 Extension) for tests: it stands in for a proprietary appliance that
cannot run here.  It is not BIG-IP and not AS3: it answers the REST
requests multilb's F5 backend sends the way a BIG-IP 17.1 with AS3 3.56
does, and is never more forgiving than a device (where unsure, it refuses).

``AS3Device().start()`` serves on ``http://127.0.0.1:<free port>``
(``tls=(cert, key)``: https), state in memory, one thread per request;
``stop()`` stops exactly its server.  Standalone:
``python -m tools.localstack.as3_device serve --port 8443 [--user
admin:secret] [--delay 2]``.

Emulated (rules from F5's AS3 docs and code, f5-appsvcs-extension, and
from SAP's octavia-f5-provider-driver):

* ``POST /mgmt/shared/authn/login`` (``loginProviderName`` tmos) -> a token
  of 1200 s; ``X-F5-Auth-Token`` on every other request (Basic auth too,
  ``basic_auth=False`` turns it off); ``PATCH
  /mgmt/shared/authz/tokens/<t>`` ``{"timeout": N}`` (N <= 36000), ``GET``
  and ``DELETE`` of a token; unknown or expired token -> 401; at most
  ``max_tokens`` (100) live tokens a user: the next login answers 400
  ``user <uuid> has reached maximum active login tokens`` (F5 K44237337).
* ``GET /mgmt/shared/appsvcs/info``, ``/mgmt/shared/appsvcs/settings``,
  ``/mgmt/tm/sys/version``, ``/mgmt/tm/cm/device`` (this device only:
  ``failover_state``, ``active`` unless a test sets ``standby``).
* ``GET|POST|DELETE /mgmt/shared/appsvcs/declare[/T1,T2][?async=true]``:
  every body goes through ``tools.localstack.as3_schema.validate`` (422
  ``declaration is invalid`` with the first error, nothing changes); one
  lock for the whole device: a synchronous request while a declaration
  runs gets 503 ``Configuration operation in progress on device
  localhost, please try again in 2 minutes`` (no Retry-After), an async
  one 202 and a task that ends with that 503; a synchronous request that
  runs longer than ``sync_timeout`` (45 s) answers 202 with its task id.
  ``DELETE .../declare`` without tenants removes every tenant
  (``counters['delete_all']``).
* Per-application API (AS3 3.50+): ``POST|GET
  .../declare/<T>/applications``, ``GET|DELETE
  .../declare/<T>/applications/<app>``.
* ``GET /mgmt/shared/appsvcs/task[/<id>]``: code 0 "in progress" while
  running; after :meth:`restart_empty` a running task stays code 0 "task
  cancelled" for ever.
* ``GET /mgmt/tm/ltm/virtual[/~T~A~vs]/stats``,
  ``/mgmt/tm/ltm/pool[/~T~A~p]/stats``, ``/mgmt/tm/ltm/pool/~T~A~p/members
  /stats`` from the declared tenants (:mod:`.as3_device_stats`).

The GET of a declaration answers what was posted: AS3 fills schema
defaults in, but ``as3_schema`` exposes no such function (a callable
``fill_defaults=`` can be given).

Not emulated: the configuration itself (no traffic, no monitors: state
and counters are what tests set), declaration arrays, actions other than
deploy and dry-run, PATCH of declarations, burst handling (AS3's queue,
off by default), BIG-IQ targets, the settings endpoint's POST, ``show``
and other query options, iControl REST beyond the paths above (404),
remote auth providers.

Knobs (attributes and methods of :class:`AS3Device`, also over HTTP at
``/emulator/...`` without auth): ``delay``, ``sync_timeout``,
``tm_busy_503``, :meth:`fail_next`, :meth:`restart_empty`,
:meth:`advance_clock`, :meth:`set_stats`, :meth:`down` / :meth:`up`;
read ``counters``, ``requests``, :meth:`requested`.
"""

import argparse
import base64
import http.server
import json
import logging
import re
import socketserver
import ssl
import threading
import urllib.parse

from . import as3_device_ops as ops
from .as3_device_state import (AS3_RELEASE, AS3_VERSION, BIGIP_BUILD,
                               BIGIP_VERSION, LOCK_MESSAGE, ConnectionDropped,
                               DeviceState)
from .ports import HOST

LOG = logging.getLogger(__name__)

DECLARE = '/mgmt/shared/appsvcs/declare'
APPS = re.compile(DECLARE + r'/([^/,]+)/applications(?:/([^/]+))?$')
TENANTS = re.compile(DECLARE + r'(?:/([^/]+))?/?$')
TASK = re.compile(r'/mgmt/shared/appsvcs/task(?:/([^/]+))?/?$')
TOKEN = re.compile(r'/mgmt/shared/authz/tokens/([^/]+)$')
STATS = re.compile(r'/mgmt/tm/ltm/(virtual|pool)(?:/([^/]+))?'
                   r'(/members)?/stats$')


def _version():
    entries = {'Build': BIGIP_BUILD, 'Date': 'Thu Oct 12 12:00:00 PDT 2023',
               'Edition': 'Point Release 3', 'Product': 'BIG-IP',
               'Title': 'Main Package', 'Version': BIGIP_VERSION}
    return {'kind': 'tm:sys:version:versionstats',
            'selfLink': 'https://localhost/mgmt/tm/sys/version?ver='
                        + BIGIP_VERSION,
            'entries': {'https://localhost/mgmt/tm/sys/version/0': {
                'nestedStats': {'entries': {
                    k: {'description': v} for k, v in entries.items()}}}}}


def _tenants(text):
    return [t for t in (text or '').split(',') if t] or None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.0'
    device = None   # set on the per-device subclass

    def _read_body(self):
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return ValueError

    def _send(self, status, body):
        data = b'' if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _handle(self):
        device = self.device
        if device.hanging.is_set():
            device.hang_released.wait()
            self.close_connection = True
            return
        parts = urllib.parse.urlsplit(self.path)
        path, query = parts.path, dict(urllib.parse.parse_qsl(parts.query))
        body = self._read_body()
        if body is ValueError:
            status, answer = 400, {'code': 400, 'message':
                                   'Invalid JSON in the request body'}
        else:
            try:
                status, answer = device.dispatch(
                    self.command, path, query, self.headers, body)
            except ConnectionDropped:
                device.log_request(self.command, path, parts.query, None)
                self.close_connection = True
                return
            except Exception as exc:   # an emulator bug: say so, loudly
                LOG.exception('AS3 emulator: %s %s', self.command, path)
                status, answer = 500, {'code': 500, 'message':
                                       f'emulator error: {exc!r}'}
        device.log_request(self.command, path, parts.query, status)
        self._send(status, answer)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle  # noqa

    def log_message(self, fmt, *args):
        LOG.debug('as3 device: ' + fmt, *args)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):   # no DNS look-up of the name (members.py)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class AS3Device(DeviceState):
    """``AS3Device().start()`` ... ``.stop()``; a context manager.
    ``url`` is ``http://127.0.0.1:<port>`` (``https`` with ``tls``);
    every knob of :class:`DeviceState` is an attribute of it."""

    def __init__(self, host=HOST, port=0, tls=None, **kwargs):
        super().__init__(**kwargs)
        self.host = host
        self.port = port or None
        self.tls = tls
        self.hanging = threading.Event()
        self.hang_released = threading.Event()
        self._httpd = None
        self._thread = None

    @property
    def url(self):
        scheme = 'https' if self.tls else 'http'
        return f'{scheme}://{self.host}:{self.port}'

    @property
    def running(self):
        return self._httpd is not None

    def start(self):
        if self._httpd is not None:
            return self
        handler = type('AS3Handler', (_Handler,), {'device': self})
        httpd = _HTTPServer((self.host, self.port or 0), handler)
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            httpd.socket = context.wrap_socket(httpd.socket,
                                               server_side=True)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={'poll_interval': 0.05},
            name=f'as3-device-{self.port}', daemon=True)
        self._thread.start()
        LOG.info('AS3 device emulator on %s', self.url)
        return self

    def stop(self):
        """Stop serving and close the listening socket.  Idempotent."""
        self.hanging.clear()
        self.hang_released.set()
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            self._thread = None
            return
        httpd.shutdown()
        httpd.server_close()
        self._thread.join(timeout=5)
        self._thread = None

    def down(self, hang=False):
        """The device is unreachable: connections refused (the port
        closed), or with ``hang=True`` accepted and never answered until
        :meth:`up`.  Its state is kept."""
        if hang:
            self.hang_released.clear()
            self.hanging.set()
            return
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            self._thread.join(timeout=5)

    def up(self):
        """Back from :meth:`down`, on the same port."""
        self.hanging.clear()
        self.hang_released.set()
        if self._httpd is None and self.port and self._thread is not None:
            self.start()

    # -- routing -------------------------------------------------------

    def _user(self, headers):
        token = headers.get('X-F5-Auth-Token')
        if token is not None:
            return self.user_of(token=token)
        auth = headers.get('Authorization') or ''
        if auth.startswith('Basic '):
            try:
                user, _, password = base64.b64decode(
                    auth[6:]).decode().partition(':')
            except ValueError:
                return None
            return self.user_of(basic=(user, password))
        return None

    def dispatch(self, method, path, query, headers, body):
        """``(status, body)`` of one request."""
        if path.startswith('/emulator/'):
            return self._control(method, path, body)
        if path == '/mgmt/shared/authn/login':
            if method != 'POST':
                return _no_method(method, path)
            return self.login(body)
        if self._user(headers) is None:
            message = ('X-F5-Auth-Token does not exist.'
                       if 'X-F5-Auth-Token' in headers else
                       'Authorization failed: no user authentication '
                       'header or token detected.')
            return 401, {'code': 401, 'message': message,
                         'referer': '127.0.0.1', 'restOperationId': 0,
                         'errorStack': [], 'kind': ':resterrorresponse'}
        if path.startswith('/mgmt/tm/') and self.tm_busy_503 and self.busy:
            return 503, {'code': 503, 'message': LOCK_MESSAGE,
                         'errorStack': []}
        return self._route(method, path, query, body)

    def _route(self, method, path, query, body):
        asynchronous = query.get('async') == 'true'
        match = TOKEN.match(path)
        if match and method in ('GET', 'PATCH', 'DELETE'):
            return self.token_op(method, match.group(1), body)
        match = APPS.match(path)
        if match:
            tenant, app = match.groups()
            if method == 'GET':
                return ops.app_get(self, tenant, app)
            if method == 'POST' and app is None:
                return ops.app_post(self, tenant, body, asynchronous)
            if method == 'DELETE' and app is not None:
                return ops.app_delete(self, tenant, app, asynchronous)
            return _no_method(method, path)
        match = TENANTS.match(path)
        if match:
            tenants = _tenants(match.group(1))
            if method == 'GET':
                return ops.get_declaration(self, tenants)
            if method == 'POST':
                return ops.declare(self, body, tenants, asynchronous)
            if method == 'DELETE':
                return ops.delete(self, tenants, asynchronous)
            return _no_method(method, path)
        if method != 'GET':
            return _no_method(method, path)
        return self._get(path)

    def _get(self, path):
        match = TASK.match(path)
        if match:
            return ((200, self.task_list()) if match.group(1) is None
                    else self.task(match.group(1)))
        match = STATS.match(path)
        if match:
            kind, name, members = match.groups()
            if members and not name:
                return _not_registered(path)
            return self.tm_stats(kind, name, bool(members))
        if path == '/mgmt/shared/appsvcs/info':
            return 200, {'version': AS3_VERSION, 'release': AS3_RELEASE,
                         'schemaCurrent': AS3_VERSION,
                         'schemaMinimum': '3.0.0'}
        if path == '/mgmt/shared/appsvcs/settings':
            return 200, {'asyncTaskStorage': 'data-group',
                         'burstHandlingEnabled': False,
                         'perAppDeploymentAllowed': True,
                         'serviceDiscoveryEnabled': True}
        if path == '/mgmt/tm/sys/version':
            return 200, _version()
        if path == '/mgmt/tm/cm/device':
            return 200, {'kind': 'tm:cm:device:devicecollectionstate',
                         'items': [{'kind': 'tm:cm:device:devicestate',
                                    'name': self.device_name,
                                    'selfDevice': 'true',
                                    'failoverState': self.failover_state}]}
        return _not_registered(path)

    def _control(self, method, path, body):
        """The knobs over HTTP: ``GET /emulator/state``; ``POST
        /emulator/knobs`` {delay, sync_timeout, tm_busy_503,
        failover_state}; ``POST
        /emulator/fail_next`` {code, message}; ``POST
        /emulator/restart_empty``; ``POST /emulator/stats`` {path,
        member, ...fields}; ``POST /emulator/advance_clock``
        {seconds}."""
        body = body if isinstance(body, dict) else {}
        if method == 'GET' and path == '/emulator/state':
            with self.lock:
                return 200, {'counters': dict(self.counters),
                             'busy': self.busy,
                             'tenants': sorted(self.tenants),
                             'requests': list(self.requests)}
        if method != 'POST':
            return _no_method(method, path)
        if path == '/emulator/knobs':
            for key in ('delay', 'sync_timeout', 'tm_busy_503',
                        'failover_state'):
                if key in body:
                    setattr(self, key, body[key])
        elif path == '/emulator/fail_next':
            self.fail_next(int(body.get('code', 500)),
                           body.get('message', 'emulated failure'))
        elif path == '/emulator/restart_empty':
            self.restart_empty()
        elif path == '/emulator/stats':
            self.set_stats(body.pop('path'), body.pop('member', None),
                           **body)
        elif path == '/emulator/advance_clock':
            self.advance_clock(float(body.get('seconds', 0)))
        else:
            return _not_registered(path)
        return 200, {'ok': True}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return f'<AS3Device {self.url if self.port else "(stopped)"}>'


def _no_method(method, path):
    return 405, {'code': 405, 'message': f'Method {method} not allowed '
                 f'on {path}', 'errorStack': []}


def _not_registered(path):
    return 404, {'code': 404, 'message': f'Public URI path not registered: '
                 f'{path}', 'errorStack': [], 'restOperationId': 0,
                 'kind': ':resterrorresponse'}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tools.localstack.as3_device',
        description='Serve an F5 BIG-IP AS3 device emulator (tests only).')
    sub = parser.add_subparsers(dest='command', required=True)
    serve = sub.add_parser('serve', help='serve until interrupted')
    serve.add_argument('--host', default=HOST)
    serve.add_argument('--port', type=int, default=0)
    serve.add_argument('--user', action='append', default=[],
                       help='USER:PASSWORD (repeatable; admin:admin '
                            'by default)')
    serve.add_argument('--delay', type=float, default=0.0,
                       help='seconds every declaration takes')
    serve.add_argument('--sync-timeout', type=float, default=45.0)
    serve.add_argument('--tls', nargs=2, metavar=('CERT', 'KEY'))
    serve.add_argument('--workdir', help='the stack that owns this process '
                       '(tools.localstack down recognises it by it)')
    args = parser.parse_args(argv)
    users = dict(u.split(':', 1) for u in args.user) or None
    device = AS3Device(host=args.host, port=args.port, tls=args.tls,
                       users=users, delay=args.delay,
                       sync_timeout=args.sync_timeout).start()
    print(device.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        device.stop()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
