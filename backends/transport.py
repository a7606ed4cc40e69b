"""HTTP(S) to one appliance endpoint, and each cluster's circuit breaker:
the only home of ``requests`` and ``pybreaker``.

Every backend that speaks a REST API to its appliances goes through a
:class:`Transport`; it turns the wire into the two outcomes the agent
understands (``backends.exceptions``):

* :class:`BackendUnavailable` (transient, the agent retries): cannot
  connect, timed out, TLS failure, any 5xx, 408 and 429 (with or without
  ``Retry-After``);
* :class:`BackendRejected` (permanent): any other 4xx, and redirects
  (an admin API that redirects is misconfigured; we never follow one).

Both carry ``status`` (None when no response), ``body`` (parsed JSON, text
or None) and ``retry_after`` (seconds or None). A vendor client gives its
transports a ``classify`` function that turns what its appliance gets wrong
into what it means *before* the cluster's breaker counts it (Caddy answers
500 to an invalid config: :func:`backends.caddy.client.classify` makes that
a rejection, which never counts against the cluster).

Credentials: an endpoint may carry user info (``http://user:pw@node``, sent
as Basic authorization) and query parameters (``?token=...``, sent with
every request). Messages name the endpoint as ``scheme://host:port``
(:func:`multilb.redact.endpoint`); every other text in them (the library's
reason, the appliance's answer, a redirect target) has the endpoint's
secrets replaced by ``***``, and so have the records of urllib3's loggers
(which log request paths with their query).

Endpoints are ``http://``, ``https://`` or ``unix:///abs/path/admin.sock``:
HTTP over that unix socket (an admin API no TCP client can reach: no
tenant's member, health monitor or listener can point at it). A unix
transport sends ``Host: localhost`` and behaves as a TCP one in every other
way: read timeouts, retries (a failed connect for every method), the
breaker, the error mapping. A unix ``connect()`` never waits: no socket
file is "cannot connect", no process behind it "connection refused", a
full backlog "cannot connect (... temporarily unavailable)", all at once.
Its messages name it ``unix:///abs/path/admin.sock``.

Facts of requests and urllib3 this module is built on:

* ``trust_env = False``: otherwise ``REQUESTS_CA_BUNDLE`` /
  ``CURL_CA_BUNDLE`` (set on many hosts) silently override
  ``Session.verify``, and proxy variables apply to the admin network;
* requests has no default timeout: every call passes ``(connect, read)``;
  the read timeout applies to each socket read, so the worst case of one
  call is about ``(connect + read) * (retries + 1)`` plus the backoff;
* with a ``Retry`` mounted, a read timeout surfaces as
  ``requests.ConnectionError`` (psf/requests #5517), so we catch
  ``RequestException`` and describe the underlying reason;
* retries (urllib3 ``Retry``) only for idempotent methods on read errors
  and retry statuses; a failed *connect* is retried for every method (the
  request was never sent); ``raise_on_status=False`` so the last response
  is classified here; ``Retry-After`` is honoured but capped;
* one ``Session`` per (endpoint, process), created lazily so a forked
  child never shares the parent's sockets; the connection pool holds
  ``pool_maxsize`` connections (size it to the worker threads per cluster).

:class:`ClusterBreaker` wraps a pybreaker ``CircuitBreaker`` per cluster:
pybreaker holds a lock around every protected
call, which would make a cluster's concurrent calls serial, so the call
itself runs outside pybreaker and only its outcome goes through it (a
function that returns or re-raises at once). Only failures of the cluster
count (no answer, timeout, 5xx without ``Retry-After``); rejections (4xx,
and whatever ``classify`` made a rejection), "busy, retry later" (429/503
with ``Retry-After``) and errors ``classify`` marked ``cluster_failure =
False`` (the node answered, about one request: a listener address in use)
do not. While open,
calls fail at once with :class:`BackendUnavailable`; after
``reset_timeout`` one trial call at a time goes through. Its state and
opening time are written through a ``store`` (``load()`` / ``save(dict)``)
on every transition, so the scheduler of every API worker sees it and an
agent taking the cluster over starts from it; counters stay in memory (per
call cost: nothing but memory).
"""

import datetime

import logging
import os
import socket
import threading
import time

