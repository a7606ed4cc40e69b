"""The key-value seam under multilb's state: one small interface, two engines.

Everything multilb persists (placements, the object index, pending work, the
status outbox, cluster runtime state) is built in :mod:`multilb.state` on top
of this interface, so the etcd and sqlite engines only have to agree on five
operations. Keys are ASCII strings, values are text (JSON in practice).
"""

from __future__ import annotations

import abc
import typing


class KeyValue(typing.NamedTuple):
    """One stored entry."""

    key: str
    value: str
    version: int
    """Opaque modification version of this key: it changes on every write of
    the key and is never reused for the same key while it exists. Pass it back
    in :meth:`KVStore.commit` checks for compare-and-swap."""


class KVStore(abc.ABC):
    """A transactional key-value store.

    Built once per process by :func:`multilb.store.get_kv_store` (after any
    fork) and shared by all threads of that process: every method is
    thread-safe. Every method raises
    :class:`multilb.exceptions.StoreUnavailable` when the engine cannot be
    reached; no other engine exception escapes.
    """

    @abc.abstractmethod
    def get(self, key: str) -> KeyValue | None:
        """Return the entry stored under ``key``, or None."""

    @abc.abstractmethod
    def get_prefix(self, prefix: str) -> list[KeyValue]:
        """Every entry whose key starts with ``prefix``, sorted by key."""

    @abc.abstractmethod
    def commit(self, checks: typing.Mapping[str, int | None] = None,
               puts: typing.Mapping[str, str] = None,
               deletes: typing.Iterable[str] = ()) -> bool:
        """Apply ``puts`` and ``deletes`` atomically if every check holds.

        :param checks: ``{key: version}``; a version must equal the key's
            current version, ``None`` means the key must not exist.
        :param puts: ``{key: value}`` to write.
        :param deletes: keys to remove (absent keys are ignored).
        :returns: True if the checks held and everything was applied; False
            if a check failed, in which case nothing was changed.
        """

    def watch_prefix(self, prefix: str,
                     on_change: typing.Callable[[str], None]
                     ) -> typing.Callable[[], None] | None:
        """Call ``on_change(key)`` soon after a key under ``prefix`` is
        written or deleted, from a thread of the engine's, until the
        function returned is called. A hint to act sooner: changes may be
        missed (reconnects), so nothing may depend on it. None: the
        engine cannot watch (callers poll)."""
        return None

    def close(self) -> None:
        """Release connections. Must not raise."""
