"""An etcd3gw client that knows every member of an etcd cluster.

The only module of multilb that imports etcd3gw. Both users of etcd go
through :class:`FailoverClient`: the state store (:mod:`multilb.store.etcd`)
and tooz's coordination driver, whose own client is swapped for one of
these (:mod:`multilb.coordination`). Neither etcd3gw nor tooz takes more
than one host.

Why failover in the client rather than a new client per member: a lease
(tooz's agent membership, its per-cluster locks) belongs to the etcd
*cluster*, not to the member that granted it. A client that moves to
another member keeps refreshing the same lease ids, so an agent keeps its
membership and its locks when the member it talked to dies. A re-created
tooz coordinator would start with new leases: its locks would be gone.

Rules of a request (:meth:`FailoverClient.post`):

* Members are tried in the order of the URL, starting with the one that
  answered last; every thread and every tooz object of one client share
  that choice (:class:`Endpoints`).
* A request that surely did not reach a member (connection refused, no
  route, connect timeout, TLS handshake failure) is sent to the next member
  at once.
* A read (``kv/range``, lease keep-alive and time-to-live, status) is also
  sent again after a read timeout, a reset connection or an HTTP 503 (a
  member without a leader): reading twice changes nothing.
* So is a transaction without compares (plain puts and deletes): applying
  it twice leaves the same keys.
* A conditional transaction (or a lease grant) that may have been applied
  (its reply was lost) is never sent twice: its second run would fail its
  own compare and look like a lost race. The error goes to the caller,
  which re-reads (the state store's contract), and the next request goes
  to the next member.
* Error messages name the member and the cause in a few words (no
  urllib3 pool reprs).
* With etcd authentication (``USER:PASSWORD@`` in the URL) the client asks
  a member for a token and sends it with every request; a 401 (the
  token expired, or another member did not issue it) gets a new token and
  the request again, once. The password stays in memory.
"""

from __future__ import annotations

import base64
import errno
import json as jsonlib
import logging
import ssl
import threading
import typing
import urllib.parse

import etcd3gw
from etcd3gw import exceptions as etcd_exceptions
import requests

from multilb import exceptions

LOG = logging.getLogger(__name__)

DEFAULT_PORT = 2379
TOOZ_TIMEOUT = 30
"""tooz's etcd3gw driver default for ``timeout`` (seconds)."""

Etcd3Exception = etcd_exceptions.Etcd3Exception
ConnectionFailedError = etcd_exceptions.ConnectionFailedError
ConnectionTimeoutError = etcd_exceptions.ConnectionTimeoutError
RequestException = requests.exceptions.RequestException

_READS = ('kv/range', 'lease/keepalive', 'kv/lease/timetolive',
          'lease/timetolive', 'maintenance/status', 'cluster/member/list')
_ERRNO_WORDS = {
    errno.ECONNREFUSED: 'connection refused',
    errno.ECONNRESET: 'connection reset',
    errno.EHOSTUNREACH: 'host unreachable',
    errno.ENETUNREACH: 'network unreachable',
    errno.ETIMEDOUT: 'connection timed out',
}


def parse_endpoints(parts: urllib.parse.SplitResult) -> list[tuple[str, int]]:
    """``[(host, port), ...]`` of ``etcd3+http://a:2379,b:2379,c``.

    :raises ConfigError: a host is missing or a port is not a port number.
    """
    hosts = parts.netloc.rpartition('@')[2]
    endpoints = []
    for item in hosts.split(','):
        item = item.strip()
        try:
            one = urllib.parse.urlsplit('//' + item)
            host, port = one.hostname, one.port or DEFAULT_PORT
        except ValueError:
            host = port = None
        if not host:
            raise exceptions.ConfigError(
                'etcd endpoint %r: expected HOST[:PORT], several separated '
                'by commas (etcd3+http://10.0.0.1:2379,10.0.0.2:2379,'
                '10.0.0.3:2379)' % item)
        endpoints.append((host, port))
    if len(set(endpoints)) != len(endpoints):
        raise exceptions.ConfigError(
            'etcd endpoints are listed twice: %s' % hosts)
    return endpoints


