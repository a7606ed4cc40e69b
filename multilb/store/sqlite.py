"""The sqlite engine of the state store: one file, one host, no server.

For single-host deployments and tests. Several processes on the same host
may share the file: WAL mode lets readers run while one writer commits, and
every :meth:`SqliteKVStore.commit` holds the write lock (``BEGIN
IMMEDIATE``) from its checks to its writes, so compare-and-swap is atomic
across threads and processes. The file must be on a local disk (WAL needs
shared memory between the processes).

Versions come from one revision counter stored next to the data: every
commit that writes bumps it and stamps the written keys with it, so a
version is never reused, not even after a key is deleted and re-created.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import typing
import urllib.parse

from multilb import exceptions
from multilb import store
from multilb.store import base

LOG = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT = 15.0
"""Seconds a commit waits for another writer before giving up."""

_SCHEMA = (
    'CREATE TABLE IF NOT EXISTS kv ('
    ' key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL)',
    'CREATE TABLE IF NOT EXISTS revision ('
    ' id INTEGER PRIMARY KEY CHECK (id = 0), revision INTEGER NOT NULL)',
    'INSERT OR IGNORE INTO revision (id, revision) VALUES (0, 0)',
)


def from_url(parts: urllib.parse.SplitResult) -> SqliteKVStore:
    """Build a store from ``sqlite:////abs/path`` or ``sqlite:///rel/path``.

    :raises ConfigError: the URL has a host, a query or no path.
    """
    if parts.netloc or parts.query or parts.fragment:
        raise exceptions.ConfigError(
            'A sqlite state store URL takes only a path: %s'
            % '; '.join(store.ACCEPTED_URLS[:2]))
    path = urllib.parse.unquote(parts.path)[1:]
    if not path or path.endswith('/'):
        raise exceptions.ConfigError(
            'A sqlite state store URL needs a file path: %s'
            % '; '.join(store.ACCEPTED_URLS[:2]))
    return SqliteKVStore(os.path.abspath(path))


class SqliteKVStore(base.KVStore):
    """A :class:`KVStore` in one sqlite file; see the module docstring."""

    def __init__(self, path: str,
                 busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        """Open ``path``, creating its directory and the schema if missing.

        :raises StoreUnavailable: the file cannot be created or opened.
        """
        self.path = os.path.abspath(path)
        self._busy_timeout = busy_timeout
        self._conns = store.PerThread(self._connect, _close_connection)
        with self._errors('setup'):
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._create_schema()

    def get(self, key: str) -> base.KeyValue | None:
        store.check_key(key)
        with self._errors('get'):
            row = self._conns.get().execute(
                'SELECT value, version FROM kv WHERE key = ?',
                (key,)).fetchone()
        return None if row is None else base.KeyValue(key, row[0], row[1])

    def get_prefix(self, prefix: str) -> list[base.KeyValue]:
        store.check_key(prefix, prefix=True)
        end = _prefix_end(prefix)
        # A range, not LIKE: '%' and '_' in a prefix are plain characters.
        sql = 'SELECT key, value, version FROM kv WHERE key >= ?'
        args: tuple[str, ...] = (prefix,)
        if end is not None:
            sql += ' AND key < ?'
            args += (end,)
        with self._errors('get_prefix'):
            rows = self._conns.get().execute(sql + ' ORDER BY key',
                                             args).fetchall()
        return [base.KeyValue(*row) for row in rows]

    def commit(self, checks: typing.Mapping[str, int | None] = None,
               puts: typing.Mapping[str, str] = None,
               deletes: typing.Iterable[str] = ()) -> bool:
        checks, puts, deletes = store.normalize_commit(checks, puts, deletes)
        if not (checks or puts or deletes):
            return True
        with self._errors('commit'):
            with self._write_transaction() as conn:
                if not _checks_hold(conn, checks):
                    return False
                if puts or deletes:
                    _apply(conn, puts, deletes)
        return True

    def close(self) -> None:
        self._conns.close()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions, we BEGIN ourselves.
        # check_same_thread=False only so that close() may run anywhere;
        # each connection is used by one thread.
        return sqlite3.connect(self.path, timeout=self._busy_timeout,
                               isolation_level=None, check_same_thread=False)

    def _create_schema(self) -> None:
        # A short-lived connection: a process that forks right after building
        # the store then holds no connection its children could inherit.
        conn = self._connect()
        try:
            conn.execute('PRAGMA journal_mode = WAL')
            conn.execute('BEGIN IMMEDIATE')
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute('COMMIT')
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write_transaction(self) -> typing.Iterator[sqlite3.Connection]:
        """Hold the database write lock; commit on success, else roll back.

        Leaving the block by ``return`` commits too, which is harmless: a
        failed check has written nothing.
        """
        conn = self._conns.get()
        conn.execute('BEGIN IMMEDIATE')
        try:
            yield conn
        except BaseException:
            _rollback(conn)
            raise
        try:
            conn.execute('COMMIT')
        except BaseException:
            _rollback(conn)
            raise

    @contextlib.contextmanager
    def _errors(self, operation: str) -> typing.Iterator[None]:
        """Turn sqlite and file-system errors into StoreUnavailable."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise exceptions.StoreUnavailable(
                'sqlite state store %s failed during %s: %s'
                % (self.path, operation, exc)) from exc


def _checks_hold(conn: sqlite3.Connection,
                 checks: dict[str, int | None]) -> bool:
    for key, expected in checks.items():
        row = conn.execute('SELECT version FROM kv WHERE key = ?',
                           (key,)).fetchone()
        if (row[0] if row else None) != expected:
            return False
    return True


def _apply(conn: sqlite3.Connection, puts: dict[str, str],
           deletes: list[str]) -> None:
    conn.execute('UPDATE revision SET revision = revision + 1 WHERE id = 0')
    (revision,) = conn.execute(
        'SELECT revision FROM revision WHERE id = 0').fetchone()
    conn.executemany(
        'INSERT OR REPLACE INTO kv (key, value, version) VALUES (?, ?, ?)',
        [(key, value, revision) for key, value in puts.items()])
    conn.executemany('DELETE FROM kv WHERE key = ?',
                     [(key,) for key in deletes])


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute('ROLLBACK')
    except sqlite3.Error:
        LOG.debug('Rollback failed', exc_info=True)


def _close_connection(conn: sqlite3.Connection) -> None:
    conn.close()


def _prefix_end(prefix: str) -> str | None:
    """Return the smallest string greater than every ``prefix + ...``.

    None means "no upper bound" (empty prefix). Keys are ASCII, so
    incrementing the last character is enough.
    """
    if not prefix:
        return None
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