import pybreaker
import requests
from requests import adapters
from urllib3 import connection as urllib3_connection
from urllib3 import connectionpool as urllib3_connectionpool
from urllib3 import exceptions as urllib3_exceptions
from urllib3.util import retry as urllib3_retry

from backends import exceptions
from multilb import redact

LOG = logging.getLogger(__name__)

# urllib3 logs request paths with their query (a retry is a WARNING)
_LOG_SCRUBBER = redact.LogScrubber().install(
    'urllib3.connectionpool', 'urllib3.connection', 'urllib3.util.retry')

IDEMPOTENT_METHODS = frozenset({'GET', 'PUT', 'DELETE', 'HEAD', 'OPTIONS'})
RETRY_STATUSES = (502, 503, 504)
TRANSIENT_4XX = frozenset({408, 429})
MAX_ERROR_TEXT = 500


class _Retry(urllib3_retry.Retry):
    """``Retry`` whose ``Retry-After`` wait is capped at ``retry_after_cap``
    (a class attribute: urllib3 re-creates the object on every retry from
    its constructor arguments), and which ignores an unparsable header
    instead of raising.  urllib3's own ``retry_after_max`` (default 6 h)
    is recent; this works with every urllib3 that requests >= 2.31 takes."""

    retry_after_cap = 5.0

    def get_retry_after(self, response):
        try:
            seconds = super().get_retry_after(response)
        except Exception:  # InvalidHeader: not a number nor a date
            return None
        if seconds is None:
            return None
        return min(seconds, self.retry_after_cap)


# -- HTTP over a unix socket -------------------------------------------------

UNIX_PREFIX = 'unix://'
# What requests sees of a unix endpoint: the adapter mounted on this prefix
# ignores the host and dials the transport's socket; urllib3 sends the
# host as the Host header (Caddy checks no Host on a unix admin socket,
# but Go's HTTP server refuses a request without one).
_UNIX_BASE = 'http+unix://localhost'
# sun_path holds 108 bytes, the terminating NUL included
_UNIX_PATH_MAX = 107


def unix_socket_path(endpoint):
    """The socket path of a ``unix:///abs/path`` endpoint, None for any
    other scheme.

    :raises ValueError: a ``unix://`` endpoint that is not ``unix://``
        followed by an absolute path of at most 107 bytes (no host, query
        nor fragment).
    """
    endpoint = str(endpoint)
    if endpoint[:len(UNIX_PREFIX)].lower() != UNIX_PREFIX:
        return None
    path = endpoint[len(UNIX_PREFIX):]
    if not path.startswith('/') or '?' in path or '#' in path:
        raise ValueError(
            '%r is not unix:// followed by the absolute path of a socket '
            '(unix:///run/caddy/admin.sock)' % redact.url(endpoint))
    path = '/' + path.strip('/')
    if len(os.fsencode(path)) > _UNIX_PATH_MAX:
        raise ValueError('%r: a unix socket path has at most %d bytes' % (
            redact.url(endpoint), _UNIX_PATH_MAX))
    return path


class _UnixConnection(urllib3_connection.HTTPConnection):
    """urllib3's HTTP connection, to ``socket_path`` instead of host:port
    (urllib3 maps the errors raised here as for TCP: a failed connect is
    retried for every method)."""

    def __init__(self, *args, socket_path, **kwargs):
        self.socket_path = socket_path
        super().__init__(*args, **kwargs)

    def __repr__(self):   # urllib3's errors start with it
        return 'unix socket %s' % self.socket_path

    __str__ = __repr__

    def _new_conn(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if self.timeout is None or isinstance(self.timeout,
                                                  (int, float)):
                sock.settimeout(self.timeout)   # the connect timeout
            sock.connect(self.socket_path)
        except socket.timeout as exc:
            sock.close()
            raise urllib3_exceptions.ConnectTimeoutError(
                self, 'connect to %s timed out' % self.socket_path) from exc
        except OSError as exc:
            sock.close()
            raise urllib3_exceptions.NewConnectionError(
                self, 'Failed to establish a new connection: %s' % exc
            ) from exc
        return sock


class _UnixConnectionPool(urllib3_connectionpool.HTTPConnectionPool):
    ConnectionCls = _UnixConnection


class _UnixAdapter(adapters.HTTPAdapter):
    """A requests adapter whose every request goes to one unix socket
    (retries, timeouts and pool size as for the HTTP adapter)."""

    def __init__(self, socket_path, **kwargs):
        self.socket_path = socket_path
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize,
                         block=adapters.DEFAULT_POOLBLOCK, **pool_kwargs):
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.unix_pool = _UnixConnectionPool(
            _UNIX_BASE.rpartition('/')[2], maxsize=maxsize, block=block,
            socket_path=self.socket_path)

    def get_connection_with_tls_context(self, request, verify, proxies=None,
                                        cert=None):
        return self.unix_pool

    def get_connection(self, url, proxies=None):   # requests < 2.32
        return self.unix_pool

    def close(self):
        super().close()
        self.unix_pool.close()


