"""The etcd engine of the state store, over etcd's JSON gateway (etcd3gw).

It talks to the gateway's
raw endpoints (``kv/range``, ``kv/txn``) through ``Etcd3Client.post`` and
does its own base64 coding, because etcd3gw's helpers encode ``str`` as
latin-1, hide the revision needed to page through a range, and report a
failed transaction compare by leaving ``succeeded`` out.

* Every key lives under a root prefix (default ``/multilb/``) that callers
  never see. Keys and values travel as UTF-8 bytes.
* A commit is one etcd transaction: ``None`` checks compare
  ``create_revision == 0``, version checks compare ``mod_revision``.
  A :class:`KeyValue` version is the key's ``mod_revision``.
* ``get_prefix`` reads pages of :attr:`EtcdKVStore.page_size` keys, all at
  the revision of the first page, so the result is one snapshot.
* The URL may list every member of an etcd cluster
  (``etcd3+http://a:2379,b:2379,c:2379``); requests go to one member and
  move to the next when it fails (:mod:`multilb.store.etcd_client`).
* etcd3gw wraps a ``requests.Session``, which is not thread-safe: each
  thread (and each process) gets its own client. Sessions ignore the
  ``REQUESTS_CA_BUNDLE``/proxy environment (``trust_env = False``), which
  would otherwise override the configured CA.
* Every request has a timeout: etcd3gw's default is to wait forever.

A commit that raises :class:`StoreUnavailable` may or may not have been
applied (the reply can be lost after etcd committed); callers re-read.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import threading
import typing
import urllib.parse

from multilb import exceptions
from multilb import store
from multilb.store import base
from multilb.store import etcd_client

LOG = logging.getLogger(__name__)

WATCH_IDLE = 30.0
"""Seconds without an event after which a watch is made again."""

DEFAULT_PORT = etcd_client.DEFAULT_PORT
DEFAULT_PREFIX = '/multilb/'
DEFAULT_TIMEOUT = 5.0
API_VERSIONS = ('v3', 'v3beta', 'v3alpha')
_URL_OPTIONS = ('timeout', 'prefix', 'api_version',
                'ca_cert', 'cert_key', 'cert_cert')
_TLS_OPTIONS = ('ca_cert', 'cert_key', 'cert_cert')
_COMPACTED = 'required revision has been compacted'
_RANGE_ATTEMPTS = 3


def from_url(parts: urllib.parse.SplitResult) -> EtcdKVStore:
    """Build a store from an ``etcd3+http(s)://host:port?...`` URL.

    :raises ConfigError: a part of the URL is missing or invalid.
    """
    protocol = parts.scheme.split('+', 1)[1]
    if parts.path not in ('', '/') or parts.fragment:
        raise exceptions.ConfigError(
            'An etcd state store URL is %s or %s'
            % store.ACCEPTED_URLS[2:4])
    endpoints = etcd_client.parse_endpoints(parts)
    credentials = etcd_client.credentials(parts)
    options = store.url_options(parts, _URL_OPTIONS)
    tls = {name: options.pop(name) for name in _TLS_OPTIONS
           if name in options}
    _check_tls_options(protocol, tls)
    return EtcdKVStore(
        *endpoints[0], endpoints=endpoints, credentials=credentials,
        protocol=protocol,
        prefix=options.get('prefix', DEFAULT_PREFIX),
        timeout=_parse_timeout(options.get('timeout')),
        api_version=options.get('api_version'), **tls)


def _parse_timeout(text: str | None) -> float:
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(text)
    except ValueError:
        timeout = 0.0
    if not 0 < timeout < 3600:
        raise exceptions.ConfigError(
            'timeout=%r in the etcd state store URL must be a number of '
            'seconds between 0 and 3600' % text)
    return timeout


def _check_tls_options(protocol: str, tls: dict[str, str]) -> None:
    if tls and protocol != 'https':
        raise exceptions.ConfigError(
            '%s need an etcd3+https:// state store URL' % ', '.join(tls))
    if ('cert_key' in tls) != ('cert_cert' in tls):
        raise exceptions.ConfigError(
            'cert_key and cert_cert must be given together in the etcd '
            'state store URL')
    for name, path in tls.items():
        if not os.path.isfile(path):
            raise exceptions.ConfigError(
                '%s=%s in the etcd state store URL is not a file'
                % (name, path))


class EtcdKVStore(base.KVStore):
    """A :class:`KVStore` in etcd; see the module docstring."""

    page_size = 1000
    """Keys per range request in :meth:`get_prefix`."""

    def __init__(self, host: str, port: int = DEFAULT_PORT, *,
                 endpoints: typing.Sequence[tuple[str, int]] | None = None,
                 protocol: str = 'http', prefix: str = DEFAULT_PREFIX,
                 timeout: float = DEFAULT_TIMEOUT,
                 api_version: str | None = None,
                 ca_cert: str | None = None, cert_key: str | None = None,
                 cert_cert: str | None = None,
                 credentials: tuple[str, str] | None = None) -> None:
        """Remember where etcd is; connections are opened on first use.

        :param endpoints: every member ``(host, port)`` of the etcd
            cluster, in the order to try them; default ``[(host, port)]``.
        :param credentials: ``(user, password)`` for etcd authentication.
        :param prefix: root of multilb's keys; ASCII, ends with '/'.
        :param api_version: gateway path ('v3' for etcd >= 3.4); None asks
            etcd once.
        :raises ConfigError: a parameter is invalid.
        """
        _check_settings(protocol, prefix, timeout, api_version)
        self._members = etcd_client.Endpoints(
            list(endpoints or [(host, port)]), protocol)
        self._protocol = protocol
        self._timeout = timeout
        self._api_path = '/%s/' % api_version if api_version else None
        self._tls = (ca_cert, cert_key, cert_cert)
        self._credentials = credentials
        self._root = prefix.encode('ascii')
        self.endpoint = '%s://%s' % (protocol, self._members.describe())
        self._clients = store.PerThread(self._new_client, _close_client)

    def get(self, key: str) -> base.KeyValue | None:
        store.check_key(key)
        with self._errors('get'):
            reply = self._post('kv/range', {'key': _b64(self._full(key))})
            items = [self._key_value(kv) for kv in reply.get('kvs', ())]
        return items[0] if items else None

    def get_prefix(self, prefix: str) -> list[base.KeyValue]:
        store.check_key(prefix, prefix=True)
        start = self._full(prefix)
        with self._errors('get_prefix'):
            return self._range_snapshot(start, _prefix_end(start))

    def commit(self, checks: typing.Mapping[str, int | None] = None,
               puts: typing.Mapping[str, str] = None,
               deletes: typing.Iterable[str] = ()) -> bool:
        checks, puts, deletes = store.normalize_commit(checks, puts, deletes)
        if not (checks or puts or deletes):
            return True
        txn = {
            'compare': [self._compare(key, version)
                        for key, version in checks.items()],
            'success': (
                [{'request_put': {'key': _b64(self._full(key)),
                                  'value': _b64(value.encode('utf-8'))}}
                 for key, value in puts.items()]
                + [{'request_delete_range': {'key': _b64(self._full(key))}}
                   for key in deletes]),
            'failure': [],
        }
        with self._errors('commit'):
            reply = self._post('kv/txn', txn)
        # etcd leaves 'succeeded' out when it is false.
        return bool(reply.get('succeeded', False))

    def close(self) -> None:
        self._clients.close()

    def _range_snapshot(self, start: bytes,
                        end: bytes) -> list[base.KeyValue]:
        """Read [start, end), again if etcd compacted away the snapshot."""
        attempts_left = _RANGE_ATTEMPTS
        while True:
            try:
                return self._range(start, end)
            except etcd_client.Etcd3Exception as exc:
                attempts_left -= 1
                if not attempts_left or _COMPACTED not in (exc.detail_text
                                                           or ''):
                    raise
                LOG.debug('etcd compacted during a paged read of %r; '
                          'reading again', start)

    def _range(self, start: bytes, end: bytes) -> list[base.KeyValue]:
        """Read [start, end) page by page at one revision."""
        items: list[base.KeyValue] = []
        request: dict[str, typing.Any] = {
            'key': _b64(start), 'range_end': _b64(end),
            'limit': self.page_size}
        while True:
            reply = self._post('kv/range', request)
            kvs = reply.get('kvs', [])
            items.extend(self._key_value(kv) for kv in kvs)
            if not reply.get('more') or not kvs:
                return items
            # Later replies carry etcd's current revision, not the pinned one.
            request.setdefault('revision', reply['header']['revision'])
            request['key'] = _b64(base64.b64decode(kvs[-1]['key']) + b'\0')

    def _compare(self, key: str, version: int | None) -> dict[str, str]:
        if version is None:
            return {'key': _b64(self._full(key)), 'target': 'CREATE',
                    'result': 'EQUAL', 'create_revision': '0'}
        return {'key': _b64(self._full(key)), 'target': 'MOD',
                'result': 'EQUAL', 'mod_revision': str(version)}

    def watch_prefix(self, prefix: str,
                     on_change: typing.Callable[[str], None]
                     ) -> typing.Callable[[], None]:
        """Call ``on_change(key)`` (from a thread of its own) soon after
        a key under ``prefix`` changes; answer the function that stops
        it. A hint only (see :meth:`base.KVStore.watch_prefix`): the
        stream is made again every :data:`WATCH_IDLE` seconds without
        events and after any failure (one second later)."""
        store.check_key(prefix, prefix=True)
        start = self._full(prefix)
        end = _prefix_end(start)
        stop = threading.Event()
        client = self._new_client()

        def changed(key: bytes) -> None:
            try:
                on_change(key[len(self._root):].decode('ascii'))
            except Exception:  # noqa: B902 - a hint must not stop watching
                LOG.exception('etcd watch of %s: handler failed', prefix)

        def watch() -> None:
            while not stop.is_set():
                try:
                    client.watch_keys(start, end, changed, stop, WATCH_IDLE)
                except (etcd_client.Etcd3Exception, OSError,
                        ValueError) as exc:
                    LOG.debug('etcd watch of %s failed, again in 1 s: %s',
                              prefix, _describe(exc))
                    stop.wait(1.0)
            _close_client(client)

        threading.Thread(target=watch, daemon=True,
                         name='multilb-watch-%s' % prefix).start()
        return stop.set

    def _post(self, path: str, payload: dict) -> dict:
        client = self._clients.get()
        reply = client.post(client.get_url(path), json=payload)
        if not isinstance(reply, dict):
            raise ValueError('etcd replied to %s with %r' % (path, reply))
        return reply

    def _full(self, key: str) -> bytes:
        return self._root + key.encode('ascii')

    def _key_value(self, kv: dict) -> base.KeyValue:
        key = base64.b64decode(kv['key'])[len(self._root):].decode('ascii')
        value = base64.b64decode(kv.get('value', '')).decode('utf-8')
        return base.KeyValue(key, value, int(kv['mod_revision']))

    def _new_client(self) -> etcd_client.FailoverClient:
        client = etcd_client.FailoverClient(
            self._members, protocol=self._protocol, timeout=self._timeout,
            api_path=self._api_path,
            session=etcd_client.new_session(*self._tls),
            credentials=self._credentials)
        if self._api_path is None:
            # Ask etcd once per store, not once per thread.
            self._api_path = client.api_path
        return client

    @contextlib.contextmanager
    def _errors(self, operation: str) -> typing.Iterator[None]:
        """Turn etcd, HTTP and malformed-reply errors into StoreUnavailable.

        Messages name the endpoint; the URL never holds credentials.
        """
        try:
            yield
        except (etcd_client.Etcd3Exception,
                etcd_client.RequestException,
                OSError, ValueError, KeyError) as exc:
            raise exceptions.StoreUnavailable(
                'etcd state store at %s failed during %s: %s'
                % (self.endpoint, operation, _describe(exc))) from exc


def _check_settings(protocol: str, prefix: str, timeout: float,
                    api_version: str | None) -> None:
    if protocol not in ('http', 'https'):
        raise exceptions.ConfigError(
            'etcd protocol must be http or https, not %r' % protocol)
    if not (prefix.startswith('/') and prefix.endswith('/') and
            prefix.isascii() and prefix.isprintable() and len(prefix) > 1):
        raise exceptions.ConfigError(
            'prefix=%r in the etcd state store URL must be printable ASCII '
            'that starts and ends with "/", like %s'
            % (prefix, DEFAULT_PREFIX))
    if not timeout > 0:
        raise exceptions.ConfigError('etcd timeout must be positive')
    if api_version is not None and api_version not in API_VERSIONS:
        raise exceptions.ConfigError(
            'api_version=%r in the etcd state store URL must be one of %s '
            '(v3 for etcd 3.4 and later)'
            % (api_version, ', '.join(API_VERSIONS)))


def _close_client(client: etcd_client.FailoverClient) -> None:
    client.session.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode('ascii')


def _prefix_end(prefix: bytes) -> bytes:
    """Return the etcd range end that covers every key under ``prefix``."""
    # The root prefix ends with '/', so the last byte is never 0xff.
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _describe(exc: Exception) -> str:
    """A line for an operator: etcd_client's words, or the error's."""
    if isinstance(exc, etcd_client.RequestException):
        return etcd_client.describe_request_error(exc, 'etcd')
    detail = getattr(exc, 'detail_text', None)
    if not detail:
        detail = '%s: %s' % (type(exc).__name__, exc)
    detail = ' '.join(detail.split())
    if len(detail) > 300:
        detail = detail[:300] + '...'
    return detail
