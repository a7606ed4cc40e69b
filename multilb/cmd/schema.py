"""``multilb-manage store upgrade``: bring the state store's key layout to
the version this multilb reads (:mod:`multilb.schema`)."""

from __future__ import annotations

from multilb.cmd.errors import CommandError
from multilb import exceptions
from multilb import keys
from multilb import schema


def store_upgrade(ctx, args):
    try:
        before, steps = schema.upgrade(ctx.any_state.kv)
    except exceptions.StoreSchemaError as exc:
        raise CommandError(str(exc)) from None
    data = {'version_before': before, 'version': keys.SCHEMA_VERSION,
            'migrations': steps}
    if before is None:
        text = ('The store recorded no key layout version: recorded %d '
                '(its layout).\n' % keys.SCHEMA_VERSION)
    elif steps:
        text = 'Migrated the store: %s.\n' % ', '.join(steps)
    else:
        text = ('The store holds key layout version %d, the one this '
                'multilb reads: nothing to do.\n' % keys.SCHEMA_VERSION)
    return data, text


def add_parser(store_actions, add_format):
    """Register ``store upgrade`` (manage.build_parser)."""
    sub = store_actions.add_parser(
        'upgrade', help='migrate the state store to the key layout this '
        'multilb reads (run after upgrading multilb, with octavia-api and '
        'the driver agents stopped)',
        description='Records the key layout version on a store without '
        'one, runs the migrations from an older version, and refuses a '
        'newer one (exit 2). Agents refuse to drive clusters on '
        'a store of another version; multilb-status upgrade check reports '
        'it.')
    add_format(sub)
    sub.set_defaults(func=store_upgrade)