_DROPPED = ('connection closed without a response', 'connection reset')
_REPLAYABLE = frozenset(('GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'))


def _reason(exc):
    """A short description of a requests exception, without the URL."""
    inner = exc.args[0] if exc.args else None
    # requests wraps urllib3's MaxRetryError, which holds the real reason
    cause = getattr(inner, 'reason', None) or inner or exc
    text = str(cause)
    # urllib3 messages embed "<... object at 0x..>: "; keep the tail
    tail = text.rsplit('>: ', 1)[-1][:200]
    low = text.lower()
    if isinstance(exc, requests.exceptions.SSLError) or isinstance(
            cause, urllib3_exceptions.SSLError):
        return 'TLS error (%s)' % tail
    if 'refused' in low:
        return 'connection refused'
    if isinstance(cause, urllib3_exceptions.NewConnectionError):
        # (a subclass of ConnectTimeoutError in urllib3 2)
        return 'cannot connect (%s)' % tail
    if isinstance(exc, requests.ConnectTimeout) or isinstance(
            cause, urllib3_exceptions.ConnectTimeoutError):
        return 'connect timed out'
    if isinstance(exc, requests.ReadTimeout) or isinstance(
            cause, urllib3_exceptions.ReadTimeoutError):
        return 'read timed out'
    if 'reset by peer' in low:
        return 'connection reset'
    if 'without response' in low:
        return 'connection closed without a response'
    if 'timed out' in low:
        return 'timed out'
    return 'connection failed (%s)' % tail


def _parse(response):
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _error_text(body):
    if isinstance(body, dict):
        for key in ('error', 'message', 'detail', 'faultstring'):
            if body.get(key):
                body = body[key]
                break
    if body is None or body == '':
        return '(no details)'
    text = body if isinstance(body, str) else repr(body)
    text = ' '.join(text.split())
    if len(text) > MAX_ERROR_TEXT:
        text = text[:MAX_ERROR_TEXT] + '...'
    return text


def _retry_after(response):
    value = response.headers.get('Retry-After')
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: callers only need "come back later"


