"""Octavia graph -> Caddy JSON (backends/caddy/translate.py).

Golden files: each case of ``CASES`` builds a graph and compares
``{'servers': servers(graph), 'certificates': certificates(graph)}`` with
``golden/<case>.json`` exactly. After an intended change of the
translation, rewrite them with::

    MULTILB_REGEN_GOLDEN=1 python -m pytest tests/unit/backends/caddy

and review the diff. The TLS material in them is fake PEM text:
translation never parses it.

Tests decorated ``needs_caddy`` run the real binary (``$MULTILB_CADDY``,
else ``caddy`` on PATH, else /tmp/probe-venv/bin/caddy) and are skipped
without it: ``caddy validate`` on the servers of every golden case and on
one full config with real throwaway certificates (made per run with
``cryptography``), a PEM placeholder check, and one live server (about
0.3 s) proving that hostile rule values only match themselves.
"""

import copy
import http.client
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import time
import urllib.parse

import pytest

from backends import base
from backends import exceptions
from backends.caddy import translate
from tests.unit import fixtures as fx
from tests.unit import golden

GOLDEN = pathlib.Path(__file__).parent / 'golden'

LB = 'lb-0000-aaaa'
VIP = '203.0.113.5'
HOSTILE = 'a"b*c||{http.request.uri}\n.x'
HOSTILE_LINE = 'v"*||{http.request.uri}'  # no newline: fits in a header


def _caddy():
    for path in (os.environ.get('MULTILB_CADDY'), shutil.which('caddy'),
                 '/tmp/probe-venv/bin/caddy'):
        if path and os.access(path, os.X_OK):
            return path
    return None


CADDY = _caddy()
needs_caddy = pytest.mark.skipif(CADDY is None,
                                 reason='no caddy binary (set MULTILB_CADDY)')


# -- graph builders (plain dicts, the shape of multilb.graph) ----------------


def member(mid, address, port=8080, **kw):
    obj = dict(member_id=mid, address=address, protocol_port=port,
               weight=1, backup=False, admin_state_up=True,
               monitor_address=None, monitor_port=None)
    obj.update(kw)
    return obj


def hm(**kw):
    obj = dict(healthmonitor_id='hm-1', type='HTTP', admin_state_up=True,
               delay=5, timeout=3, max_retries=2, max_retries_down=4,
               http_method='GET', http_version=1.1, url_path='/healthz',
               expected_codes='200', domain_name=None)
    obj.update(kw)
    return obj


def pool(pid, members=(), healthmonitor=None, **kw):
    obj = dict(pool_id=pid, protocol='HTTP', lb_algorithm='ROUND_ROBIN',
               admin_state_up=True, session_persistence=None,
               tls_enabled=False, members=list(members),
               healthmonitor=healthmonitor)
    obj.update(kw)
    return obj


def rule(rid, kind, compare, value, key=None, invert=False, **kw):
    obj = dict(l7rule_id=rid, type=kind, compare_type=compare, key=key,
               value=value, invert=invert, admin_state_up=True)
    obj.update(kw)
    return obj


def policy(pid, action, rules, position=1, **kw):
    obj = dict(l7policy_id=pid, action=action, position=position,
               admin_state_up=True, redirect_pool_id=None,
               redirect_url=None, redirect_prefix=None,
               redirect_http_code=None, rules=list(rules))
    obj.update(kw)
    return obj


def listener(lid, protocol='HTTP', port=80, default_pool_id=None,
             policies=(), **kw):
    obj = dict(listener_id=lid, protocol=protocol, protocol_port=port,
               admin_state_up=True, default_pool_id=default_pool_id,
               connection_limit=-1, insert_headers={}, allowed_cidrs=None,
               timeout_client_data=50000, timeout_member_connect=5000,
               timeout_member_data=50000, timeout_tcp_inspect=0,
               default_tls_container_data=None, sni_container_data=[],
               client_authentication='NONE', tls_versions=None,
               tls_ciphers=None, alpn_protocols=None, hsts_max_age=None,
               hsts_include_subdomains=False, hsts_preload=False,
               l7policies=list(policies))
    obj.update(kw)
    return obj


def lb(listeners, pools=(), **kw):
    obj = dict(loadbalancer_id=LB, admin_state_up=True, vip_address=VIP,
               additional_vips=[], listeners=list(listeners),
               pools=list(pools))
    obj.update(kw)
    return obj


