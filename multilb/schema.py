"""The state store's key layout version (:data:`multilb.keys.SCHEMA_VERSION`).

A store records the version of the layout it holds under
:func:`multilb.keys.schema_key`. Every agent records it on a store that has
none (a fresh store, or one from before versions were recorded, whose
layout is version 1) and refuses to drive clusters on a store of another
version: a store upgraded by a newer multilb is never written in the old
layout by an agent that was not upgraded. ``multilb-manage store upgrade``
records the version and runs the migrations from older versions
(:data:`MIGRATIONS`); ``multilb-status upgrade check`` reports a mismatch.

Rolling upgrade: agents of a multilb with the same ``SCHEMA_VERSION`` may
run side by side. One that raises it is started after every agent of the
older version has stopped, with ``store upgrade`` run in between.
"""

from __future__ import annotations

import json
import logging
import time

from multilb import exceptions
from multilb import keys

LOG = logging.getLogger(__name__)

MIGRATIONS = {}
"""``{from_version: f(kv)}``: each migrates a store one version up, in one
commit or idempotently. Empty: version 1 is the first layout."""


def read(kv):
    """``{"version": int, "at": float}`` the store records, or None."""
    entry = kv.get(keys.schema_key())
    return json.loads(entry.value) if entry else None


def check(version):
    """``version`` if this multilb reads that key layout.

    :raises StoreSchemaError: naming what to do.
    """
    if version == keys.SCHEMA_VERSION:
        return version
    if isinstance(version, int) and version > keys.SCHEMA_VERSION:
        raise exceptions.StoreSchemaError(
            'the state store holds key layout version %d, newer than this '
            'multilb reads (%d): a newer multilb upgraded it; upgrade '
            'multilb on this host too' % (version, keys.SCHEMA_VERSION))
    raise exceptions.StoreSchemaError(
        'the state store holds key layout version %r, older than this '
        'multilb reads (%d): stop the agents of the older multilb and run '
        'multilb-manage store upgrade' % (version, keys.SCHEMA_VERSION))


def record(kv):
    """Check the store's version; record this multilb's on a store without
    one. Idempotent.

    :returns: the version the store holds.
    :raises StoreSchemaError: the store holds another version.
    :raises StoreUnavailable: the store could not be reached.
    """
    for _attempt in range(3):
        found = read(kv)
        if found is not None:
            return check(found.get('version'))
        if kv.commit(checks={keys.schema_key(): None}, puts={
                keys.schema_key(): json.dumps({
                    'version': keys.SCHEMA_VERSION, 'at': time.time()})}):
            LOG.info('State store: recorded key layout version %d',
                     keys.SCHEMA_VERSION)
            return keys.SCHEMA_VERSION
    raise exceptions.StoreUnavailable('the schema key kept changing')


def upgrade(kv):
    """Migrate the store to :data:`multilb.keys.SCHEMA_VERSION`.

    :returns: ``(version before, [steps done])``; the version before is
        None on a store that recorded none.
    :raises StoreSchemaError: a newer layout, or one no migration starts
        from.
    """
    found = read(kv)
    before = found.get('version') if found else None
    version, steps = before if before is not None else 1, []
    while version != keys.SCHEMA_VERSION:
        if not isinstance(version, int) or version > keys.SCHEMA_VERSION \
                or version not in MIGRATIONS:
            check(version)      # raises, naming the version
        MIGRATIONS[version](kv)
        steps.append('%d -> %d' % (version, version + 1))
        version += 1
        kv.commit(puts={keys.schema_key(): json.dumps(
            {'version': version, 'at': time.time()})})
    if before is None:
        record(kv)
    return before, steps