class Transport:
    """Requests to one appliance endpoint (e.g. ``https://10.0.0.5:2019``).

    :param endpoint: base URL; request paths are appended to it. Or
        ``unix:///abs/path``: HTTP over that unix socket (see the module
        doc; ``ca_bundle``, ``client_cert`` and ``verify`` do not apply).
    :param connect_timeout: seconds to establish a connection.
    :param read_timeout: seconds to wait for each read of the response.
    :param retries: extra attempts for idempotent methods (and for failed
        connects of any method); 0 disables retries.
    :param ca_bundle: CA file (or directory) to verify the appliance with;
        overrides ``verify``.
    :param client_cert: ``'cert_and_key.pem'`` or ``(cert, key)`` for mTLS.
    :param verify: True (system trust store), False (no verification) or a
        CA path, as in requests.
    :param backoff_factor, backoff_max: urllib3 backoff between retries.
    :param retry_after_max: cap on a ``Retry-After`` wait between retries.
    :param retry_statuses: statuses that make an idempotent call retry.
    :param pool_maxsize: connections kept to the endpoint (threads).
    :param breaker: the cluster's :class:`ClusterBreaker` (shared by the
        transports of its nodes), or None.
    :param classify: ``callable(error) -> error`` applied to every
        :class:`BackendError` before the breaker counts it and it is
        raised (the vendor client's reading of its appliance's answers).
    """

    def __init__(self, endpoint, connect_timeout, read_timeout, retries=2,
                 ca_bundle=None, client_cert=None, verify=True,
                 backoff_factor=0.1, backoff_max=2.0, retry_after_max=5.0,
                 retry_statuses=RETRY_STATUSES, pool_maxsize=10,
                 breaker=None, classify=None):
        self.endpoint = endpoint.rstrip('/')
        self.name = redact.endpoint(self.endpoint)
        self._secrets = _LOG_SCRUBBER.protect(self.endpoint)
        base, _sep, self._query = self.endpoint.partition('?')
        self._base = base.partition('#')[0].rstrip('/')
        self.timeout = (float(connect_timeout), float(read_timeout))
        self.retries = int(retries)
        self.verify = ca_bundle if ca_bundle else verify
        self.client_cert = client_cert
        self.backoff_factor = backoff_factor
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.retry_statuses = tuple(retry_statuses)
        self.pool_maxsize = pool_maxsize
        self.breaker = breaker
        self.classify = classify
        self._lock = threading.Lock()
        self._session = None
        self._pid = None
        # None, or the socket of a unix:///abs/path endpoint
        self.socket_path = unix_socket_path(endpoint)
        if self.socket_path:
            self.name = UNIX_PREFIX + self.socket_path

    def __repr__(self):
        return '<Transport %s>' % self.name

    # -- session -----------------------------------------------------------

    def _new_session(self):
        retry_class = type('_Retry', (_Retry,),
                           {'retry_after_cap': self.retry_after_max})
        retry = retry_class(
            total=self.retries, connect=self.retries, read=self.retries,
            status=self.retries, other=0, redirect=0,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            status_forcelist=self.retry_statuses,
            allowed_methods=IDEMPOTENT_METHODS,
            respect_retry_after_header=True, raise_on_status=False,
            raise_on_redirect=False)
        pool = dict(max_retries=retry, pool_connections=1,
                    pool_maxsize=self.pool_maxsize, pool_block=False)
        session = requests.Session()
        session.trust_env = False
        session.headers['Accept'] = 'application/json'
        if self.socket_path:
            session.mount(_UNIX_BASE, _UnixAdapter(self.socket_path, **pool))
            return session
        adapter = adapters.HTTPAdapter(**pool)
        session.verify = self.verify
        if self.client_cert:
            session.cert = self.client_cert
        session.mount('http://', adapter)
        session.mount('https://', adapter)
        return session

    @property
    def session(self):
        """The ``requests.Session`` of this process (made on first use)."""
        pid = os.getpid()
        session = self._session
        if session is not None and self._pid == pid:
            return session
        if self._pid is not None and self._pid != pid:
            # first use in a forked child: the parent's lock may have been
            # held at fork time, and its sockets are the parent's
            self._lock = threading.Lock()
            self._session = None
        with self._lock:
            if self._session is None:
                self._session = self._new_session()
                self._pid = pid
            return self._session

    def close(self):
        """Close this process's connections. Never raises."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None and self._pid == os.getpid():
            try:
                session.close()
            except Exception:  # pragma: no cover - defensive
                LOG.debug('closing %s failed', self.name, exc_info=True)

    # -- requests ----------------------------------------------------------

    def url(self, path):
        """The endpoint's URL with ``path`` appended (before the
        endpoint's query, which every request carries)."""
        if self.socket_path:
            return '%s/%s' % (_UNIX_BASE, path.lstrip('/'))
        url = '%s/%s' % (self._base, path.lstrip('/'))
        if self._query:
            url += ('&' if '?' in url else '?') + self._query
        return url

    def request(self, method, path, json=None, headers=None):
        """Send one request; return ``(status, body)`` for a 2xx.

        ``body`` is the parsed JSON, else the text, else None when empty.

        :raises BackendUnavailable: no answer, TLS failure, 5xx, 408, 429.
        :raises BackendRejected: other 4xx, or a redirect.
        """
        if self.breaker is not None:
            return self.breaker.guard(self._request, method, path, json,
                                      headers)
        return self._request(method, path, json, headers)

    def _request(self, method, path, json, headers):
        method = method.upper()
        where = '%s %s %s' % (self.name, method, '/' + path.lstrip('/'))
        t0 = time.monotonic()
        for attempt in (1, 2):
            try:
                response = self.session.request(
                    method, self.url(path), json=json, headers=headers,
                    timeout=self.timeout, allow_redirects=False)
            except requests.RequestException as exc:
                failure = exc
            else:
                failure = None
            # A server may close or reset a kept-alive connection just as
            # a request goes out (Caddy restarts its admin endpoint at
            # every config load): no byte of an answer came, so an
            # idempotent request is sent once more at once, whatever the
            # retry settings (a hung node times out instead: not replayed).
            if not (failure is not None and attempt == 1
                    and method in _REPLAYABLE
                    and _reason(failure) in _DROPPED):
                break
        if failure is not None:
            error = exceptions.BackendUnavailable(self._scrub(
                '%s: %s (after %.1fs)' % (where, _reason(failure),
                                          time.monotonic() - t0)))
            _annotate(error, None, None, None)
            # (raised out of the except clause: the library's exception,
            # which names the URL with its query, is chained only when
            # the endpoint has no secrets)
            raise self._classified(error) from (
                None if self._secrets else failure)
        status = response.status_code
        body = _parse(response)
        if 200 <= status < 300:
            return status, body
        retry_after = _retry_after(response)
        if 300 <= status < 400:
            error = exceptions.BackendRejected(self._scrub(
                '%s: unexpected redirect (HTTP %d) to %s' % (
                    where, status,
                    redact.location(response.headers.get('Location', '?')))))
        else:
            text = '%s: HTTP %d %s: %s' % (where, status, response.reason,
                                           _error_text(body))
            if retry_after is not None:
                text += ' (retry after %gs)' % retry_after
            text = self._scrub(text)
            if status >= 500 or status in TRANSIENT_4XX:
                error = exceptions.BackendUnavailable(text)
            else:
                error = exceptions.BackendRejected(text)
        _annotate(error, status, body, retry_after)
        raise self._classified(error)

    def _scrub(self, text):
        """``text`` without the endpoint's credentials."""
        return redact.scrub(text, self._secrets)

    def _classified(self, error):
        if self.classify is None:
            return error
        return self.classify(error)