def fake_tls(cn):
    return dict(certificate='-----BEGIN CERTIFICATE-----\nFAKE-%s\n'
                            '-----END CERTIFICATE-----\n' % cn,
                private_key='-----BEGIN PRIVATE KEY-----\nFAKE-KEY-%s\n'
                            '-----END PRIVATE KEY-----\n' % cn,
                passphrase=None, intermediates=[], primary_cn=cn)


# -- golden cases ------------------------------------------------------------


def case_minimal_http():
    return lb([listener('li-http', default_pool_id='pool-web')],
              [pool('pool-web', [member('m-1', '192.0.2.10')])])


def case_full_pools():
    web = pool('pool-web', [
        member('m-1', '192.0.2.10', weight=3, monitor_port=9000),
        member('m-2', '2001:db8::11', weight=1, monitor_port=9000),
        member('m-off', '192.0.2.12', admin_state_up=False, monitor_port=1),
        member('m-drain', '192.0.2.13', weight=0, monitor_port=9000),
        member('m-backup', '192.0.2.14', backup=True, monitor_port=9000),
    ], hm(expected_codes='200-204', domain_name='health.example.com',
          http_method='HEAD'))
    sticky = pool('pool-sticky', [member('m-3', '192.0.2.20'),
                                  member('m-4', '192.0.2.21', weight=5)],
                  lb_algorithm='LEAST_CONNECTIONS',
                  session_persistence={'type': 'HTTP_COOKIE'},
                  healthmonitor=hm(healthmonitor_id='hm-2',
                                   expected_codes='202', url_path=None,
                                   http_method=None))
    source = pool('pool-source', [member('m-5', '192.0.2.30'),
                                  member('m-6', '192.0.2.31', weight=0)],
                  lb_algorithm='SOURCE_IP', protocol='PROXYV2')
    persist = pool('pool-persist', [member('m-7', '192.0.2.40', weight=2),
                                    member('m-8', '192.0.2.41')],
                   session_persistence={'type': 'SOURCE_IP',
                                        'persistence_timeout': 360})
    backups = pool('pool-backups', [
        member('m-9', '192.0.2.50', weight=0),
        member('m-10', '192.0.2.51', backup=True, weight=2),
        member('m-11', '192.0.2.52', backup=True)], protocol='PROXY')
    routes = [policy('pol-%d' % i, 'REDIRECT_TO_POOL',
                     [rule('r-%d' % i, 'PATH', 'STARTS_WITH', '/%d' % i)],
                     position=i, redirect_pool_id=p['pool_id'])
              for i, p in enumerate((sticky, source, persist, backups), 1)]
    return lb([listener('li-http', port=8080, default_pool_id='pool-web',
                        policies=routes)],
              [web, sticky, source, persist, backups],
              vip_address='2001:db8::5',
              additional_vips=[{'ip_address': '198.51.100.5'}])


def case_l7_rules():
    combos = []
    for kind, key in (('HOST_NAME', None), ('PATH', None),
                      ('HEADER', 'X-Tenant'), ('COOKIE', 'session')):
        for compare in ('EQUAL_TO', 'STARTS_WITH', 'ENDS_WITH', 'CONTAINS',
                        'REGEX'):
            combos.append((kind, compare, key))
    combos += [('FILE_TYPE', 'EQUAL_TO', None), ('FILE_TYPE', 'REGEX', None)]
    policies = []
    for kind, compare, key in combos:
        value = '^v[0-9]+$' if compare == 'REGEX' else 'v.1'
        for invert in (False, True):
            pid = '%s-%s-%s' % (kind, compare, 'not' if invert else 'is')
            policies.append(policy(
                pid.lower(), 'REJECT', position=len(policies) + 1,
                rules=[rule(pid.lower() + '-r', kind, compare, value,
                            key=key, invert=invert)]))
    n = len(policies)
    policies += [
        # Several rules: all must hold (an inverted one must not match).
        policy('all-of', 'REJECT', position=n + 1, rules=[
            rule('all-1', 'HOST_NAME', 'EQUAL_TO', 'api.example.com'),
            rule('all-2', 'PATH', 'STARTS_WITH', '/admin', invert=True),
            rule('all-3', 'HEADER', 'CONTAINS', 'beta', key='X-Flags'),
            rule('all-off', 'PATH', 'EQUAL_TO', '/x', admin_state_up=False),
        ]),
        # Octavia ignores policies without (enabled) rules.
        policy('no-rules', 'REJECT', position=n + 2, rules=[]),
        policy('rules-off', 'REJECT', position=n + 3, rules=[
            rule('off-1', 'PATH', 'EQUAL_TO', '/', admin_state_up=False)]),
    ]
    return lb([listener('li-http', policies=policies)])


