"""Output of ``multilb-manage``: JSON, aligned tables, times, and the text
views of its commands (:mod:`multilb.cmd.views` and the command modules
build the data).

No third-party table library: plain text, columns separated by two spaces,
every column but the last padded to its widest cell.
"""

from __future__ import annotations

import datetime
import json


def to_json(value):
    """Stable, machine-readable JSON (sorted keys, one trailing newline)."""
    return json.dumps(value, indent=2, sort_keys=True) + '\n'


def iso(timestamp):
    """Epoch seconds -> ISO 8601 in UTC (None stays None)."""
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(
        float(timestamp), datetime.timezone.utc).isoformat(timespec='seconds')


def age(seconds):
    """A short human duration: ``4s``, ``12m``, ``3h``, ``2d``."""
    seconds = max(0, int(seconds))
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60)):
        if seconds >= size:
            return '%d%s' % (seconds // size, unit)
    return '%ds' % seconds


def table(headers, rows):
    """Aligned plain-text columns with an upper-case header line."""
    lines = [[str(h).upper() for h in headers]]
    lines += [['' if cell is None else str(cell) for cell in row]
              for row in rows]
    widths = [max(len(line[i]) for line in lines)
              for i in range(len(headers))]
    text = []
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths)]
        text.append('  '.join(cells).rstrip())
    return '\n'.join(text) + '\n'


def fields(pairs):
    """``label  value`` lines; a list value continues on indented lines."""
    pairs = list(pairs)
    width = max(len(label) for label, _value in pairs) if pairs else 0
    text = []
    for label, value in pairs:
        if isinstance(value, (list, tuple)):
            values = [str(v) for v in value] or ['none']
        else:
            values = ['none' if value in (None, '') else str(value)]
        text.append('%s  %s' % (label.ljust(width), values[0]))
        text += ['%s  %s' % (' ' * width, v) for v in values[1:]]
    return '\n'.join(line.rstrip() for line in text) + '\n'


def mapping(value):
    """``{'a': 1}`` -> ``a=1``; empty -> ``none``."""
    if not value:
        return 'none'
    return ', '.join('%s=%s' % (k, json.dumps(v) if not isinstance(v, str)
                                else v)
                     for k, v in sorted(value.items()))


# -- views of multilb-manage -------------------------------------------------

def state_text(row, reason_format=' (%s)'):
    """``draining (reason)``, ``active``, ``config-error``..."""
    if row['state'] == 'draining' and row['admin']['reason']:
        return 'draining' + reason_format % row['admin']['reason']
    return row['state']


def capacity_text(row):
    limit = row['max_loadbalancers']
    return '%d/%s' % (row['placed'], {0: 'unlimited', None: '?'}.get(
        limit, limit))


def health_text(health):
    if health['status'] == 'unknown':
        return 'unknown'
    text = health['status']
    if health['status'] == 'unreachable' and health['detail']:
        text += ': %s' % health['detail']
    if health['age_seconds'] is not None:
        text += ' (%s ago%s)' % (age(health['age_seconds']),
                                 ', stale' if health['stale'] else '')
    return text


def breaker_text(breaker):
    if breaker['state'] == 'closed':
        text = 'closed'
        if breaker['last_error'] and breaker['at']:
            text += ' (last error: %s)' % breaker['last_error']
        return text
    text = '%s since %s' % (breaker['state'].upper(), breaker['opened_at'])
    if breaker['last_error']:
        text += ': %s' % breaker['last_error']
    if breaker['stale']:
        text += ' (stale: no agent refreshed it; ignored by the scheduler)'
    return text


def outbox_text(row):
    """``3``, or ``3 (1 failing)`` when deliveries failed."""
    if row.get('outbox_failing'):
        return '%d (%d failing)' % (row['outbox'], row['outbox_failing'])
    return str(row['outbox'])


def clusters_table(rows):
    text = table(
        ['name', 'backend', 'state', 'placed/capacity', 'health', 'pending',
         'outbox'],
        [[r['name'], r['backend'] or '-', state_text(r), capacity_text(r),
          health_text(r['health']), r['pending_intents'], outbox_text(r)]
         for r in rows])
    notes = ['  %s: %s' % (r['name'], r['error']) for r in rows
             if r['error']]
    if notes:
        text += '\nclusters left out of placement:\n' + '\n'.join(notes)
        text += '\n'
    return text


