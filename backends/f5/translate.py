"""Octavia load balancer graphs -> AS3 declarations. Pure, no I/O.

:func:`application` gives the AS3 Application of one load balancer,
:func:`tenant` the Tenant holding several (one tenant per project and VIP
network, see :mod:`backends.f5.names`), :func:`declaration` the ADC
declaration of some tenants. :func:`check` raises
:class:`BackendRejected` for anything AS3 cannot express, naming what is
wrong and what is supported; :data:`SUPPORTED` holds the capability
sets for the backend's ``SUPPORTED_*`` class attributes. Names and
descriptions never reach a declaration; TLS private keys only appear in
the returned dicts (nothing here logs).

Mapping (Octavia -> AS3; "~" marks an approximation)::

  listener HTTP / TCP / UDP  Service_HTTP / Service_TCP / Service_UDP
  listener HTTPS             Service_TCP (TLS passed through)
  listener TERMINATED_HTTPS  Service_HTTPS, redirect80 false, serverTLS
                             (see backends.f5.tls)
  VIP                        virtualAddresses; with one allowed_cidrs
                             entry [[vip, cidr]] (source-restricted)
  connection_limit           maxConnections (-1 -> 0, unlimited)
  timeout_client_data        TCP_Profile idleTimeout (s, rounded up);
                             UDP: profileUDP is left at its default ~
  timeout_member_*           not mapped (BIG-IP defaults) ~
  alpn_protocols             not mapped: HTTP/1.1 only (no HTTP2_Profile) ~
  insert_headers X-F-For     HTTP_Profile xForwardedFor
  hsts_max_age (TLS term.)   HTTP_Profile hstsInsert, hstsPeriod,
                             hstsIncludeSubdomains, hstsPreload
  admin_state_up false       Service enable false / member offline
  pool                       Pool; ROUND_ROBIN -> ratio-member,
                             LEAST_CONNECTIONS -> ratio-least-
                             connections-member, SOURCE_IP -> ratio-member
                             + source-address persistence ~
  member weight 1..256       ratio; weights above 100 are scaled to
                             1..100 (AS3's range) ~; weight 0 -> adminState
                             disable (no new connections)
  member address             serverAddresses, shareNodes true (nodes in
                             /Common: BIG-IP allows one node per address,
                             and tenants may share member addresses)
  member backup              priorityGroup 0 (others 1) with
                             minimumMembersActive 1
  session persistence        SOURCE_IP -> source-address, HTTP_COOKIE ->
                             cookie (insert), APP_COOKIE -> Persist cookie
                             hash on cookie_name; applied by the
                             listener's default pool only ~
  health monitor             HTTP/HTTPS/TCP/PING/UDP-CONNECT -> Monitor
                             http/https/tcp/icmp/udp; interval = delay,
                             timeout = delay * max_retries_down + 1
                             (must be <= 900); HTTP/1.1 without
                             domain_name is sent as HTTP/1.0 ~
  L7 policies                Endpoint_Policy (see backends.f5.l7)

Refused: other protocols (SCTP, PROXY/PROXYV2 pools), SOURCE_IP_PORT,
TLS-HELLO/SCTP monitors, members' monitor_address/monitor_port, pool
tls_enabled, more than one allowed_cidrs entry, other insert_headers,
and what l7 / tls refuse.
"""

from __future__ import annotations

import ipaddress
import math
import re

from octavia_lib.common import constants as c

from backends.f5 import l7
from backends.f5 import names
from backends.f5 import safe
from backends.f5 import tls
from multilb import addresses

SCHEMA_VERSION = '3.56.0'
_HSTS_MAX = 2 ** 32 - 1        # HTTP_Profile hstsPeriod