def case_l7_actions():
    def on(path):
        return [rule('r' + path.replace('/', '-'), 'PATH', 'EQUAL_TO', path)]
    policies = [
        # Listed out of order: routes follow 'position'.
        policy('p-prefix', 'REDIRECT_PREFIX', on('/prefix'), position=4,
               redirect_prefix='https://new.example.com',
               redirect_http_code=308),
        policy('p-reject', 'REJECT', on('/reject'), position=1),
        policy('p-url', 'REDIRECT_TO_URL', on('/url'), position=2,
               redirect_url='https://example.com/moved?x={not-a-placeholder}'),
        policy('p-url301', 'REDIRECT_TO_URL', on('/url301'), position=3,
               redirect_url='https://example.com/', redirect_http_code=301),
        policy('p-pool', 'REDIRECT_TO_POOL', on('/pool'), position=5,
               redirect_pool_id='pool-api'),
        policy('p-pool-off', 'REDIRECT_TO_POOL', on('/pool-off'),
               position=6, redirect_pool_id='pool-off'),
        policy('p-pool-empty', 'REDIRECT_TO_POOL', on('/pool-empty'),
               position=7, redirect_pool_id='pool-empty'),
        policy('p-off', 'REJECT', on('/off'), position=8,
               admin_state_up=False),
    ]
    return lb([listener('li-http', policies=policies)], [
        pool('pool-api', [member('m-1', '192.0.2.10')]),
        pool('pool-off', [member('m-2', '192.0.2.11')],
             admin_state_up=False),
        pool('pool-empty', [member('m-3', '192.0.2.12',
                                   admin_state_up=False)]),
    ])


def case_terminated_https_sni():
    default = fake_tls('www.example.com')
    default['intermediates'] = [
        '-----BEGIN CERTIFICATE-----\nFAKE-INTERMEDIATE\n'
        '-----END CERTIFICATE-----']
    tls = listener('li-tls', protocol='TERMINATED_HTTPS', port=443,
                   default_pool_id='pool-web',
                   default_tls_container_data=default,
                   sni_container_data=[fake_tls('api.example.com'),
                                       fake_tls('*.shop.example.com')],
                   tls_versions=['TLSv1', 'TLSv1.2', 'TLSv1.3'],
                   alpn_protocols=['h2', 'http/1.1', 'http/1.0'],
                   hsts_max_age=31536000, hsts_include_subdomains=True,
                   hsts_preload=True,
                   insert_headers={'X-Forwarded-Proto': 'true'})
    h1_only = listener('li-tls-h1', protocol='TERMINATED_HTTPS', port=8443,
                       default_tls_container_data=fake_tls('h1.example.com'),
                       tls_versions=['TLSv1.3'], alpn_protocols=['http/1.1'])
    return lb([tls, h1_only],
              [pool('pool-web', [member('m-1', '192.0.2.10')])])


def case_listener_extras():
    extras = listener('li-http', port=8080, default_pool_id='pool-web',
                      allowed_cidrs=['10.0.0.0/8', '192.0.2.7/24',
                                     '2001:db8::/32'],
                      insert_headers={'X-Forwarded-For': 'true',
                                      'X-Forwarded-Port': 'True',
                                      'X-Forwarded-Proto': 'false'},
                      timeout_client_data=1500, timeout_member_connect=250,
                      timeout_member_data=120000)
    bare = listener('li-bare', port=8081, default_pool_id='pool-web',
                    timeout_client_data=None, timeout_member_connect=None,
                    timeout_member_data=None)
    return lb([extras, bare],
              [pool('pool-web', [member('m-1', '192.0.2.10')])])


