"""The state store: build one :class:`KVStore` per process from a URL.

``get_kv_store(url)`` picks the engine from the URL scheme and caches the
store per process. Octavia's API forks workers and the driver agent forks
provider agents, and neither sqlite connections nor HTTP sessions survive a
fork, so a child process always gets a store of its own.

This module also holds the few pieces both engines share, so that they apply
the same rules: argument checks for :meth:`KVStore.commit` and
:class:`PerThread`, the "one connection per thread and per process" holder.

Engines are imported lazily: a sqlite deployment never imports etcd3gw.
"""

from __future__ import annotations

import logging
import os
import threading
import typing
import urllib.parse
import weakref

from multilb import exceptions
from multilb import redact
from multilb.store.base import KeyValue
from multilb.store.base import KVStore

__all__ = ['KVStore', 'KeyValue', 'get_kv_store']

LOG = logging.getLogger(__name__)

ACCEPTED_URLS = (
    'sqlite:////absolute/path/state.db',
    'sqlite:///relative/path/state.db',
    'etcd3+http://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][?timeout=5'
    '&prefix=/multilb/&api_version=v3]',
    'etcd3+https://HOST:PORT[,HOST:PORT...]?ca_cert=PATH&cert_key=PATH'
    '&cert_cert=PATH',
)

MAX_COMMIT_OPS = 128
"""Most checks, and most puts plus deletes, in one commit.

etcd refuses larger transactions (its ``--max-txn-ops`` defaults to 128);
the sqlite engine enforces the same limit so that code tested on sqlite
also runs on etcd."""

_T = typing.TypeVar('_T')

_cache: dict[str, KVStore] = {}
_cache_pid = os.getpid()
_cache_lock = threading.Lock()


def get_kv_store(url: str) -> KVStore:
    """Return this process's store for ``url``, building it on first use.

    :raises ConfigError: the URL is malformed or names no known engine.
    :raises StoreUnavailable: the engine could not be set up (sqlite only;
        etcd connects lazily).
    """
    global _cache_pid
    with _cache_lock:
        if _cache_pid != os.getpid():
            _forget_inherited_stores()
            _cache_pid = os.getpid()
        store = _cache.get(url)
        if store is None:
            store = _build(url)
            _cache[url] = store
        return store


def _forget_inherited_stores() -> None:
    """Drop the parent's stores in a freshly forked child.

    ``close()`` only releases the child's copies of the parent's file
    descriptors; the parent's connections are not affected.
    """
    for store in _cache.values():
        store.close()
    _cache.clear()


def _reset_locks_in_child() -> None:
    # Another thread may have held a lock at fork time; nobody in the child
    # would ever release it.
    global _cache_lock
    _cache_lock = threading.Lock()
    for holder in list(_per_thread_holders):
        holder._lock = threading.Lock()


_per_thread_holders: weakref.WeakSet[PerThread] = weakref.WeakSet()
os.register_at_fork(after_in_child=_reset_locks_in_child)


def _build(url: str) -> KVStore:
    parts = split_url(url)
    if parts.scheme == 'sqlite':
        from multilb.store import sqlite
        store = sqlite.from_url(parts)
    elif parts.scheme in ('etcd3+http', 'etcd3+https'):
        from multilb.store import etcd
        store = etcd.from_url(parts)
    else:
        raise exceptions.ConfigError(
            'Unsupported state store URL scheme %r in %s. Accepted forms: %s'
            % (parts.scheme, redact_url(url), '; '.join(ACCEPTED_URLS)))
    LOG.info('Using state store %s', redact_url(url))
    return store


def split_url(url: str) -> urllib.parse.SplitResult:
    """Split a store URL, or raise :class:`ConfigError`."""
    if not isinstance(url, str) or not url.strip():
        raise exceptions.ConfigError(
            'The state store URL is empty. Accepted forms: %s'
            % '; '.join(ACCEPTED_URLS))
    try:
        parts = urllib.parse.urlsplit(url.strip())
        if ',' not in parts.netloc:  # etcd members: etcd.from_url checks
            parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise exceptions.ConfigError(
            'Malformed state store URL %s: %s' % (redact_url(url), exc)
        ) from None
    return parts


def redact_url(url: str) -> str:
    """``url`` with its user info and password-like query values as
    ``***`` (:func:`multilb.redact.url`)."""
    return redact.url(url)


def url_options(parts: urllib.parse.SplitResult,
                allowed: typing.Iterable[str]) -> dict[str, str]:
    """Return the query options of a store URL, each given at most once."""
    allowed = sorted(allowed)
    try:
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True,
                                       strict_parsing=bool(parts.query))
    except ValueError:
        # The query is not quoted back: it might hold a secret.
        raise exceptions.ConfigError(
            'Malformed query in the %s state store URL; allowed options: %s'
            % (parts.scheme, ', '.join(allowed) or 'none')) from None
    options: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            raise exceptions.ConfigError(
                'Unknown option %r in %s state store URL; allowed options: %s'
                % (name, parts.scheme, ', '.join(allowed) or 'none'))
        if name in options:
            raise exceptions.ConfigError(
                'Option %r is given twice in the state store URL' % name)
        options[name] = value
    return options