class Endpoints:
    """The members of one etcd cluster and the one to try first."""

    def __init__(self, endpoints: typing.Sequence[tuple[str, int]],
                 protocol: str = 'http') -> None:
        if not endpoints:
            raise exceptions.ConfigError('no etcd endpoint given')
        self.urls = [_base_url(protocol, host, port)
                     for host, port in endpoints]
        self.names = ['%s:%d' % (('[%s]' % h) if ':' in h else h, p)
                      for h, p in endpoints]
        self._current = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.urls)

    @property
    def current(self) -> int:
        return self._current

    def failed(self, index: int, why: str) -> None:
        """The member at ``index`` failed a request: try the next first."""
        if len(self.urls) == 1:
            return
        with self._lock:
            if self._current != index:
                return  # another thread moved on already
            self._current = (index + 1) % len(self.urls)
            LOG.warning('etcd member %s failed (%s); using %s from now on',
                        self.names[index], why, self.names[self._current])

    def describe(self) -> str:
        return ','.join(self.names)


class FailoverClient(etcd3gw.Etcd3Client):
    """An ``Etcd3Client`` over every member of a cluster (module doc)."""

    def __init__(self, endpoints: Endpoints, *, protocol: str = 'http',
                 timeout: float | None = None, api_path: str | None = None,
                 session: requests.Session | None = None,
                 credentials: tuple[str, str] | None = None) -> None:
        """:param credentials: ``(user, password)`` when etcd has
            authentication enabled; kept in memory only, never logged."""
        super().__init__(host='unused', port=0, protocol=protocol,
                         timeout=timeout, api_path=api_path,
                         session=session or new_session())
        self.endpoints = endpoints
        self._credentials = credentials
        self._token: str | None = None

    def __repr__(self) -> str:
        return '<FailoverClient %s%s>' % (
            self.endpoints.describe(),
            ' (authenticated)' if self._credentials else '')

    @property
    def base_url(self) -> str:
        return self.endpoints.urls[self.endpoints.current]

    def _discover_api_path(self) -> None:
        """Ask the first member that answers which gateway path it
        serves (etcd3gw's own query, with this module's failover and
        wording)."""
        error: Etcd3Exception | None = None
        for _ in range(len(self.endpoints)):
            index = self.endpoints.current
            name = self.endpoints.names[index]
            try:
                resp = self.session.get(self.endpoints.urls[index] +
                                        '/version', timeout=self.timeout)
            except requests.exceptions.RequestException as exc:
                resp, error = None, _mapped(exc, name, self.timeout)
            if resp is None:
                self.endpoints.failed(index, error.detail_text)
                continue
            version = str(_reply(resp, name).get('etcdserver', ''))
            numbers = tuple(int(p) for p in version.split('.')[:2]
                            if p.isdigit())
            if len(numbers) < 2:
                raise _error(etcd_exceptions.ApiVersionDiscoveryFailedError,
                             'etcd member %s sent no version we know: %r'
                             % (name, version))
            self._api_path = ('/v3/' if numbers >= (3, 4) else
                              '/v3beta/' if numbers >= (3, 3) else
                              '/v3alpha/')
            return
        assert error is not None
        raise error

    def post(self, url: str, *args: typing.Any, json: typing.Any = None,
             **kwargs: typing.Any) -> typing.Any:
        path = _path_of(url)
        repeatable = any(path.endswith('/' + name) for name in _READS) or (
            path.endswith('/kv/txn') and isinstance(json, dict)
            and not json.get('compare'))
        error: Etcd3Exception | None = None
        for _ in range(len(self.endpoints)):
            index = self.endpoints.current
            resp, error, unsent = self._send(index, path, json, args, kwargs)
            if error is None and resp.status_code == 503:
                error = _error(ConnectionFailedError,
                               'etcd member %s is unavailable (HTTP 503): %s'
                               % (self.endpoints.names[index],
                                  _short(resp.text)))
            if error is None:
                if resp.status_code == 401 and self._credentials:
                    # a simple token is valid on the member that issued it
                    # and for --auth-token-ttl: ask that member again, once
                    self._token = None
                    resp, error, unsent = self._send(index, path, json, args,
                                                     kwargs)
            if error is None:
                return _reply(resp, self.endpoints.names[index])
            # Logged and raised outside the except clause: oslo.log would
            # append the urllib3 exception being handled to the line.
            self.endpoints.failed(index, error.detail_text)
            if not (unsent or repeatable):
                raise error
        assert error is not None
        raise error

    def _send(self, index: int, path: str, json: typing.Any,
              args: tuple, kwargs: dict) -> tuple[
                  requests.Response | None, Etcd3Exception | None, bool]:
        """``(reply, None, False)`` or ``(None, error, surely unsent)``."""
        try:
            if self._credentials and self._token is None:
                self._token = self._authenticate(index)
            if self._token:
                kwargs = dict(kwargs, headers=dict(
                    kwargs.get('headers') or {}, Authorization=self._token))
            return self.session.post(
                self.endpoints.urls[index] + path, *args, json=json,
                timeout=self.timeout, **kwargs), None, False
        except requests.exceptions.RequestException as exc:
            return None, _mapped(exc, self.endpoints.names[index],
                                 self.timeout), _not_sent(exc)

    def watch_keys(self, start: bytes, end: bytes,
                   on_key: typing.Callable[[bytes], None],
                   stop: threading.Event, idle: float) -> None:
        """Call ``on_key(key)`` for every change of a key in ``[start,
        end)``, streamed from the current member (etcd's ``watch``), until
        ``stop`` is set or nothing came for ``idle`` seconds; then return
        (the caller watches again: etcd3gw's own watches hang for ever
        once their member restarted, and a re-watch moves to the member
        in use). Events between two watches are missed: a watch is a
        hint, never the only way to find work.

        :raises Etcd3Exception: the member could not be asked (it is
            marked failed: the next watch goes to another).
        """
        index = self.endpoints.current
        name = self.endpoints.names[index]
        body = {'create_request': {
            'key': base64.b64encode(start).decode('ascii'),
            'range_end': base64.b64encode(end).decode('ascii')}}
        headers = {}
        try:
            if self._credentials and self._token is None:
                self._token = self._authenticate(index)
            if self._token:
                headers['Authorization'] = self._token
            resp = self.session.post(
                self.endpoints.urls[index] + self.api_path + 'watch',
                json=body, headers=headers, stream=True,
                timeout=(self.timeout or 5.0, idle))
        except requests.exceptions.RequestException as exc:
            error = _mapped(exc, name, self.timeout)
            self.endpoints.failed(index, error.detail_text)
            raise error from None
        with resp:
            if resp.status_code != 200:
                if resp.status_code == 401:
                    self._token = None
                raise _error(Etcd3Exception, 'etcd member %s refused a '
                             'watch: HTTP %d' % (name, resp.status_code))
            try:
                for line in resp.iter_lines(chunk_size=None):
                    if stop.is_set():
                        return
                    if not line.strip():
                        continue
                    result = jsonlib.loads(line).get('result') or {}
                    for event in result.get('events') or ():
                        on_key(base64.b64decode(event['kv']['key']))
            except requests.exceptions.RequestException:
                return      # idle for ``idle`` seconds, or the member left

    def _authenticate(self, index: int) -> str:
        """A token from the member at ``index`` (etcd's
        ``auth/authenticate``).

        :raises Etcd3Exception: the member refused the credentials (the
            message names the user, never the password).
        :raises requests.RequestException: the member cannot be reached.
        """
        user, password = self._credentials
        name = self.endpoints.names[index]
        resp = self.session.post(
            self.endpoints.urls[index] + self.api_path + 'auth/authenticate',
            json={'name': user, 'password': password}, timeout=self.timeout)
        if resp.status_code != 200:
            raise _error(Etcd3Exception, 'etcd member %s refused user %r: %s'
                         % (name, user, _short(resp.text)))
        token = resp.json().get('token')
        if not token:
            raise _error(Etcd3Exception, 'etcd member %s gave user %r no '
                         'token: is authentication enabled?' % (name, user))
        return token