def case_disabled_objects():
    return lb([
        listener('li-off', admin_state_up=False, default_pool_id='pool-web'),
        listener('li-pool-off', port=81, default_pool_id='pool-off'),
        listener('li-members-off', port=82, default_pool_id='pool-empty'),
        listener('li-hm-off', port=83, default_pool_id='pool-web'),
        listener('li-no-pool', port=84),
    ], [
        pool('pool-web', [member('m-1', '192.0.2.10')],
             hm(admin_state_up=False, expected_codes='200,302')),
        pool('pool-off', [member('m-2', '192.0.2.11')],
             admin_state_up=False),
        pool('pool-empty', [member('m-3', '192.0.2.12',
                                   admin_state_up=False)]),
    ])


CASES = {name[len('case_'):]: builder for name, builder in sorted(
    globals().items()) if name.startswith('case_')}
LISTEN = {'listener_extras': '127.0.0.1'}   # cases using listen_address


def translated(name):
    graph = CASES[name]()
    return {'servers': translate.servers(graph, LISTEN.get(name)),
            'certificates': translate.certificates(graph)}


@pytest.mark.parametrize('name', sorted(CASES))
def test_golden(name):
    actual = translated(name)
    golden.assert_matches(GOLDEN, name, actual)


def test_every_golden_file_has_a_case():
    assert sorted(p.stem for p in GOLDEN.glob('*.json')) == sorted(CASES)


def test_translation_is_deterministic_and_leaves_the_graph_alone():
    graph = case_full_pools()
    before = copy.deepcopy(graph)
    assert translate.servers(graph) == translate.servers(graph)
    assert graph == before


# -- what the golden files show, spelled out ---------------------------------


def test_disabled_lb_or_listener_gets_no_server_nor_certificate():
    graph = case_terminated_https_sni()
    graph['admin_state_up'] = False
    assert translate.servers(graph) == {}
    assert translate.certificates(graph) == []
    graph = case_terminated_https_sni()
    graph['listeners'][0]['admin_state_up'] = False
    assert list(translate.servers(graph)) == [LB + '--li-tls-h1']
    assert [c['tags'][0] for c in translate.certificates(graph)] == [
        LB + '--li-tls-h1']


def test_servers_are_keyed_and_identified_by_lb_and_listener():
    servers = translated('disabled_objects')['servers']
    assert sorted(servers) == [LB + '--li-hm-off', LB + '--li-members-off',
                               LB + '--li-no-pool', LB + '--li-pool-off']
    assert all(s['@id'] == key for key, s in servers.items())


def test_certificates_carry_the_chain_and_the_tags_policies_select():
    out = translated('terminated_https_sni')
    key = LB + '--li-tls'
    first = out['certificates'][0]
    assert first['certificate'].endswith(
        'END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n'
        'FAKE-INTERMEDIATE\n-----END CERTIFICATE-----\n')
    assert first['key'] == fake_tls('www.example.com')['private_key']
    tags = [c['tags'] for c in out['certificates']]
    assert tags[:3] == [[key, key + '--default'], [key, key + '--sni-0'],
                        [key, key + '--sni-1']]
    selected = [p['certificate_selection']['any_tag'][0] for p in
                out['servers'][key]['tls_connection_policies']]
    assert selected == [key + '--sni-0', key + '--sni-1', key + '--default']


def test_pem_braces_are_escaped():
    graph = case_terminated_https_sni()
    graph['listeners'][0]['default_tls_container_data'].update(
        certificate='{env.X}\n-----BEGIN CERTIFICATE-----\n',
        private_key='x{file./etc/key}')
    first = translate.certificates(graph)[0]
    assert first['certificate'].startswith('\\{env.X\\}\n')
    assert first['key'] == 'x\\{file./etc/key\\}'


def test_private_keys_appear_only_in_certificates():
    graph = case_terminated_https_sni()
    text = json.dumps(translate.servers(graph))
    assert 'PRIVATE KEY' not in text and 'FAKE-KEY' not in text


@pytest.mark.parametrize('codes, expected', [
    ('200', 200), ('404', 404), ('200-204', 2), ('200,202', 2),
    ('200, 201 ,299', 2), ('300-399', 3), (None, 200)])
def test_expected_codes(codes, expected):
    assert translate._expect_status(codes) == expected