def _annotate(error, status, body, retry_after):
    error.status = status
    error.body = body
    error.retry_after = retry_after


# -- circuit breaker ----------------------------------------------------------

BREAKER_CLOSED = pybreaker.STATE_CLOSED
BREAKER_OPEN = pybreaker.STATE_OPEN
BREAKER_HALF_OPEN = pybreaker.STATE_HALF_OPEN


def counts_against_cluster(exc):
    """True for a failure of the cluster itself (see the module doc)."""
    if not isinstance(exc, exceptions.BackendUnavailable):
        return False
    if getattr(exc, 'cluster_failure', True) is False:
        return False
    status = getattr(exc, 'status', None)
    busy = status in (429, 503) and getattr(exc, 'retry_after', None)
    return not busy


def _epoch(value):
    return value.timestamp() if value else None


class _Storage(pybreaker.CircuitBreakerStorage):
    """State and opening time in memory, loaded from the shared record."""

    def __init__(self, name, record):
        super().__init__(name)
        self._state = record.get('state') or BREAKER_CLOSED
        if self._state not in (BREAKER_CLOSED, BREAKER_OPEN,
                               BREAKER_HALF_OPEN):
            self._state = BREAKER_CLOSED
        if self._state == BREAKER_HALF_OPEN:
            self._state = BREAKER_OPEN   # its trial died with its owner
        opened = record.get('opened_at')
        self._opened_at = (datetime.datetime.fromtimestamp(
            opened, datetime.timezone.utc) if opened else None)
        if self._state == BREAKER_OPEN and self._opened_at is None:
            self._opened_at = datetime.datetime.now(datetime.timezone.utc)
        self._fails = self._successes = 0

    @property
    def state(self):
        return self._state

    @state.setter
    def state(self, state):
        self._state = state

    def increment_counter(self):
        self._fails += 1

    def reset_counter(self):
        self._fails = 0

    def increment_success_counter(self):
        self._successes += 1

    def reset_success_counter(self):
        self._successes = 0

    @property
    def counter(self):
        return self._fails

    @property
    def success_counter(self):
        return self._successes

    @property
    def opened_at(self):
        return self._opened_at

    @opened_at.setter
    def opened_at(self, value):
        self._opened_at = value


