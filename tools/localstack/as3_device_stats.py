"""iControl REST statistics of the F5 BIG-IP AS3 *emulator*
(:mod:`tools.localstack.as3_device`), derived from the declared tenants.

Shapes follow BIG-IP 13+ (``GET /mgmt/tm/ltm/virtual/stats`` and friends):
a collection's ``entries`` map the object's stats URL to
``{"nestedStats": {"entries": {...}}}``; counters are ``{"value": N}``,
states ``{"description": "..."}``.  Virtual servers count
``clientside.*``; pools and pool members ``serverside.*`` (as a device
does: a member has no client side).  ``*.bitsIn``/``bitsOut`` are BITS.

Every object declared is listed: an ``Application``'s ``Service_*``
objects are virtual servers ``/T/App/name``, its ``Pool`` objects pools
``/T/App/name`` whose members are ``/T/ADDR:PORT`` (``/Common/...`` with
``shareNodes``; IPv6 ``ADDR.PORT``).  A monitored pool's members are
``available``/``up`` unless a test says otherwise; unmonitored ones
``unknown``/``unchecked``, as on a device; a pool is available when one
member is, offline when all are, else unknown, and a virtual server
takes the state of its pool (unless a test sets it).
"""

URL = 'https://localhost/mgmt/tm/ltm'
VER = '?ver=17.1.1.3'
COUNTERS = {'bits_in': 'bitsIn', 'bits_out': 'bitsOut',
            'cur_conns': 'curConns', 'tot_conns': 'totConns',
            'pkts_in': 'pktsIn', 'pkts_out': 'pktsOut'}


def _uri(path):
    return path.replace('/', '~')


def _member_name(partition, addr, port):
    sep = '.' if ':' in addr else ':'
    return f'/{partition}/{addr}{sep}{port}'


def objects(tenants):
    """``(virtuals, pools)``: full path -> declared object;
    pools map to ``(pool, {member path: (addr, port)})``."""
    virtuals, pools = {}, {}
    for tname, tenant in tenants.items():
        for aname, app in tenant.items():
            if not (isinstance(app, dict)
                    and app.get('class') == 'Application'):
                continue
            for oname, obj in app.items():
                if not isinstance(obj, dict):
                    continue
                path = f'/{tname}/{aname}/{oname}'
                cls = obj.get('class', '')
                if cls.startswith('Service_'):
                    virtuals[path] = obj
                elif cls == 'Pool':
                    pools[path] = (obj, _members(tname, obj))
    return virtuals, pools


def _members(tname, pool):
    members = {}
    for member in pool.get('members') or []:
        if not isinstance(member, dict):
            continue
        partition = 'Common' if member.get('shareNodes') else tname
        port = member.get('servicePort')
        for addr in member.get('serverAddresses') or []:
            members[_member_name(partition, addr, port)] = (
                partition, addr, port, member.get('adminState', 'enable'))
    return members


def _entries(side, over, availability, enabled='enabled', reason=''):
    entries = {f'{side}.{name}': {'value': over.get(key, 0)}
               for key, name in COUNTERS.items()}
    entries[f'{side}.maxConns'] = {'value': over.get('max_conns', 0)}
    entries['status.availabilityState'] = {
        'description': over.get('availability', availability)}
    entries['status.enabledState'] = {
        'description': over.get('enabled', enabled)}
    entries['status.statusReason'] = {
        'description': over.get('status_reason', reason)}
    return entries


def _availability(states):
    """A pool's (a virtual's) state from its members': available if one
    is, offline if all are, else unknown (BIG-IP's roll-up)."""
    if 'available' in states:
        return 'available'
    if states and all(s == 'offline' for s in states):
        return 'offline'
    return 'unknown'


def _virtual(path, obj, pool_state, stats):
    entries = _entries('clientside', stats.get(path, {}), pool_state,
                       'enabled' if obj.get('enable', True) else
                       'disabled')
    entries['tmName'] = {'description': path}
    return entries