def check_key(key: str, *, prefix: bool = False) -> None:
    """Reject keys the engines would not treat alike.

    Keys are printable ASCII so that both engines store and sort them the
    same way. Only a prefix may be empty.
    """
    if not isinstance(key, str):
        raise TypeError('store keys are str, not %s' % type(key).__name__)
    if not key and not prefix:
        raise ValueError('store keys must not be empty')
    if not (key.isascii() and key.isprintable()):
        raise ValueError('store keys must be printable ASCII: %r' % key)


def normalize_commit(
        checks: typing.Mapping[str, int | None] | None,
        puts: typing.Mapping[str, str] | None,
        deletes: typing.Iterable[str] | None,
) -> tuple[dict[str, int | None], dict[str, str], list[str]]:
    """Validate the arguments of :meth:`KVStore.commit` and copy them.

    :raises TypeError: a key or a value is not a str, or ``deletes`` is a
        single str.
    :raises ValueError: a version is not a positive int, a key is both put
        and deleted, or the commit is larger than :data:`MAX_COMMIT_OPS`.
    """
    checks = dict(checks or {})
    puts = dict(puts or {})
    if isinstance(deletes, (str, bytes)):
        raise TypeError('deletes must be an iterable of keys, not one key')
    deletes = list(dict.fromkeys(deletes or ()))
    for key in (*checks, *puts, *deletes):
        check_key(key)
    for key, version in checks.items():
        _check_version(key, version)
    for key, value in puts.items():
        if not isinstance(value, str):
            raise TypeError('value of %r must be str, not %s'
                            % (key, type(value).__name__))
    both = puts.keys() & set(deletes)
    if both:
        raise ValueError('keys both put and deleted: %s' % sorted(both))
    writes = len(puts) + len(deletes)
    if len(checks) > MAX_COMMIT_OPS or writes > MAX_COMMIT_OPS:
        raise ValueError('a commit takes at most %d checks and %d puts plus '
                         'deletes' % (MAX_COMMIT_OPS, MAX_COMMIT_OPS))
    return checks, puts, deletes


def _check_version(key: str, version: int | None) -> None:
    # Version 0 would match an absent key on etcd but never on sqlite.
    if version is None:
        return
    if (isinstance(version, bool) or not isinstance(version, int)
            or version < 1):
        raise ValueError('check of %r needs a version from a KeyValue or '
                         'None, not %r' % (key, version))


class PerThread(typing.Generic[_T]):
    """One resource (connection, HTTP session) per thread and per process.

    Resources are created lazily by ``factory`` and remembered so that
    :meth:`close` can release all of them. Resources of threads that have
    ended are closed when the next one is created. In a forked child the
    parent's resources are closed (which releases only the child's copies)
    and never used.
    """

    def __init__(self, factory: typing.Callable[[], _T],
                 closer: typing.Callable[[_T], None]) -> None:
        self._factory = factory
        self._closer = closer
        self._local = threading.local()
        self._lock = threading.Lock()
        self._owned: list[tuple[threading.Thread, _T]] = []
        self._pid = os.getpid()
        self._generation = 0
        _per_thread_holders.add(self)

    def get(self) -> _T:
        """Return the calling thread's resource, creating it if needed."""
        entry = getattr(self._local, 'entry', None)
        if entry is not None and entry[0] == (os.getpid(), self._generation):
            return entry[1]
        self._forget_parent()
        resource = self._factory()
        with self._lock:
            self._prune_dead_threads()
            self._owned.append((threading.current_thread(), resource))
            self._local.entry = ((os.getpid(), self._generation), resource)
        return resource

    def close(self) -> None:
        """Close every resource of this process; later calls reopen."""
        self._forget_parent()
        with self._lock:
            owned, self._owned = self._owned, []
            self._generation += 1
        self._close_all(owned)

    def _forget_parent(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            owned, self._owned = self._owned, []
            self._pid = os.getpid()
            self._generation += 1
        LOG.debug('Closing %d store connection(s) inherited from the parent '
                  'process', len(owned))
        self._close_all(owned)

    def _prune_dead_threads(self) -> None:
        dead = [item for item in self._owned if not item[0].is_alive()]
        if dead:
            self._owned = [item for item in self._owned
                           if item[0].is_alive()]
            self._close_all(dead)

    def _close_all(self, owned: list[tuple[threading.Thread, _T]]) -> None:
        for _thread, resource in owned:
            try:
                self._closer(resource)
            except Exception:  # close() must not raise
                LOG.debug('Ignoring an error while closing a store '
                          'connection', exc_info=True)