def cluster_text(row):
    admin = row['admin']
    pairs = [('name', row['name']), ('backend', row['backend']),
             ('state', state_text(row))]
    if row['error']:
        pairs.append(('error', row['error']))
    if admin['changed_at']:
        pairs.append(('draining since' if row['draining'] else
                      'undrained at', '%s by %s' % (
                          admin['changed_at'], admin['changed_by'])))
    pairs += [
        ('description', row['description']),
        ('tags', ', '.join(row['tags'])),
        ('dedicated to', ', '.join(row['projects']) or 'any project'),
        ('placed/capacity', capacity_text(row)),
        ('health', health_text(row['health'])),
        ('circuit breaker', breaker_text(row['breaker'])),
        ('pending', '%d operation(s) on %d load balancer(s)' % (
            row['pending_intents'], row['pending_loadbalancers'])),
        ('outbox', '%d status update(s) not yet delivered%s' % (
            row['outbox'], ', %d failing (see outbox list)' % row[
                'outbox_failing'] if row['outbox_failing'] else '')),
    ]
    text = fields(pairs)
    lbs = row['loadbalancers']
    text += '\nload balancers (%d):\n' % len(lbs)
    if lbs:
        text += table(['id', 'project', 'created at', 'pending'],
                      [[lb['id'], lb['project_id'], lb['created_at'],
                        lb['pending_intents']] for lb in lbs])
    return text


def lb_text(data, cluster):
    pending = ['%s %s %s (recorded %s)' % (p['op'], p['type'], p['id'],
                                           p['at'])
               for p in data['pending']]
    pools = ['%s: %d member(s)%s' % (pool, len(members), (
        ' (%s)' % ', '.join(members)) if members else '')
        for pool, members in sorted(data['pools'].items())]
    return fields([
        ('id', data['id']),
        ('cluster', '%s (%s)' % (data['cluster'],
                                 state_text(cluster, ': %s'))),
        ('project', data['project_id']),
        ('created at', data['created_at']),
        ('flavor', mapping(data['flavor'])),
        ('availability zone', mapping(data['availability_zone'])),
        ('reservation', 'one slot on %s (%s placed)' % (
            data['cluster'], capacity_text(cluster))),
        ('pending', pending),
        ('outbox', '%d status update(s) not yet delivered' % data['outbox']),
        ('pools', pools),
        ('VIP', '%s (pool %s)' % (data['vip']['address'], data['vip']['pool'])
         if data.get('vip') else 'not from a multilb pool'),
        ('bound', [b.split('/', 1)[1] for b in data.get('bound') or ()]
         or 'nothing (no listener, or a backend that binds no address)'),
        ('refused', data.get('refused') or 'nothing (the cluster holds every '
         'object)'),
        ('move', move_text(data.get('move'))),
    ])


def move_text(move):
    """A move of ``lb show`` (multilb.moves), in words."""
    if not move:
        return 'none'
    text = 'from %s to %s: %s (since %s, by %s)' % (
        move['source'], move['target'], move['phase'],
        iso(move.get('started_at')), move.get('by'))
    if move.get('error'):
        text += ': ' + move['error']
    return text


def outbox_table(rows, cluster, deadline):
    """``outbox list``: one line per status update waiting for delivery."""
    if not rows:
        return 'no status update is waiting for delivery%s\n' % (
            ' on cluster %s' % cluster if cluster else '')
    text = table(
        ['cluster', 'load balancer', 'age', 'attempts', 'next retry',
         'last error'],
        [[r['cluster'], r['loadbalancer_id'], age(r['age_seconds']),
          r['attempts'], 'in %s' % age(r['next_attempt_in_seconds'])
          if (r['next_attempt_in_seconds'] or 0) >= 1 else 'now',
          r['last_error'] or '-'] for r in rows])
    return text + ('\nA status update Octavia keeps refusing is dropped %s '
                   'after its first refusal ([multilb] '
                   'status_delivery_deadline).\n' % age(deadline))