def _member(pool_path, member, monitored, stats):
    partition, addr, port, admin = member
    over = stats.get((pool_path, f'{addr}:{port}'), {})
    entries = _entries('serverside', over,
                       'available' if monitored else 'unknown',
                       'enabled' if admin == 'enable' else 'disabled')
    entries['monitorStatus'] = {'description': over.get(
        'monitor', 'up' if monitored else 'unchecked')}
    entries.update({'addr': {'description': addr},
                    'port': {'value': port},
                    'nodeName': {'description': f'/{partition}/{addr}'},
                    'poolName': {'description': pool_path}})
    return entries


def _pool_members(path, pool, members, stats):
    monitored = bool(pool.get('monitors'))
    return {m: _member(path, member, monitored, stats)
            for m, member in members.items()}


def _pool(path, pool, members, stats):
    states = [e['status.availabilityState']['description']
              for e in _pool_members(path, pool, members, stats).values()]
    entries = _entries('serverside', stats.get(path, {}),
                       _availability(states))
    entries['tmName'] = {'description': path}
    entries['activeMemberCnt'] = {'value': states.count('available')}
    entries['memberCnt'] = {'value': len(states)}
    return entries


def _pool_of(path, obj, pools, stats):
    """The state of the pool a Service_* names (same application)."""
    name = obj.get('pool')
    if isinstance(name, dict):
        name = name.get('use') or name.get('bigip')
    if not isinstance(name, str) or not name:
        return 'unknown'
    full = name if name.startswith('/') else \
        path.rsplit('/', 1)[0] + '/' + name
    if full not in pools:
        return 'unknown'
    pool, members = pools[full]
    entries = _pool(full, pool, members, stats)
    return stats.get(full, {}).get(
        'availability', entries['status.availabilityState']['description'])


def _collection(kind, items):
    return {'kind': f'tm:ltm:{kind}:{kind}collectionstats',
            'selfLink': f'{URL}/{kind}/stats{VER}',
            'entries': {f'{URL}/{kind}/{_uri(path)}/stats':
                        {'nestedStats': {'entries': entries}}
                        for path, entries in items.items()}}


def _not_found(kind, name):
    what = {'virtual': 'Virtual Server', 'pool': 'Pool'}[kind]
    code = {'virtual': '01020036:3', 'pool': '01020036:3'}[kind]
    return 404, {'code': 404, 'message': f'{code}: The requested {what} '
                 f'({name}) was not found.', 'errorStack': [], 'apiError': 3}


def answer(tenants, stats, kind, name=None, members=False):
    """``(status, body)`` of ``GET /mgmt/tm/ltm/<kind>[/<name>][/members]
    /stats`` (``name``: ``~T~App~obj``)."""
    virtuals, pools = objects(tenants)
    path = name.replace('~', '/') if name else None
    if kind == 'virtual':
        if path is not None and path not in virtuals:
            return _not_found(kind, path)
        items = {p: _virtual(p, obj, _pool_of(p, obj, pools, stats), stats)
                 for p, obj in virtuals.items() if path in (None, p)}
        return 200, _collection(kind, items)
    if path is not None and path not in pools:
        return _not_found(kind, path)
    if members:
        pool, pool_members = pools[path]
        body = {'kind': 'tm:ltm:pool:members:memberscollectionstats',
                'selfLink': f'{URL}/pool/{name}/members/stats{VER}',
                'entries': {}}
        for mpath, entries in _pool_members(path, pool, pool_members,
                                            stats).items():
            body['entries'][
                f'{URL}/pool/{name}/members/{_uri(mpath)}/stats'] = {
                'nestedStats': {'entries': entries}}
        return 200, body
    items = {p: _pool(p, pool, pm, stats)
             for p, (pool, pm) in pools.items() if path in (None, p)}
    return 200, _collection(kind, items)
