"""Octavia load balancer graph -> Caddy 2 JSON config. Pure, no I/O.

:func:`servers` gives one ``apps.http.servers`` entry per enabled listener
of an enabled load balancer, keyed ``<lb_id>--<listener_id>``;
:func:`certificates` gives the ``apps.tls.certificates.load_pem`` entries
of those listeners. Both raise :class:`BackendRejected` (through
:func:`check`) for anything outside :data:`SUPPORTED` or not expressible
in Caddy. Names and descriptions never reach the config; PEM material
only appears in what :func:`certificates` returns (nothing here logs).

Mapping (Octavia -> Caddy; "~" marks an approximation, listed below)::

  listener HTTP              server; protocols [h1]; automatic_https off;
                             metrics on (listener statistics)
  listener TERMINATED_HTTPS  + tls_connection_policies (one per SNI
                             certificate, matched on its primary_cn,
                             then the default certificate); protocols
                             [h1, h2] (h2 only if alpn_protocols has it)
  tls_versions               protocol_min / protocol_max (TLS 1.2+ only ~)
  hsts_*                     headers handler, Strict-Transport-Security
  allowed_cidrs              1st route: not remote_ip -> 403 + close ~
  timeout_client_data        read_idle_timeout, write_idle_timeout,
                             idle_timeout of the server
  timeout_member_connect     transport.http.dial_timeout
  timeout_member_data        transport.http.read_timeout, write_timeout
  insert_headers X-F-Port    reverse_proxy headers.request.set (the port)
  insert_headers X-F-For/-Proto   set by Caddy anyway ~
  L7 policy (by position)    route: match -> handler; only enabled ones
                             with at least one enabled rule (as Octavia)
    REJECT                   static_response 403, close
    REDIRECT_TO_URL          static_response redirect_http_code (302),
                             Location: redirect_url
    REDIRECT_PREFIX          same, Location: redirect_prefix +
                             {http.request.uri}
    REDIRECT_TO_POOL         reverse_proxy of the pool (policy skipped if
                             the pool is disabled, as Octavia)
  L7 rules of a policy       ANDed: one matcher set per rule; several rules
                             are [{"not": [<rule fails>, ...]}] (De Morgan,
                             as a matcher set can hold a module once)
    HOST_NAME                header_regexp Host, case-insensitive (?i)
                             (the raw Host value, port included, as HAProxy)
    PATH                     path_regexp ~
    FILE_TYPE                path_regexp: EQUAL_TO = path ends with value
    HEADER                   header_regexp <key> ~
    COOKIE                   vars_regexp {http.request.cookie.<key>} and
                             header_regexp Cookie (cookie present) ~
    EQUAL_TO / STARTS_WITH / ENDS_WITH / CONTAINS
                             ^lit$ / ^lit / lit$ / lit, lit = the value
                             with every RE2 metacharacter escaped
    REGEX                    the value itself (RE2 syntax ~)
    invert                   {"not": [<rule>]}
  default pool               last route (503 static_response if none or
                             disabled)
  pool                       reverse_proxy per route using it; enabled
                             members -> upstreams (dial addr:port)
  pool PROXY / PROXYV2       transport.http.proxy_protocol v1 / v2
  ROUND_ROBIN                round_robin; weighted_round_robin when the
                             weights differ
  LEAST_CONNECTIONS          least_conn ~
  SOURCE_IP (and SP)         ip_hash (the TCP peer address, like HAProxy's
                             "src") ~
  SP HTTP_COOKIE             cookie "SRV" (HMAC of the member address keyed
                             by the pool id), fallback: the algorithm
  HM HTTP                    health_checks.active: uri, interval (delay),
                             timeout, passes (max_retries), fails
                             (max_retries_down), method, expect_status ~,
                             headers Host (domain_name), port
                             (monitor_port); disabled HM: no checks
  empty / all-disabled pool  static_response 503

Approximations:

* allowed_cidrs: refused clients get 403 after the TCP (and TLS) handshake
  instead of a dropped connection; TLS handshakes are not filtered.
* Caddy's reverse_proxy always sets X-Forwarded-For (replacing any value
  the client sent), X-Forwarded-Proto and X-Forwarded-Host, asked for or
  not; HAProxy appends to a client's X-Forwarded-For.
* PATH and FILE_TYPE match Caddy's normalised path (percent-decoded, dot
  segments resolved, as all Caddy path matchers); HAProxy matches the raw
  path. A FILE_TYPE REGEX is searched in the whole path.
* HEADER matches each header line whole; HAProxy's ``req.hdr`` also splits
  values at commas.
* COOKIE: Caddy compares cookie names case-insensitively and tests only the
  first cookie of that name (HAProxy: case-sensitive, any occurrence).
* REGEX values are RE2 (Go) syntax; Octavia checks them with Python's
  ``re``. Look-arounds and back-references make Caddy refuse the config.
* Members of weight 0 are left out (they must get no new traffic; sticky
  clients on them move too). LEAST_CONNECTIONS and SOURCE_IP ignore the
  other weights.
* Session persistence SOURCE_IP hashes instead of using a stick table:
  persistence_timeout is ignored and clients move when members change.
* Backup members serve only when the pool has no enabled non-backup
  member of weight > 0; Caddy cannot fail over to them at run time.
* expected_codes: Caddy expects one code or one class (2 = 2xx); a list
  or range within one class becomes the class (accepts more codes).
  Codes of several classes are refused.
* Health checks use HTTP/1.1 whatever http_version says; each listener
  using a pool runs its own checks (Caddy shares the result per member
  address).
* tls_versions below TLS 1.2 are dropped (Caddy has none); tls_ciphers
  (OpenSSL names) are ignored: Go chooses its cipher suites.
* SNI certificates are selected by their primary_cn only (Caddy is told
  the names; other subject alternative names fall back to the default
  certificate). The fallback selects the default certificate through the
  name ``<server key>.multilb.invalid``, which no real certificate has.

Refused (BackendRejected): listener protocols other than HTTP and
TERMINATED_HTTPS, connection_limit (Caddy has no connection cap),
client_authentication, insert_headers other than X-Forwarded-For/-Port/
-Proto, SOURCE_IP_PORT, APP_COOKIE (Caddy cannot learn an application
cookie), pool tls_enabled, health monitor types other than HTTP (Caddy's
active checks are HTTP requests, and HTTPS ones need TLS to members), a
health monitor on a PROXY pool (Caddy's checks would fail: they carry no
PROXY header), member monitor_address and differing monitor_port.

Security: user values are only ever JSON string data; no CEL expression
is built. Every field in which Caddy expands placeholders (Location, the
health check Host, SNI names, PEM certificates and keys) has its braces
escaped (:func:`escape_placeholders`; unescaped, a "key" of
``{file./path}`` is read from the node's disk). Values compared literally
become RE2 literals (:func:`re2_literal`), never ``*`` wildcards, so no
value can widen a match. The cookie name is the one value spliced into a
placeholder and must be an RFC 7230 token. Ids, addresses, ports and CIDRs
are checked; redirect targets may hold no control characters.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re

from octavia_lib.common import constants as c

from backends import exceptions
from multilb import addresses

SUPPORTED = {
    'SUPPORTED_LISTENER_PROTOCOLS': frozenset(
        (c.PROTOCOL_HTTP, c.PROTOCOL_TERMINATED_HTTPS)),
    'SUPPORTED_POOL_PROTOCOLS': frozenset(
        (c.PROTOCOL_HTTP, c.PROTOCOL_PROXY, c.PROTOCOL_PROXYV2)),
    'SUPPORTED_ALGORITHMS': frozenset(
        (c.LB_ALGORITHM_ROUND_ROBIN, c.LB_ALGORITHM_LEAST_CONNECTIONS,
         c.LB_ALGORITHM_SOURCE_IP)),
    'SUPPORTED_HEALTH_MONITOR_TYPES': frozenset((c.HEALTH_MONITOR_HTTP,)),
    'SUPPORTED_SESSION_PERSISTENCE': frozenset(
        (c.SESSION_PERSISTENCE_SOURCE_IP,
         c.SESSION_PERSISTENCE_HTTP_COOKIE)),
    'SUPPORTED_L7_ACTIONS': frozenset(
        (c.L7POLICY_ACTION_REJECT, c.L7POLICY_ACTION_REDIRECT_TO_URL,
         c.L7POLICY_ACTION_REDIRECT_PREFIX,
         c.L7POLICY_ACTION_REDIRECT_TO_POOL)),
    'SUPPORTED_L7_RULE_TYPES': frozenset(
        (c.L7RULE_TYPE_HOST_NAME, c.L7RULE_TYPE_PATH, c.L7RULE_TYPE_FILE_TYPE,
         c.L7RULE_TYPE_HEADER, c.L7RULE_TYPE_COOKIE)),
}
"""Capability sets for the Caddy backend's class attributes, by name."""