def test_supported_matches_the_backend_contract():
    universe = {
        'SUPPORTED_LISTENER_PROTOCOLS': base.ALL_LISTENER_PROTOCOLS,
        'SUPPORTED_POOL_PROTOCOLS': base.ALL_POOL_PROTOCOLS,
        'SUPPORTED_ALGORITHMS': base.ALL_ALGORITHMS,
        'SUPPORTED_HEALTH_MONITOR_TYPES': base.ALL_HEALTH_MONITOR_TYPES,
        'SUPPORTED_SESSION_PERSISTENCE': base.ALL_SESSION_PERSISTENCE,
        'SUPPORTED_L7_ACTIONS': base.ALL_L7_ACTIONS,
        'SUPPORTED_L7_RULE_TYPES': base.ALL_L7_RULE_TYPES,
    }
    assert sorted(translate.SUPPORTED) == sorted(universe)
    for attr, values in translate.SUPPORTED.items():
        assert hasattr(base.ApplianceBackend, attr)
        assert values and values <= universe[attr], attr


def test_the_shared_sample_graph_translates():
    graph = fx.lb_graph()
    servers = translate.servers(graph)
    assert sorted(servers) == ['%s--%s' % (fx.LB, fx.L_HTTP),
                               '%s--%s' % (fx.LB, fx.L_TLS)]
    assert len(translate.certificates(graph)) == 2


# -- refusals ----------------------------------------------------------------


def _edit(path, value):
    """A case_minimal_http graph with ``graph[path...] = value``."""
    graph = case_minimal_http()
    target = graph
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return graph


LI, PO = ('listeners', 0), ('pools', 0)
MEMBER = PO + ('members', 0)
REFUSED = {
    'listener protocol TCP': (LI + ('protocol',), 'TCP'),
    'connection_limit': (LI + ('connection_limit',), 1000),
    'client_authentication': (LI + ('client_authentication',), 'MANDATORY'),
    'insert_headers X-SSL-Client-DN': (
        LI + ('insert_headers',), {'X-SSL-Client-DN': 'true'}),
    'tls_versions TLSv1.1': (LI + ('tls_versions',), ['TLSv1', 'TLSv1.1']),
    'allowed_cidrs': (LI + ('allowed_cidrs',), ['10.0.0.0/33']),
    'listener id': (LI + ('listener_id',), '../servers'),
    'listener id newline': (LI + ('listener_id',), 'li\n'),
    'loadbalancer id': (('loadbalancer_id',), 'lb/1'),
    'algorithm SOURCE_IP_PORT': (PO + ('lb_algorithm',), 'SOURCE_IP_PORT'),
    'session persistence APP_COOKIE': (
        PO + ('session_persistence',), {'type': 'APP_COOKIE',
                                        'cookie_name': 'JSESSIONID'}),
    'pool protocol HTTPS': (PO + ('protocol',), 'HTTPS'),
    'tls_enabled': (PO + ('tls_enabled',), True),
    'health monitor type TCP': (PO + ('healthmonitor',), hm(type='TCP')),
    'health monitor type HTTPS': (PO + ('healthmonitor',), hm(type='HTTPS')),
    'expected_codes': (PO + ('healthmonitor',), hm(expected_codes='200,302')),
    'member address': (MEMBER + ('address',), '{http.request.host}'),
    'member port': (MEMBER + ('protocol_port',), 0),
    'monitor_address': (MEMBER + ('monitor_address',), '192.0.2.99'),
    'listen address': (('vip_address',), None),
}


# the object each refusal names (none: ids Caddy cannot use and the VIP
# are the load balancer's own problem)
NAMED = {'expected_codes': 'hm-1', 'health monitor type HTTPS': 'hm-1',
         'health monitor type TCP': 'hm-1', 'member address': 'm-1',
         'member port': 'm-1', 'monitor_address': 'm-1',
         'algorithm SOURCE_IP_PORT': 'pool-web',
         'pool protocol HTTPS': 'pool-web', 'tls_enabled': 'pool-web',
         'session persistence APP_COOKIE': 'pool-web',
         'allowed_cidrs': 'li-http', 'client_authentication': 'li-http',
         'connection_limit': 'li-http', 'listener protocol TCP': 'li-http',
         'insert_headers X-SSL-Client-DN': 'li-http',
         'tls_versions TLSv1.1': 'li-http'}