def new_session(ca_cert: str | None = None, cert_key: str | None = None,
                cert_cert: str | None = None) -> requests.Session:
    """A session that ignores REQUESTS_CA_BUNDLE and proxies from the
    environment (they would override the configured CA)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_cert or True
    if cert_key and cert_cert:
        session.cert = (cert_cert, cert_key)
    return session


def _base_url(protocol: str, host: str, port: int) -> str:
    return '%s://%s:%d' % (protocol, '[%s]' % host if ':' in host else host,
                           port)


def _path_of(url: str) -> str:
    """``/v3/kv/range`` of ``http://host:port/v3/kv/range``."""
    rest = url.split('://', 1)[-1]
    slash = rest.find('/')
    return rest[slash:] if slash >= 0 else '/'


def _causes(exc: BaseException) -> typing.Iterator[BaseException]:
    """``exc``, what it wraps (requests and urllib3 put the cause in
    ``args`` and ``reason``), and its ``__cause__``/``__context__``."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(arg for arg in getattr(current, 'args', ())
                    if isinstance(arg, BaseException))
        todo.extend(c for c in (getattr(current, 'reason', None),
                                current.__cause__, current.__context__)
                    if isinstance(c, BaseException))


def _not_sent(exc: requests.exceptions.RequestException) -> bool:
    """True if the request surely never reached etcd."""
    if isinstance(exc, (requests.exceptions.ConnectTimeout,
                        requests.exceptions.SSLError)):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    # urllib3's NewConnectionError: the connection was never made.
    unsent = ('NewConnectionError', 'NameResolutionError')
    return any(type(c).__name__ in unsent
               or isinstance(c, ConnectionRefusedError)
               for c in _causes(exc))


def _mapped(exc: requests.exceptions.RequestException, name: str,
            timeout: float | None) -> Etcd3Exception:
    """etcd3gw's exception for ``exc``, worded for an operator."""
    text = describe_request_error(exc, name, timeout)
    if isinstance(exc, requests.exceptions.Timeout):
        return _error(ConnectionTimeoutError, text)
    return _error(ConnectionFailedError, text)