SUPPORTED = {
    'SUPPORTED_LISTENER_PROTOCOLS': frozenset(
        (c.PROTOCOL_HTTP, c.PROTOCOL_HTTPS, c.PROTOCOL_TCP, c.PROTOCOL_UDP,
         c.PROTOCOL_TERMINATED_HTTPS)),
    'SUPPORTED_POOL_PROTOCOLS': frozenset(
        (c.PROTOCOL_HTTP, c.PROTOCOL_HTTPS, c.PROTOCOL_TCP, c.PROTOCOL_UDP)),
    'SUPPORTED_ALGORITHMS': frozenset(
        (c.LB_ALGORITHM_ROUND_ROBIN, c.LB_ALGORITHM_LEAST_CONNECTIONS,
         c.LB_ALGORITHM_SOURCE_IP)),
    'SUPPORTED_HEALTH_MONITOR_TYPES': frozenset(
        (c.HEALTH_MONITOR_HTTP, c.HEALTH_MONITOR_HTTPS,
         c.HEALTH_MONITOR_TCP, c.HEALTH_MONITOR_PING,
         c.HEALTH_MONITOR_UDP_CONNECT)),
    'SUPPORTED_SESSION_PERSISTENCE': frozenset(
        (c.SESSION_PERSISTENCE_SOURCE_IP, c.SESSION_PERSISTENCE_HTTP_COOKIE,
         c.SESSION_PERSISTENCE_APP_COOKIE)),
    'SUPPORTED_L7_ACTIONS': l7.ACTIONS,
    'SUPPORTED_L7_RULE_TYPES': l7.RULE_TYPES,
}
"""Capability sets for the F5 backend's class attributes, by name."""

_SERVICE = {c.PROTOCOL_HTTP: 'Service_HTTP', c.PROTOCOL_HTTPS: 'Service_TCP',
            c.PROTOCOL_TCP: 'Service_TCP', c.PROTOCOL_UDP: 'Service_UDP',
            c.PROTOCOL_TERMINATED_HTTPS: 'Service_HTTPS'}
_HTTP_SERVICES = ('Service_HTTP', 'Service_HTTPS')
_MODE = {c.LB_ALGORITHM_ROUND_ROBIN: 'ratio-member',
         c.LB_ALGORITHM_LEAST_CONNECTIONS: 'ratio-least-connections-member',
         c.LB_ALGORITHM_SOURCE_IP: 'ratio-member'}
_MONITOR = {c.HEALTH_MONITOR_HTTP: 'http', c.HEALTH_MONITOR_HTTPS: 'https',
            c.HEALTH_MONITOR_TCP: 'tcp', c.HEALTH_MONITOR_PING: 'icmp',
            c.HEALTH_MONITOR_UDP_CONNECT: 'udp'}
_MAX_RATIO = 100
_MAX_MONITOR_TIMEOUT = 900
_CODES = re.compile(r'\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*')


def _enabled(obj):
    return obj.get('admin_state_up', True) is not False


def _unsupported(what, value, attr):
    if value not in SUPPORTED[attr]:
        safe.reject('%s %s is not supported; supported: %s', what, value,
                    ', '.join(sorted(SUPPORTED[attr])))


def check(graph):
    """Raise BackendRejected for the first thing AS3 cannot express."""
    application(graph)


# -- builders -----------------------------------------------------------------


def declaration(tenants, declaration_id='multilb'):
    """An ADC declaration of ``tenants`` ({name: Tenant dict})."""
    out = {'class': 'ADC', 'schemaVersion': SCHEMA_VERSION,
           'id': declaration_id, 'updateMode': 'selective'}
    out.update(tenants)
    return out


def tenant(graphs, route_domain=0):
    """The Tenant holding the Applications of ``graphs`` (which must share
    the project and VIP network)."""
    out = {'class': 'Tenant'}
    units = set()
    for graph in graphs:
        units.add(names.tenant_of(graph))
        out[names.application(graph['loadbalancer_id'])] = application(
            graph, route_domain)
    if len(units) > 1:
        safe.reject('load balancers of different tenants (%s) in one tenant',
                    ', '.join(sorted(units)))
    return out


def application(graph, route_domain=0):
    """The AS3 Application of one load balancer (raises BackendRejected).

    :param route_domain: the BIG-IP route domain of the load balancer's
        VIP network: every address (VIP, allowed source, member) gets
        ``%<route domain>`` unless it is 0 (the partition's default).
    """
    names.application(graph.get('loadbalancer_id'))
    names.vip_network(graph)
    vip = _vip(graph)
    pools = {p['pool_id']: p for p in graph.get('pools') or []}
    app = {'class': 'Application'}
    for pool in pools.values():
        with safe.about(pool.get('pool_id')):
            app.update(_pool_objects(pool, route_domain))
    lb_on = _enabled(graph)
    for listener in graph.get('listeners') or []:
        with safe.about(listener.get('listener_id')):
            app.update(_listener_objects(listener, vip, pools, lb_on,
                                         route_domain))
    return app