class _Listener(pybreaker.CircuitBreakerListener):

    def __init__(self, owner):
        self.owner = owner

    def failure(self, cb, exc):
        self.owner.last_error = str(exc)[:MAX_ERROR_TEXT]

    def state_change(self, cb, old_state, new_state):
        self.owner._changed(old_state.name if old_state else None,
                            new_state.name)


class ClusterBreaker:
    """The circuit breaker of one appliance cluster (see the module doc).

    :param store: object with ``load() -> dict or None`` and
        ``save(dict)``, or None (state in this process only).
    :param on_change: ``callable(record)`` after each transition (logging
        and tests); the record is what ``snapshot()`` returns.
    """

    def __init__(self, name, fail_max=5, reset_timeout=30.0,
                 success_threshold=1, store=None, on_change=None):
        self.name = name
        self.store = store
        self.on_change = on_change
        record = {}
        if store is not None:
            try:
                record = store.load() or {}
            except Exception as exc:  # noqa: B902 - start closed, say why
                LOG.warning('Cluster %s: cannot load its circuit breaker '
                            'state, starting closed: %s', name, exc)
        self.last_error = record.get('last_error')
        self._storage = _Storage(name, record)
        self._trial = threading.Lock()
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=reset_timeout,
            success_threshold=success_threshold,
            exclude=[lambda exc: not counts_against_cluster(exc)],
            listeners=[_Listener(self)], state_storage=self._storage,
            name=name, throw_new_error_on_trip=False)

    @property
    def state(self):
        return self._breaker.current_state

    @property
    def reset_timeout(self):
        return self._breaker.reset_timeout

    def refusing(self):
        """True while open and its reset timeout has not elapsed: a call
        now would fail at once."""
        return self.state == BREAKER_OPEN and self._remaining() > 0

    def snapshot(self):
        """``{'state', 'opened_at', 'failures', 'last_error', 'at'}``."""
        return {'state': self.state,
                'opened_at': _epoch(self._storage.opened_at),
                'failures': self._breaker.fail_counter,
                'last_error': self.last_error, 'at': time.time()}

    def _changed(self, old, new):
        # pybreaker notifies before its storage holds the new state
        record = dict(self.snapshot(), state=new)
        log = LOG.warning if new == BREAKER_OPEN else LOG.info
        log('Cluster %s: circuit breaker %s -> %s%s', self.name, old, new,
            ' (last error: %s)' % self.last_error
            if new == BREAKER_OPEN else '')
        if self.store is not None:
            try:
                self.store.save(record)
            except Exception as exc:  # noqa: B902 - the breaker still works
                LOG.warning('Cluster %s: circuit breaker state not shared: '
                            '%s', self.name, exc)
        if self.on_change is not None:
            self.on_change(record)

    def _remaining(self):
        opened = self._storage.opened_at
        if opened is None:
            return 0.0
        elapsed = (datetime.datetime.now(datetime.timezone.utc)
                   - opened).total_seconds()
        return max(0.0, self.reset_timeout - elapsed)

    def _refuse(self):
        error = exceptions.BackendUnavailable(
            'cluster %s: circuit breaker open (last error: %s); next trial '
            'in %.0fs' % (self.name, self.last_error or 'none',
                          self._remaining()))
        _annotate(error, None, None, self._remaining() or None)
        error.breaker_open = True
        raise error

    def guard(self, func, *args, **kwargs):
        """Call ``func`` unless the breaker is open; count its outcome."""
        trial = self.state != BREAKER_CLOSED
        if trial:
            if self._remaining() > 0 or not self._trial.acquire(
                    blocking=False):
                self._refuse()
        try:
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                self._record(exc)
                raise
            self._record(None)
            return result
        finally:
            if trial:
                self._trial.release()

    def _record(self, outcome):
        def replay():
            if outcome is not None:
                raise outcome
        try:
            self._breaker.call(replay)
        except pybreaker.CircuitBreakerError:
            pass   # an answer that arrived after the breaker opened
        except Exception:  # noqa: B902 - the replayed outcome itself
            pass

    def trip(self, reason):
        """Open now (a probe found no node answering)."""
        self.last_error = str(reason)[:MAX_ERROR_TEXT]
        if self.state != BREAKER_OPEN:
            self._breaker.open()

    def refresh(self):
        """Write the current record again (keeps it fresh for readers)."""
        if self.store is not None:
            self.store.save(self.snapshot())
