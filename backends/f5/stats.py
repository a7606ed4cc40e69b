"""BIG-IP iControl REST statistics -> what multilb reports. Pure, no I/O.

* Traffic: a virtual server ``/<tenant>/lb_<lb>/vs_<listener>`` counts
  ``clientside.bitsIn`` / ``bitsOut`` in **bits** (Octavia wants bytes:
  divided by 8), ``clientside.curConns`` (current) and ``totConns``.
  :class:`TrafficLedger` turns the device's running totals into the
  increments ``collect_statistics`` returns; a total that went down (the
  device restarted, the virtual server was re-created) counts from zero.
* Health: a pool member's ``monitorStatus`` ``up`` -> True, ``down`` ->
  False; anything else (``unchecked``, ``checking``, ``user-down``) gives
  no verdict. Members are matched by address and port (a route domain
  suffix ``%N`` is ignored).
"""

from __future__ import annotations

from backends import types

VS_PREFIX = 'vs_'
APP_PREFIX = 'lb_'
POOL_PREFIX = 'pool_'


def listener_of(path):
    """``(lb id, listener id)`` of a virtual server path multilb
    declared, else None."""
    parts = (path or '').strip('/').split('/')
    if len(parts) != 3 or not parts[1].startswith(APP_PREFIX) or \
            not parts[2].startswith(VS_PREFIX):
        return None
    return parts[1][len(APP_PREFIX):], parts[2][len(VS_PREFIX):]


def _int(fields, key):
    try:
        return int(fields.get(key) or 0)
    except (TypeError, ValueError):
        return 0


class TrafficLedger:
    """Running totals per listener -> increments since the last reading.

    The first reading of a ledger only records the totals (they may hold
    what an earlier agent already reported); a listener that appears in a
    later reading counts in full (it is new).
    """

    def __init__(self):
        self._previous = None   # listener id -> (bytes in, out, conns)

    def take(self, virtuals):
        """``{listener_id: ListenerStats}`` of increments, from
        :meth:`AS3Client.stats` ``('virtual')``."""
        now, current = {}, {}
        for path, fields in virtuals.items():
            found = listener_of(fields.get('tmName') or path)
            if found is None:
                continue
            listener = found[1]
            now[listener] = (_int(fields, 'clientside.bitsIn') // 8,
                             _int(fields, 'clientside.bitsOut') // 8,
                             _int(fields, 'clientside.totConns'))
            current[listener] = _int(fields, 'clientside.curConns')
        previous, self._previous = self._previous, now
        if previous is None:
            return {}
        out = {}
        for listener, totals in now.items():
            before = previous.get(listener, (0, 0, 0))
            delta = [t - b if t >= b else t for t, b in zip(totals, before)]
            if any(delta) or current[listener]:
                out[listener] = types.ListenerStats(
                    listener_id=listener,
                    active_connections=current[listener],
                    bytes_in=delta[0], bytes_out=delta[1],
                    total_connections=delta[2])
        return out


def _address(value):
    return str(value or '').split('%', 1)[0].lower()


def member_verdicts(pool, member_stats):
    """``{member_id: bool}`` of one pool from its members' stats."""
    by_dial = {}
    for fields in member_stats.values():
        status = str(fields.get('monitorStatus') or '')
        verdict = {'up': True, 'down': False}.get(status)
        if verdict is not None:
            by_dial[(_address(fields.get('addr')),
                     _int(fields, 'port'))] = verdict
    found = {}
    for member in pool.get('members') or []:
        key = (_address(member.get('address')), member.get('protocol_port'))
        if key in by_dial:
            found[member['member_id']] = by_dial[key]
    return found