INSERT_HEADERS = frozenset(('X-Forwarded-For', 'X-Forwarded-Port',
                            'X-Forwarded-Proto'))
HSTS = 'Strict-Transport-Security'
PERSISTENCE_COOKIE = 'SRV'                      # as Octavia's HAProxy
_TLS_VERSIONS = {'TLSv1.2': 'tls1.2', 'TLSv1.3': 'tls1.3'}
_REDIRECT_CODES = frozenset((301, 302, 303, 307, 308))
_COMPARE = {
    c.L7RULE_COMPARE_TYPE_EQUAL_TO: '^%s$',
    c.L7RULE_COMPARE_TYPE_STARTS_WITH: '^%s',
    c.L7RULE_COMPARE_TYPE_ENDS_WITH: '%s$',
    c.L7RULE_COMPARE_TYPE_CONTAINS: '%s',
}
_FILE_TYPE_COMPARE = frozenset((c.L7RULE_COMPARE_TYPE_EQUAL_TO,
                                c.L7RULE_COMPARE_TYPE_REGEX))
_RE2_META = frozenset('\\.+*?()|[]{}^$')        # Go's regexp.QuoteMeta
# Used with fullmatch (a '$' would accept a trailing newline).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")     # RFC 7230
_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,97}')
_CODES = re.compile(r'\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?')
_CONTROL = re.compile(r'[\x00-\x1f\x7f\\]')
_RESPOND_503 = {'handler': 'static_response', 'status_code': 503}