@pytest.mark.parametrize('what', sorted(REFUSED))
def test_refused(what):
    path, value = REFUSED[what]
    graph = _edit(path, value)
    if what.startswith('monitor_address'):
        graph['pools'][0]['healthmonitor'] = hm()
    with pytest.raises(exceptions.BackendRejected) as raised:
        translate.servers(graph)
    assert str(raised.value).startswith('caddy: ')
    # the refused object is named: multilb applies the rest without it
    assert raised.value.object_ids == tuple(filter(None, [NAMED.get(what)]))
    if what != 'listen address':        # certificates need no address
        with pytest.raises(exceptions.BackendRejected):
            translate.certificates(graph)


def test_health_monitor_on_proxy_pool_refused():
    graph = _edit(PO + ('protocol',), 'PROXY')
    graph['pools'][0]['healthmonitor'] = hm()
    with pytest.raises(exceptions.BackendRejected, match='PROXY header'):
        translate.servers(graph)
    graph['pools'][0]['healthmonitor']['admin_state_up'] = False
    assert translate.servers(graph)


def test_members_with_different_monitor_ports_refused():
    graph = case_minimal_http()
    graph['pools'][0]['members'] += [member('m-2', '192.0.2.2',
                                            monitor_port=81)]
    graph['pools'][0]['healthmonitor'] = hm()
    with pytest.raises(exceptions.BackendRejected,
                       match='monitor_port') as raised:
        translate.servers(graph)
    assert raised.value.object_ids == ('m-2',)


@pytest.mark.parametrize('bad', [
    dict(type='SSL_CONN_HAS_CERT'), dict(compare_type='GREATER'),
    dict(type='FILE_TYPE', compare_type='STARTS_WITH'), dict(value=None),
    dict(type='HEADER', key=None), dict(type='HEADER', key='X Bad'),
    dict(type='COOKIE', key='a}b'), dict(type='COOKIE', key='a{b'),
    dict(type='COOKIE', key='a.b}{http.request.uri'),
    dict(type='COOKIE', key='sess\n'), dict(type='HEADER', key='X-A\n'),
])
def test_bad_rules_refused(bad):
    fields = dict(type='PATH', compare_type='EQUAL_TO', value='/')
    fields.update(bad)
    graph = case_minimal_http()
    graph['listeners'][0]['l7policies'] = [policy('p', 'REJECT', [
        rule('r', fields.pop('type'), fields.pop('compare_type'),
             fields.pop('value'), **fields)])]
    with pytest.raises(exceptions.BackendRejected) as raised:
        translate.servers(graph)
    assert raised.value.object_ids == ('r',)


@pytest.mark.parametrize('fields', [
    dict(action='REDIRECT_TO_URL', redirect_url='http://a/\r\nSet-Cookie: x'),
    dict(action='REDIRECT_TO_URL', redirect_url=None),
    dict(action='REDIRECT_PREFIX', redirect_prefix='http://a\\'),
    dict(action='REDIRECT_TO_URL', redirect_url='http://a/',
         redirect_http_code=200),
    dict(action='DROP'),
])
def test_bad_policies_refused(fields):
    graph = case_minimal_http()
    graph['listeners'][0]['l7policies'] = [policy(
        'p', fields.pop('action'),
        [rule('r', 'PATH', 'EQUAL_TO', '/')], **fields)]
    with pytest.raises(exceptions.BackendRejected) as raised:
        translate.servers(graph)
    assert raised.value.object_ids == ('p',)


def test_tls_listener_needs_its_certificates():
    graph = case_terminated_https_sni()
    graph['listeners'][0]['sni_container_data'][1]['primary_cn'] = None
    with pytest.raises(exceptions.BackendRejected, match='primary_cn'):
        translate.certificates(graph)
    graph['listeners'][0]['default_tls_container_data'] = None
    with pytest.raises(exceptions.BackendRejected, match='certificate'):
        translate.servers(graph)


# -- hostile values ----------------------------------------------------------


@pytest.mark.parametrize('value', [
    HOSTILE, '*', '.*', '||', '"', "'", '\\', '\\{x}', '{', '}', '$^',
    '(?i)X', 'a\nb', '\x00', 'é*ü'])
def test_re2_literal_matches_only_the_value(value):
    # The escaped characters are RE2 and Python re metacharacters alike, so
    # Python's re stands in for RE2 here (the live test below runs RE2).
    pattern = re.compile(translate.re2_literal(value))
    assert pattern.fullmatch(value)
    assert not pattern.fullmatch(value + 'x')
    assert not pattern.fullmatch(value.replace('*', 'zz').replace('.', 'q')
                                 .replace('|', '') + 'y')