def describe_request_error(exc: BaseException, name: str,
                           timeout: float | None = None) -> str:
    """A few words on why a request to ``name`` failed."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return 'no connection to etcd member %s within %ss' % (name, timeout)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return 'etcd member %s did not answer within %ss' % (name, timeout)
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError):
            return 'TLS with etcd member %s failed: %s' % (
                name, getattr(cause, 'reason', None) or _short(str(cause)))
        if type(cause).__name__ == 'NameResolutionError':
            return 'cannot resolve etcd member %s' % name
        if isinstance(cause, OSError) and cause.errno in _ERRNO_WORDS:
            return 'etcd member %s: %s' % (name, _ERRNO_WORDS[cause.errno])
        if type(cause).__name__ in ('RemoteDisconnected', 'ProtocolError'):
            return 'etcd member %s closed the connection' % name
    return 'request to etcd member %s failed (%s)' % (name,
                                                      type(exc).__name__)


def _reply(resp: requests.Response, name: str) -> typing.Any:
    """The decoded reply, or etcd3gw's exception for its status."""
    if resp.status_code == 200:
        return resp.json()
    detail = 'etcd member %s answered HTTP %d: %s' % (
        name, resp.status_code, _short(resp.text))
    cls = {408: ConnectionTimeoutError, 504: ConnectionTimeoutError,
           412: etcd_exceptions.PreconditionFailedError,
           500: etcd_exceptions.InternalServerError}.get(resp.status_code,
                                                         Etcd3Exception)
    raise _error(cls, detail)


def _error(cls: type[Etcd3Exception], text: str) -> Etcd3Exception:
    """etcd3gw's exception whose ``str()`` (what tooz reports) and
    ``detail_text`` (what the store reports) are both ``text``."""
    return cls(text, text)


def _short(text: str, limit: int = 200) -> str:
    text = ' '.join((text or '').split())
    return text if len(text) <= limit else text[:limit] + '...'


def credentials(parts: urllib.parse.SplitResult) -> tuple[str, str] | None:
    """``(user, password)`` of ``etcd3+http://USER:PASSWORD@...``
    (percent-decoded), or None.

    :raises ConfigError: a user without a password or the reverse.
    """
    if '@' not in parts.netloc:
        return None
    user, sep, password = parts.netloc.rpartition('@')[0].partition(':')
    user, password = (urllib.parse.unquote(user),
                      urllib.parse.unquote(password))
    if not (user and sep and password):
        raise exceptions.ConfigError(
            'etcd credentials in the URL are USER:PASSWORD@ (percent-'
            'encode ":", "@", "/" and "%" in them); one is missing')
    return user, password


def for_tooz(url: str) -> tuple[str, FailoverClient]:
    """``(url for tooz, client)`` for a coordination URL that may list
    several members: tooz is given the first member only (its driver takes
    one host) and its client is to be replaced by the returned one, built
    with tooz's own URL options (``timeout``, ``api_version``, TLS).

    :raises ConfigError: the member list is malformed.
    """
    parts = urllib.parse.urlsplit(url)
    protocol = 'https' if parts.scheme.endswith('https') else 'http'
    endpoints = parse_endpoints(parts)
    options = dict(urllib.parse.parse_qsl(parts.query))
    try:
        timeout = int(options.get('timeout', TOOZ_TIMEOUT))
    except ValueError:
        raise exceptions.ConfigError(
            'timeout=%r in the coordination URL must be a whole number of '
            'seconds' % options['timeout']) from None
    api_version = options.get('api_version')
    client = FailoverClient(
        Endpoints(endpoints, protocol), protocol=protocol, timeout=timeout,
        api_path='/%s/' % api_version if api_version else None,
        session=new_session(options.get('ca_cert'), options.get('cert_key'),
                            options.get('cert_cert')),
        credentials=credentials(parts))
    host, port = endpoints[0]
    first = parts._replace(netloc='%s:%d' % (
        '[%s]' % host if ':' in host else host, port))
    return urllib.parse.urlunsplit(first), client