def re2_literal(value):
    """``value`` as an RE2 pattern matching exactly that text."""
    return ''.join('\\' + ch if ch in _RE2_META else ch for ch in value)


def escape_placeholders(value):
    r"""``value`` with ``{`` / ``}`` escaped, so Caddy expands nothing in it.

    Caddy's replacer reads ``\{`` and ``\}`` as literal braces and leaves
    other backslashes alone.
    """
    return value.replace('{', '\\{').replace('}', '\\}')


def server_key(graph, listener):
    return '%s--%s' % (graph['loadbalancer_id'], listener['listener_id'])


def _enabled(obj):
    return obj.get('admin_state_up', True) is not False


def _served(graph):
    """Enabled listeners of an enabled load balancer (those get a server)."""
    if not _enabled(graph):
        return []
    return [li for li in graph.get('listeners') or [] if _enabled(li)]


def _reject(message, *args):
    raise exceptions.BackendRejected('caddy: ' + message % args)


def _about(object_id):
    """A rejection raised inside names ``object_id`` as the refused object
    (the innermost ``_about`` wins): multilb applies the rest without it."""
    return _about_all([object_id])


@contextlib.contextmanager
def _about_all(object_ids):
    try:
        yield
    except exceptions.BackendRejected as exc:
        if not exc.object_ids:
            exc.object_ids = tuple(oid for oid in object_ids if oid)
        raise