def _vip(graph):
    try:
        return ipaddress.ip_address(graph.get('vip_address'))
    except (TypeError, ValueError):
        safe.reject('VIP address %r is not an IP address',
                    graph.get('vip_address'))


def _listener_objects(listener, vip, pools, lb_on, route_domain=0):
    lid = names.checked_id('listener', listener.get('listener_id'))
    protocol = listener.get('protocol')
    _unsupported('listener protocol', protocol,
                 'SUPPORTED_LISTENER_PROTOCOLS')
    kind = _SERVICE[protocol]
    out = {}
    address = _address(listener, vip, route_domain)
    service = {'class': kind, 'virtualAddresses': [address],
               'virtualPort': _port(listener.get('protocol_port')),
               'enable': lb_on and _enabled(listener),
               'persistenceMethods': []}
    limit = listener.get('connection_limit')
    if limit not in (None, -1):
        if not isinstance(limit, int) or limit < 0:
            safe.reject('connection_limit %r is not a count', limit)
        service['maxConnections'] = limit
    _http_profile(listener, kind, service, out)
    if protocol == c.PROTOCOL_TERMINATED_HTTPS:
        tls.check(listener)
        out.update(tls.objects(listener))
        service['serverTLS'] = names.obj('tls', lid, 'listener')
        service['redirect80'] = False
    client_timeout = listener.get('timeout_client_data')
    if client_timeout and kind != 'Service_UDP':
        tcp = names.obj('tcp', lid, 'listener')
        out[tcp] = {'class': 'TCP_Profile',
                    'idleTimeout': max(1, math.ceil(client_timeout / 1000))}
        service['profileTCP'] = {'use': tcp}
    pool_id = listener.get('default_pool_id')
    if pool_id:
        if pool_id not in pools:
            safe.reject('default pool %s is not in the graph', pool_id)
        service['pool'] = names.obj('pool', pool_id, 'pool')
        service['persistenceMethods'] = _persistence(pools[pool_id], kind,
                                                     out)
    policies = listener.get('l7policies') or []
    if policies and kind not in _HTTP_SERVICES:
        safe.reject('L7 policies need an HTTP or TERMINATED_HTTPS listener')
    for policy in policies:
        with safe.about(policy.get('l7policy_id')):
            l7.check_policy(policy, pools)
    policy = l7.endpoint_policy(listener)
    if policy:
        name = names.obj('policy', lid, 'listener')
        out[name] = policy
        service['policyEndpoint'] = name
    out[names.obj('vs', lid, 'listener')] = service
    return out


def _port(port):
    if not isinstance(port, int) or not 0 < port < 65536:
        safe.reject('port %r is not a port number', port)
    return port


def _address(listener, vip, route_domain=0):
    cidrs = listener.get('allowed_cidrs') or []
    if not cidrs:
        return _in_domain(vip.compressed, route_domain)
    if len(cidrs) > 1:
        safe.reject('allowed_cidrs: AS3 restricts a virtual server to one '
                    'source network; %d given', len(cidrs))
    try:
        net = ipaddress.ip_network(cidrs[0], strict=False)
    except (TypeError, ValueError):
        safe.reject('allowed_cidrs entry %r is not a CIDR', cidrs[0])
    if net.version != vip.version:
        safe.reject('allowed_cidrs entry %s is not of the VIP\'s address '
                    'family', net)
    return [_in_domain(vip.compressed, route_domain),
            _in_domain(net.compressed, route_domain)]


def _in_domain(address, route_domain):
    """``address`` in BIG-IP's ``ADDR%RD[/MASK]`` notation."""
    if not route_domain:
        return address
    addr, slash, mask = address.partition('/')
    return '%s%%%d%s%s' % (addr, route_domain, slash, mask)