@pytest.mark.parametrize('value, expanded', [
    ('{http.request.uri}', '{http.request.uri}'),
    ('a\\{b}', 'a\\{b}'), ('}{', '}{'), ('plain', 'plain')])
def test_escape_placeholders(value, expanded):
    escaped = translate.escape_placeholders(value)
    # Caddy's replacer: a backslash before a brace is dropped, the brace
    # kept, and no unescaped brace remains to open a placeholder.
    assert re.sub(r'\\([{}])', r'\1', escaped) == expanded
    assert not re.search(r'(?<!\\)[{}]', escaped)


def hostile_graph(port=80, other_port=81):
    policies = [
        policy('p-path', 'REJECT', position=1,
               rules=[rule('r-1', 'PATH', 'EQUAL_TO', '/' + HOSTILE)]),
        policy('p-header', 'REDIRECT_TO_URL', position=2,
               redirect_url='http://e.example/{http.request.uri}?"x',
               rules=[rule('r-2', 'HEADER', 'EQUAL_TO', HOSTILE_LINE,
                           key='X-Hostile')]),
        policy('p-cookie', 'REDIRECT_PREFIX', position=3,
               redirect_prefix='https://p.example/{x}',
               rules=[rule('r-3', 'COOKIE', 'STARTS_WITH', 'v*||{a}',
                           key='sess')]),
        policy('p-host', 'REJECT', position=4,
               rules=[rule('r-4', 'HOST_NAME', 'EQUAL_TO', '*')]),
        # Not hostile: the AND of rules and an absent cookie, for real.
        policy('p-and', 'REDIRECT_TO_URL', position=5,
               redirect_url='http://and.example/', rules=[
                   rule('r-5', 'HEADER', 'EQUAL_TO', 'yes', key='X-And'),
                   rule('r-6', 'PATH', 'STARTS_WITH', '/x', invert=True)]),
        policy('p-empty', 'REDIRECT_TO_URL', position=6,
               redirect_url='http://empty.example/', rules=[
                   rule('r-7', 'COOKIE', 'REGEX', '^$', key='e')]),
    ]
    return lb([listener('li-hostile', port=port, policies=policies),
               listener('li-other', port=other_port)])


def test_hostile_values_stay_data_of_their_own_listener():
    graph = hostile_graph()
    servers = translate.servers(graph)
    calm = hostile_graph()
    calm['listeners'][0]['l7policies'] = []
    other = LB + '--li-other'
    assert servers[other] == translate.servers(calm)[other]
    routes = servers[LB + '--li-hostile']['routes']
    assert routes[0]['match'] == [{'path_regexp': {
        'pattern': '^/a"b\\*c\\|\\|\\{http\\.request\\.uri\\}\n\\.x$'}}]
    assert routes[1]['handle'][0]['headers'] == {
        'Location': ['http://e.example/\\{http.request.uri\\}?"x']}
    assert routes[2]['handle'][0]['headers'] == {
        'Location': ['https://p.example/\\{x\\}{http.request.uri}']}
    assert routes[3]['match'] == [
        {'header_regexp': {'Host': {'pattern': '(?i)^\\*$'}}}]
    assert 'expression' not in json.dumps(servers)


# -- the real Caddy ----------------------------------------------------------