def _duration(ms):
    return '%ds' % (ms // 1000) if ms % 1000 == 0 else '%dms' % ms


def _hostport(address, port, what):
    try:
        ip = ipaddress.ip_address(address)
    except (TypeError, ValueError):
        _reject('%s address %r is not an IP address', what, address)
    if not isinstance(port, int) or not 0 < port < 65536:
        _reject('%s port %r is not a port number', what, port)
    if what == 'member' and addresses.kind_problem(ip):
        # defence in depth (the API and the agent refuse it first): a
        # member on the node itself reaches its admin API
        _reject('member address %s is not allowed: %s', ip.compressed,
                addresses.kind_problem(ip))
    return ('[%s]:%d' if ip.version == 6 else '%s:%d') % (ip.compressed,
                                                          port)


def _flag(value):
    return str(value).lower() == 'true'


# -- checks ----------------------------------------------------------------


def check(graph):
    """Raise BackendRejected for the first thing Caddy cannot serve."""
    ids = [('loadbalancer', graph.get('loadbalancer_id'))] + [
        ('listener', li.get('listener_id'))
        for li in graph.get('listeners') or []]
    for kind, value in ids:     # they make the server keys (URL paths)
        if not isinstance(value, str) or not _ID.fullmatch(value):
            _reject('invalid %s id %r', kind, value)
    for listener in graph.get('listeners') or []:
        with _about(listener.get('listener_id')):
            _check_listener(listener)
    for pool in graph.get('pools') or []:
        with _about(pool.get('pool_id')):
            _check_pool(pool)


def _unsupported(what, value, attr):
    if value not in SUPPORTED[attr]:
        _reject('%s %s is not supported; supported: %s', what, value,
                ', '.join(sorted(SUPPORTED[attr])))


def _check_listener(listener):
    _unsupported('listener protocol', listener.get('protocol'),
                 'SUPPORTED_LISTENER_PROTOCOLS')
    if listener.get('connection_limit') not in (None, -1):
        _reject('listener connection_limit is not supported (Caddy has no '
                'connection limit)')
    if listener.get('client_authentication') not in (None, 'NONE'):
        _reject('listener client_authentication is not supported')
    asked = {k for k, v in (listener.get('insert_headers') or {}).items()
             if _flag(v)}
    if asked - INSERT_HEADERS:
        _reject('insert_headers %s not supported; supported: %s',
                ', '.join(sorted(asked - INSERT_HEADERS)),
                ', '.join(sorted(INSERT_HEADERS)))
    versions = listener.get('tls_versions')
    if versions and not set(versions) & set(_TLS_VERSIONS):
        _reject('tls_versions %s: Caddy only has TLSv1.2 and TLSv1.3',
                ', '.join(versions))
    for cidr in listener.get('allowed_cidrs') or []:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except (TypeError, ValueError):
            _reject('allowed_cidrs entry %r is not a CIDR', cidr)
    if listener.get('protocol') == c.PROTOCOL_TERMINATED_HTTPS:
        tls = listener.get('default_tls_container_data') or {}
        if not (tls.get('certificate') and tls.get('private_key')):
            _reject('TERMINATED_HTTPS listener %s has no certificate and '
                    'key', listener['listener_id'])
        for sni in listener.get('sni_container_data') or []:
            if not (sni.get('certificate') and sni.get('private_key')
                    and sni.get('primary_cn')):
                _reject('SNI certificate of listener %s lacks certificate, '
                        'key or primary_cn', listener['listener_id'])
    for policy in listener.get('l7policies') or []:
        with _about(policy.get('l7policy_id')):
            _check_policy(policy)


def _check_policy(policy):
    action = policy.get('action')
    _unsupported('L7 policy action', action, 'SUPPORTED_L7_ACTIONS')
    code = policy.get('redirect_http_code')
    if code is not None and code not in _REDIRECT_CODES:
        _reject('redirect_http_code %r is not a redirect code', code)
    target = {c.L7POLICY_ACTION_REDIRECT_TO_URL: 'redirect_url',
              c.L7POLICY_ACTION_REDIRECT_PREFIX: 'redirect_prefix'}
    field = target.get(action)
    if field and (not isinstance(policy.get(field), str)
                  or _CONTROL.search(policy[field])):
        _reject('L7 policy %s: %s is missing or holds control characters '
                'or backslashes', policy['l7policy_id'], field)
    for rule in policy.get('rules') or []:
        with _about(rule.get('l7rule_id')):
            _check_rule(rule)


def _check_rule(rule):
    kind, compare = rule.get('type'), rule.get('compare_type')
    _unsupported('L7 rule type', kind, 'SUPPORTED_L7_RULE_TYPES')
    if compare not in _COMPARE and compare != c.L7RULE_COMPARE_TYPE_REGEX:
        _reject('L7 rule compare_type %s is not supported', compare)
    if kind == c.L7RULE_TYPE_FILE_TYPE and compare not in _FILE_TYPE_COMPARE:
        _reject('FILE_TYPE rules compare with EQUAL_TO or REGEX only')
    if not isinstance(rule.get('value'), str):
        _reject('L7 rule %s has no value', rule['l7rule_id'])
    key = rule.get('key')
    if kind in (c.L7RULE_TYPE_HEADER, c.L7RULE_TYPE_COOKIE) and not (
            isinstance(key, str) and _TOKEN.fullmatch(key)):
        _reject('L7 rule %s: key %r is not an HTTP token', rule['l7rule_id'],
                key)


def _check_pool(pool):
    _unsupported('pool protocol', pool.get('protocol'),
                 'SUPPORTED_POOL_PROTOCOLS')
    _unsupported('pool algorithm', pool.get('lb_algorithm'),
                 'SUPPORTED_ALGORITHMS')
    persistence = pool.get('session_persistence') or {}
    if persistence.get('type'):
        _unsupported('session persistence', persistence['type'],
                     'SUPPORTED_SESSION_PERSISTENCE')
    if pool.get('tls_enabled'):
        _reject('pool tls_enabled (TLS to members) is not supported')
    for member in pool.get('members') or []:
        with _about(member.get('member_id')):
            _hostport(member.get('address'), member.get('protocol_port'),
                      'member')
    hm = pool.get('healthmonitor')
    if hm:
        with _about(hm.get('healthmonitor_id')):
            _unsupported('health monitor type', hm.get('type'),
                         'SUPPORTED_HEALTH_MONITOR_TYPES')
    if not hm or not _enabled(hm):
        return
    with _about(hm.get('healthmonitor_id')):
        if pool.get('protocol') != c.PROTOCOL_HTTP:
            _reject('health monitors on %s pools are not supported (Caddy '
                    'checks would carry no PROXY header)',
                    pool.get('protocol'))
        _expect_status(hm.get('expected_codes'))
        _monitor_port(pool)


def _expect_status(codes):
    """Octavia expected_codes -> Caddy expect_status (a code or a class)."""
    codes = codes or '200'
    found = set()
    for part in codes.split(','):
        match = _CODES.fullmatch(part)
        if not match or (match.group(2) and ',' in codes):
            _reject('expected_codes %r is not understood', codes)
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        found.update(range(low, high + 1))
    if len(found) == 1:
        return found.pop()
    classes = {code // 100 for code in found}
    if len(classes) != 1:
        _reject('expected_codes %r spans several status classes; Caddy '
                'expects one code or one class', codes)
    return classes.pop()


def _monitor_port(pool):
    members = [m for m in pool.get('members') or [] if _enabled(m)]
    for m in members:
        if m.get('monitor_address'):
            with _about(m.get('member_id')):
                _reject('member monitor_address is not supported')
    ports = {m.get('monitor_port') for m in members}
    if len(ports) > 1:
        # the members off the first member's port are the odd ones out
        first = members[0].get('monitor_port')
        with _about_all([m.get('member_id') for m in members
                         if m.get('monitor_port') != first]):
            _reject('members of pool %s have different monitor_port '
                    'values; Caddy checks every member on one port',
                    pool['pool_id'])
    return ports.pop() if ports else None


# -- servers ---------------------------------------------------------------


def servers(graph, listen_address=None, served_by=None):
    """``{'<lb_id>--<listener_id>': server}`` for ``apps.http.servers``.

    A disabled load balancer or listener (admin_state_up False) gets no
    server: the backend deletes this LB's servers whose key is absent.

    :param listen_address: address to bind instead of the VIPs.
    :param served_by: ``(header name, value)`` every response gets (the
        operator's ``served_by_header`` and the cluster name), or None.
    :raises BackendRejected: see :func:`check`.
    """
    check(graph)
    if listen_address is not None:
        addresses = [listen_address]
    else:
        addresses = [graph.get('vip_address')] + [
            vip.get('ip_address') for vip in graph.get('additional_vips')
            or []]
    pools = {p['pool_id']: p for p in graph.get('pools') or []}
    return {server_key(graph, li): _server(graph, li, pools, addresses,
                                           served_by)
            for li in _served(graph)}


def _server(graph, listener, pools, addresses, served_by=None):
    key = server_key(graph, listener)
    server = {
        '@id': key,
        'listen': [_hostport(a, listener['protocol_port'], 'listen')
                   for a in addresses],
        'automatic_https': {'disable': True},
        'protocols': ['h1'],
        'metrics': {},
    }
    timeout = listener.get('timeout_client_data')
    if timeout:
        for field in ('read_idle_timeout', 'write_idle_timeout',
                      'idle_timeout'):
            server[field] = _duration(timeout)
    routes = []
    if served_by:
        routes.append({'handle': [{'handler': 'headers', 'response': {
            'set': {served_by[0]: [served_by[1]]}}}]})
    cidrs = listener.get('allowed_cidrs')
    if cidrs:
        ranges = [str(ipaddress.ip_network(x, strict=False)) for x in cidrs]
        routes.append({
            'match': [{'not': [{'remote_ip': {'ranges': ranges}}]}],
            'handle': [{'handler': 'static_response', 'status_code': 403,
                        'close': True}]})
    if listener['protocol'] == c.PROTOCOL_TERMINATED_HTTPS:
        server.update(_tls(key, listener))
        if listener.get('hsts_max_age') is not None:
            routes.append({'handle': [_hsts(listener)]})
    for policy in sorted(listener.get('l7policies') or [],
                         key=lambda p: (p.get('position') or 0,
                                        p['l7policy_id'])):
        route = _policy_route(policy, listener, pools)
        if route:
            routes.append(route)
    default = pools.get(listener.get('default_pool_id'))
    routes.append({'handle': [_pool_handler(default, listener)
                              if default and _enabled(default)
                              else dict(_RESPOND_503)]})
    server['routes'] = routes
    return server


def _hsts(listener):
    value = 'max-age=%d' % listener['hsts_max_age']
    if listener.get('hsts_include_subdomains'):
        value += '; includeSubDomains'
    if listener.get('hsts_preload'):
        value += '; preload'
    return {'handler': 'headers',
            'response': {'set': {HSTS: [value]}, 'deferred': True}}


def _tls(key, listener):
    """TLS connection policies: SNI certificates, then the default one."""
    common = {}
    versions = sorted(_TLS_VERSIONS[v] for v in
                      listener.get('tls_versions') or [] if v in
                      _TLS_VERSIONS)
    if versions:
        common.update(protocol_min=versions[0], protocol_max=versions[-1])
    # Fallback target: a name no certificate has, so that Caddy chooses
    # among all certificates and the tag picks this listener's one.
    fallback = '%s.multilb.invalid' % key
    policies = []
    for index, sni in enumerate(listener.get('sni_container_data') or []):
        policies.append(dict(
            match={'sni': [escape_placeholders(sni['primary_cn'])]},
            certificate_selection={'any_tag': ['%s--sni-%d' % (key, index)]},
            fallback_sni=fallback, **common))
    policies.append(dict(
        certificate_selection={'any_tag': [key + '--default']},
        default_sni=fallback, fallback_sni=fallback, **common))
    alpn = listener.get('alpn_protocols')
    protocols = ['h1', 'h2'] if alpn is None or 'h2' in alpn else ['h1']
    return {'tls_connection_policies': policies, 'protocols': protocols}


def certificates(graph):
    """``load_pem`` entries of the TLS app for the served listeners.

    Tagged with the server key (every certificate of the listener) and
    ``<key>--default`` / ``<key>--sni-<n>`` (what the policies select).
    Holds private keys: never log it.
    """
    check(graph)
    found = []
    for listener in _served(graph):
        if listener['protocol'] != c.PROTOCOL_TERMINATED_HTTPS:
            continue
        key = server_key(graph, listener)
        tagged = [(listener['default_tls_container_data'], 'default')] + [
            (sni, 'sni-%d' % i) for i, sni in
            enumerate(listener.get('sni_container_data') or [])]
        for tls, tag in tagged:
            chain = [tls['certificate']] + list(tls.get('intermediates')
                                                or [])
            # Caddy expands known placeholders in both: unescaped, a "key"
            # of {file./some/path} would load a key from the node's disk.
            pem = ''.join(p.strip('\n') + '\n' for p in chain)
            found.append({
                'certificate': escape_placeholders(pem),
                'key': escape_placeholders(tls['private_key']),
                'tags': [key, '%s--%s' % (key, tag)]})
    return found


# -- L7 --------------------------------------------------------------------


def _policy_route(policy, listener, pools):
    """Route of one L7 policy, or None when Octavia would ignore it."""
    rules = [r for r in policy.get('rules') or [] if _enabled(r)]
    if not _enabled(policy) or not rules:
        return None
    action = policy['action']
    if action == c.L7POLICY_ACTION_REJECT:
        handler = {'handler': 'static_response', 'status_code': 403,
                   'close': True}
    elif action == c.L7POLICY_ACTION_REDIRECT_TO_POOL:
        pool = pools.get(policy.get('redirect_pool_id'))
        if not pool or not _enabled(pool):
            return None
        handler = _pool_handler(pool, listener)
    else:
        if action == c.L7POLICY_ACTION_REDIRECT_TO_URL:
            location = escape_placeholders(policy['redirect_url'])
        else:
            location = (escape_placeholders(policy['redirect_prefix'])
                        + '{http.request.uri}')
        handler = {'handler': 'static_response',
                   'status_code': policy.get('redirect_http_code') or 302,
                   'headers': {'Location': [location]}}
    sets = [_rule_matchers(r) for r in rules]
    if len(rules) == 1:
        match = [{'not': sets} if rules[0].get('invert') else sets[0]]
    else:
        failed = [s if r.get('invert') else {'not': [s]}
                  for r, s in zip(rules, sets)]
        match = [{'not': failed}]
    return {'match': match, 'handle': [handler]}


def _rule_matchers(rule):
    """One matcher set that matches when the (non-inverted) rule does."""
    kind, value = rule['type'], rule['value']
    compare = rule['compare_type']
    if compare == c.L7RULE_COMPARE_TYPE_REGEX:
        pattern = value
    elif kind == c.L7RULE_TYPE_FILE_TYPE:
        pattern = re2_literal(value) + '$'
    else:
        pattern = _COMPARE[compare] % re2_literal(value)
    if kind == c.L7RULE_TYPE_HOST_NAME:
        return {'header_regexp': {'Host': {'pattern': '(?i)' + pattern}}}
    if kind in (c.L7RULE_TYPE_PATH, c.L7RULE_TYPE_FILE_TYPE):
        return {'path_regexp': {'pattern': pattern}}
    if kind == c.L7RULE_TYPE_HEADER:
        return {'header_regexp': {rule['key']: {'pattern': pattern}}}
    # COOKIE: the key is an RFC 7230 token (checked), so it cannot end the
    # placeholder early. Caddy yields '' for an absent cookie: the Cookie
    # header test keeps a pattern matching '' from matching then.
    name = re2_literal(rule['key'])
    return {
        'header_regexp': {'Cookie': {
            'pattern': '(?:^|;)[ \\t]*(?i:%s)[ \\t]*(?:=|;|$)' % name}},
        'vars_regexp': {'{http.request.cookie.%s}' % rule['key']: {
            'pattern': pattern}}}


# -- pools -----------------------------------------------------------------


def proxied_members(pool):
    """The members Caddy proxies to (and health-checks) for ``pool``."""
    return _members(pool)[0]


def _members(pool):
    """(members to proxy to, their weights); see the module docstring."""
    def usable(backup):
        return [m for m in pool.get('members') or [] if _enabled(m)
                and bool(m.get('backup')) is backup and _weight(m) > 0]
    chosen = usable(False) or usable(True)
    return chosen, [_weight(m) for m in chosen]


def member_dial(member):
    """The upstream (and health state) address Caddy knows a member by."""
    return _hostport(member['address'], member['protocol_port'], 'member')


def _weight(member):
    return 1 if member.get('weight') is None else member['weight']


def _selection(pool, weights):
    algorithm = pool['lb_algorithm']
    if algorithm == c.LB_ALGORITHM_LEAST_CONNECTIONS:
        policy = {'policy': 'least_conn'}
    elif algorithm == c.LB_ALGORITHM_SOURCE_IP:
        policy = {'policy': 'ip_hash'}
    elif len(set(weights)) > 1:
        policy = {'policy': 'weighted_round_robin', 'weights': weights}
    else:
        policy = {'policy': 'round_robin'}
    persistence = (pool.get('session_persistence') or {}).get('type')
    if persistence == c.SESSION_PERSISTENCE_SOURCE_IP:
        return {'policy': 'ip_hash'}
    if persistence == c.SESSION_PERSISTENCE_HTTP_COOKIE:
        return {'policy': 'cookie', 'name': PERSISTENCE_COOKIE,
                'secret': pool['pool_id'], 'fallback': policy}
    return policy


def _pool_handler(pool, listener):
    """reverse_proxy handler of a pool, as served on ``listener``."""
    members, weights = _members(pool)
    if not members:
        return dict(_RESPOND_503)
    handler = {
        'handler': 'reverse_proxy',
        'upstreams': [{'dial': member_dial(m)} for m in members],
        'load_balancing': {'selection_policy': _selection(pool, weights)},
    }
    hm = pool.get('healthmonitor')
    if hm and _enabled(hm):
        active = {
            'uri': hm.get('url_path') or '/',
            'method': hm.get('http_method') or 'GET',
            'interval': '%ds' % hm['delay'],
            'timeout': '%ds' % hm['timeout'],
            'passes': hm['max_retries'],
            'fails': hm.get('max_retries_down') or 3,
            'expect_status': _expect_status(hm.get('expected_codes')),
        }
        if hm.get('domain_name'):
            active['headers'] = {
                'Host': [escape_placeholders(hm['domain_name'])]}
        port = _monitor_port(pool)
        if port:
            active['port'] = port
        handler['health_checks'] = {'active': active}
    transport = {'protocol': 'http'}
    proxy = {c.PROTOCOL_PROXY: 'v1', c.PROTOCOL_PROXYV2: 'v2'}
    if pool['protocol'] in proxy:
        transport['proxy_protocol'] = proxy[pool['protocol']]
    if listener.get('timeout_member_connect'):
        transport['dial_timeout'] = _duration(
            listener['timeout_member_connect'])
    if listener.get('timeout_member_data'):
        transport['read_timeout'] = transport['write_timeout'] = _duration(
            listener['timeout_member_data'])
    handler['transport'] = transport
    if _flag((listener.get('insert_headers') or {}).get('X-Forwarded-Port')):
        handler['headers'] = {'request': {'set': {
            'X-Forwarded-Port': [str(listener['protocol_port'])]}}}
    return handler