def _http_profile(listener, kind, service, out):
    """The listener's HTTP_Profile: X-Forwarded-For and HSTS."""
    profile = {}
    asked = {k for k, v in (listener.get('insert_headers') or {}).items()
             if str(v).lower() == 'true'}
    if asked - {'X-Forwarded-For'}:
        safe.reject('insert_headers %s not supported; supported: '
                    'X-Forwarded-For', ', '.join(sorted(asked)))
    if asked and kind not in _HTTP_SERVICES:
        safe.reject('insert_headers need an HTTP listener')
    if asked:
        profile['xForwardedFor'] = True
    max_age = listener.get('hsts_max_age')
    if max_age is not None:
        if listener.get('protocol') != c.PROTOCOL_TERMINATED_HTTPS:
            safe.reject('HSTS needs a TERMINATED_HTTPS listener')
        if (isinstance(max_age, bool) or not isinstance(max_age, int)
                or not 0 <= max_age <= _HSTS_MAX):
            safe.reject('hsts_max_age %r is not a number of seconds from 0 '
                        'to %d', max_age, _HSTS_MAX)
        # AS3 includes subdomains unless told not to; Octavia does not.
        profile.update(hstsInsert=True, hstsPeriod=max_age,
                       hstsIncludeSubdomains=bool(
                           listener.get('hsts_include_subdomains')),
                       hstsPreload=bool(listener.get('hsts_preload')))
    if profile:
        name = names.obj('http', listener['listener_id'], 'listener')
        out[name] = dict({'class': 'HTTP_Profile'}, **profile)
        service['profileHTTP'] = {'use': name}


def _persistence(pool, kind, out):
    sp = pool.get('session_persistence') or {}
    sp_type = sp.get('type')
    if pool.get('lb_algorithm') == c.LB_ALGORITHM_SOURCE_IP:
        if sp_type not in (None, c.SESSION_PERSISTENCE_SOURCE_IP):
            safe.reject('SOURCE_IP pools cannot also persist by %s', sp_type)
        return ['source-address']
    if not sp_type:
        return []
    if sp_type == c.SESSION_PERSISTENCE_SOURCE_IP:
        return ['source-address']
    if kind not in _HTTP_SERVICES:
        safe.reject('%s persistence needs an HTTP listener', sp_type)
    if sp_type == c.SESSION_PERSISTENCE_HTTP_COOKIE:
        return ['cookie']
    name = names.obj('persist', pool['pool_id'], 'pool')
    out[name] = {'class': 'Persist', 'persistenceMethod': 'cookie',
                 'cookieMethod': 'hash',
                 'cookieName': safe.cookie_name(sp.get('cookie_name'),
                                                'APP_COOKIE cookie_name')}
    return [{'use': name}]


def _pool_objects(pool, route_domain=0):
    pid = names.checked_id('pool', pool.get('pool_id'))
    _unsupported('pool protocol', pool.get('protocol'),
                 'SUPPORTED_POOL_PROTOCOLS')
    _unsupported('pool algorithm', pool.get('lb_algorithm'),
                 'SUPPORTED_ALGORITHMS')
    sp = pool.get('session_persistence') or {}
    if sp.get('type'):
        _unsupported('session persistence', sp['type'],
                     'SUPPORTED_SESSION_PERSISTENCE')
    if pool.get('tls_enabled'):
        safe.reject('pool tls_enabled (TLS to members) is not supported')
    out = {}
    body = {'class': 'Pool', 'loadBalancingMode': _MODE[pool['lb_algorithm']],
            'members': _members(pool, route_domain)}
    if any(m.get('backup') for m in pool.get('members') or []):
        body['minimumMembersActive'] = 1
    hm = pool.get('healthmonitor')
    if hm:
        with safe.about(hm.get('healthmonitor_id')):
            monitor = _monitor(hm)
        if _enabled(hm):
            name = names.obj('mon', hm['healthmonitor_id'], 'healthmonitor')
            out[name] = monitor
            body['monitors'] = [{'use': name}]
    out[names.obj('pool', pid, 'pool')] = body
    return out