def _validate(tmp_path, config):
    path = tmp_path / 'caddy.json'
    path.write_text(json.dumps(config))
    done = subprocess.run([CADDY, 'validate', '--config', str(path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr[-2000:]


def _config(servers, certs=()):
    apps = {'http': {'servers': servers}}
    if certs:
        apps['tls'] = {'certificates': {'load_pem': list(certs)}}
    return {'admin': {'disabled': True}, 'apps': apps}


@needs_caddy
@pytest.mark.parametrize('name', sorted(CASES))
def test_caddy_accepts_golden_servers(tmp_path, name):
    # The golden PEM is fake, so only the servers are checked here.
    _validate(tmp_path, _config(translated(name)['servers']))


def _self_signed(cn):
    pytest.importorskip('cryptography')
    from tests import tls
    return tls.self_signed(cn)


@needs_caddy
def test_caddy_accepts_a_full_config(tmp_path):
    graphs = [case_full_pools(), case_l7_rules(), case_listener_extras(),
              case_terminated_https_sni()]
    for index, graph in enumerate(graphs):
        graph['loadbalancer_id'] = 'lb-%d' % index
        for li in graph['listeners']:
            li['protocol_port'] += 1000 * index
            if li['protocol'] == 'TERMINATED_HTTPS':
                li['default_tls_container_data'] = _self_signed('a.test')
                li['sni_container_data'] = [_self_signed('b.test'),
                                            _self_signed('c.test')]
    servers, certs = {}, []
    for graph in graphs:
        servers.update(translate.servers(graph))
        certs += translate.certificates(graph)
    _validate(tmp_path, _config(servers, certs))


@needs_caddy
def test_pem_placeholders_are_not_expanded(tmp_path):
    # Unescaped, Caddy would read this "key" from its own disk and load
    # the pair: another tenant's key on the node could be borrowed.
    victim = _self_signed('victim.test')
    key_file = tmp_path / 'victim.key'
    key_file.write_text(victim['private_key'])
    graph = case_terminated_https_sni()
    graph['listeners'] = graph['listeners'][1:]
    graph['listeners'][0]['default_tls_container_data'] = dict(
        victim, private_key='{file.%s}' % key_file)
    certs = translate.certificates(graph)
    assert certs[0]['key'] == '\\{file.%s\\}' % key_file
    path = tmp_path / 'caddy.json'
    path.write_text(json.dumps(_config(translate.servers(graph), certs)))
    done = subprocess.run([CADDY, 'validate', '--config', str(path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert 'PEM' in done.stderr


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_caddy(tmp_path):
    """Serve hostile_graph() on 127.0.0.1; yields its two listeners' ports."""
    ports = _free_port(), _free_port()
    path = tmp_path / 'live.json'
    path.write_text(json.dumps(_config(translate.servers(
        hostile_graph(*ports), listen_address='127.0.0.1'))))
    proc = subprocess.Popen([CADDY, 'run', '--config', str(path)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(('127.0.0.1', ports[1]), 0.2).close()
                break
            except OSError:
                assert proc.poll() is None, 'caddy exited'
                assert time.monotonic() < deadline, 'caddy did not listen'
                time.sleep(0.05)
        yield ports
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get(port, path='/', headers=None):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
    try:
        conn.request('GET', path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader('Location')
    finally:
        conn.close()


@needs_caddy
def test_hostile_values_only_match_themselves_in_caddy(live_caddy):
    port, other = live_caddy
    quoted = urllib.parse.quote('/' + HOSTILE)
    assert _get(port, quoted) == (403, None)
    for near in ('/a"bZc||{http.request.uri}\n.x', '/' + HOSTILE + 'x',
                 '/a"b*c||/\n.x', '/A"B*C||{HTTP.REQUEST.URI}\n.X'):
        assert _get(port, urllib.parse.quote(near)) == (503, None), near
    assert _get(port, '/q', {'X-Hostile': HOSTILE_LINE}) == (
        302, 'http://e.example/{http.request.uri}?"x')
    assert _get(port, '/q', {'X-Hostile': 'v"Z||/q'}) == (503, None)
    assert _get(port, '/q?z=1', {'Cookie': 'o=1; sess=v*||{a}b'}) == (
        302, 'https://p.example/{x}/q?z=1')
    assert _get(port, '/q', {'Cookie': 'sess=vZ||{a}'}) == (503, None)
    assert _get(port, '/q', {'Host': '*'}) == (403, None)
    assert _get(port, '/q', {'Host': 'example.com'}) == (503, None)
    assert _get(port, '/y', {'X-And': 'yes'}) == (302, 'http://and.example/')
    assert _get(port, '/xy', {'X-And': 'yes'}) == (503, None)
    assert _get(port, '/y', {'X-And': 'no'}) == (503, None)
    assert _get(port, '/', {'Cookie': 'a=1; e='}) == (
        302, 'http://empty.example/')
    assert _get(port, '/', {'Cookie': 'a=1'}) == (503, None)
    # The other listener of the same load balancer is untouched.
    assert _get(other, quoted) == (503, None)
    assert _get(other, '/q', {'Host': '*'}) == (503, None)