def _members(pool, route_domain=0):
    members = pool.get('members') or []
    weights = [m.get('weight', 1) for m in members]
    if any(not isinstance(w, int) or not 0 <= w <= 256 for w in weights):
        safe.reject('member weights must be integers 0..256')
    scale = max(weights, default=0) > _MAX_RATIO
    out = []
    for member, weight in zip(members, weights):
        with safe.about(member.get('member_id')):
            out.append(_member(member, weight, scale, _enabled(pool),
                               route_domain))
    return out


def _member(member, weight, scale, pool_on, route_domain=0):
    if member.get('monitor_address') or member.get('monitor_port'):
        safe.reject('member monitor_address / monitor_port are not '
                    'supported (AS3 monitors are per pool)')
    try:
        ip = ipaddress.ip_address(member.get('address'))
    except (TypeError, ValueError):
        safe.reject('member address %r is not an IP address',
                    member.get('address'))
    if addresses.kind_problem(ip):
        safe.reject('member address %s is not allowed: %s', ip.compressed,
                    addresses.kind_problem(ip))
    ratio = weight
    if scale and weight:
        ratio = max(1, round(weight * _MAX_RATIO / 256))
    state = 'enable'
    if not (pool_on and _enabled(member)):
        state = 'offline'
    elif weight == 0:
        state = 'disable'
    return {'servicePort': _port(member.get('protocol_port')),
            'serverAddresses': [_in_domain(ip.compressed, route_domain)],
            'shareNodes': True,
            'ratio': max(ratio, 1) if weight else 1,
            'priorityGroup': 0 if member.get('backup') else 1,
            'adminState': state}


def _monitor(hm):
    kind = hm.get('type')
    _unsupported('health monitor type', kind,
                 'SUPPORTED_HEALTH_MONITOR_TYPES')
    delay, retries = hm.get('delay'), hm.get('max_retries_down') or 3
    if not isinstance(delay, int) or delay < 1:
        safe.reject('health monitor delay %r is not a positive number', delay)
    timeout = delay * retries + 1
    if timeout > _MAX_MONITOR_TIMEOUT:
        safe.reject('health monitor delay * max_retries_down + 1 = %d s; '
                    'BIG-IP monitors time out after at most %d s', timeout,
                    _MAX_MONITOR_TIMEOUT)
    out = {'class': 'Monitor', 'monitorType': _MONITOR[kind],
           'interval': delay, 'timeout': timeout}
    if kind in (c.HEALTH_MONITOR_HTTP, c.HEALTH_MONITOR_HTTPS):
        out['send'] = _http_send(hm)
        out['receive'] = _receive(hm.get('expected_codes') or '200')
    elif kind == c.HEALTH_MONITOR_TCP:
        out.update(send='', receive='')
    return out


def _http_send(hm):
    method = safe.method(hm.get('http_method') or 'GET', 'http_method')
    path = safe.path(hm.get('url_path') or '/', 'url_path')
    version = str(hm.get('http_version') or '1.0')
    if version not in ('1.0', '1.1'):
        safe.reject('http_version %s not supported; supported: 1.0, 1.1',
                    version)
    if not hm.get('domain_name'):
        version = '1.0'         # HTTP/1.1 without a Host header is a 400
    request = '%s %s HTTP/%s\\r\\n' % (method, path, version)
    if hm.get('domain_name'):
        domain = safe.host(hm['domain_name'], 'domain_name')
        request += 'Host: %s\\r\\n' % domain
    return request + 'Connection: Close\\r\\n\\r\\n'


def _receive(codes):
    """Octavia expected_codes -> a BIG-IP receive regex on the status."""
    if not isinstance(codes, str) or not _CODES.fullmatch(codes):
        safe.reject('expected_codes %r is not codes or ranges', codes)
    expanded = []
    for part in codes.split(','):
        low, _, high = part.partition('-')
        expanded += range(int(low), int(high or low) + 1)
    if not expanded or len(expanded) > 200:
        safe.reject('expected_codes %s: 1 to 200 codes please', codes)
    return 'HTTP/1\\.[01] (%s)' % '|'.join(str(x) for x in sorted(
        set(expanded)))
