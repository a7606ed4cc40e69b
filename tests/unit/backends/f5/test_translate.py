"""Octavia graph -> AS3 declaration (backends/f5/translate.py).

Every declaration built here must pass ``tools.localstack.as3_schema``
(F5's AS3 3.56 schema plus AS3's formats and pointer resolution).

Golden files: each ``case_*`` builds graphs and compares the declaration
with ``golden/<case>.json``. After an intended change rewrite them with::

    MULTILB_REGEN_GOLDEN=1 python -m pytest tests/unit/backends/f5

and review the diff. TLS material in them is fake PEM text.
"""

import copy
import json
import pathlib

import pytest

from backends import exceptions
from backends.f5 import names
from backends.f5 import translate
from tests.unit import fixtures as fx
from tests.unit import golden
from tools.localstack import as3_schema

GOLDEN = pathlib.Path(__file__).parent / 'golden'
PROJECT = '0a1b2c3d4e5f60718293a4b5c6d7e8f9'      # starts with a digit
NETWORK = '7d3f6a2e-2b1c-4f5e-9a8b-1c2d3e4f5a6b'


def graph(**kwargs):
    kwargs.setdefault('project_id', PROJECT)
    kwargs.setdefault('vip_network_id', NETWORK)
    return fx.lb_graph(**kwargs)


def decl(*graphs):
    return translate.declaration({names.tenant_of(graphs[0]):
                                  translate.tenant(graphs)})


def app(g):
    return translate.application(g)


def listener(g, lid):
    return next(li for li in g['listeners'] if li['listener_id'] == lid)


def pool(g, pid):
    return next(p for p in g['pools'] if p['pool_id'] == pid)


def rule(g, rid=fx.R_API):
    for li in g['listeners']:
        for pol in li['l7policies']:
            for r in pol['rules']:
                if r['l7rule_id'] == rid:
                    return r


def refused(g, *words):
    with pytest.raises(exceptions.BackendRejected) as info:
        translate.check(g)
    for word in words:
        assert word in str(info.value)
    return info.value


def strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def pointers(value):
    """Every value under a ``use`` or ``bigip`` key."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ('use', 'bigip'):
                yield v
            yield from pointers(v)
    elif isinstance(value, list):
        for v in value:
            yield from pointers(v)


# -- attacks first ------------------------------------------------------------


@pytest.mark.parametrize('value', [
    '/Common/http', '{"bigip": "/Common/evil"}', '{"use": "/Common/x"}',
    '/Common/Shared/x', '"], "bigip": "/Common/x', 'a\\"b'])
def test_l7_value_stays_a_plain_value(value):
    g = graph()
    rule(g)['value'] = value
    d = decl(g)
    assert as3_schema.validate(d) == []
    conditions = app(g)['policy_listener-http']['rules'][0]['conditions']
    assert conditions[0]['path']['values'] == [value]
    for p in pointers(d):
        assert not p.startswith('/Common'), p


@pytest.mark.parametrize('key', [
    '/Common/x', '{"bigip":"/Common/x"}', 'a b', 'X-Ok\r\nX-Evil: 1', '',
    'x`=/T/A/o`'])
def test_header_and_cookie_names_must_be_tokens(key):
    for kind in ('HEADER', 'COOKIE'):
        g = graph()
        rule(g).update(type=kind, key=key)
        err = refused(g, 'not an HTTP token')
        assert err.object_ids == (fx.R_API,)


@pytest.mark.parametrize('value', ['`=/Common/x`', 'a\r\nb', 'x\x00'])
def test_l7_value_backquote_and_control_refused(value):
    g = graph()
    rule(g)['value'] = value
    refused(g, 'backquote or control characters')


@pytest.mark.parametrize('name', ['/Common/evil', 'a b', 'x' * 65, '`x`',
                                  'a/b', ''])
def test_app_cookie_name_refused(name):
    g = graph()
    pool(g, fx.POOL_WEB)['session_persistence'] = {
        'type': 'APP_COOKIE', 'cookie_name': name}
    refused(g, 'cookie')


@pytest.mark.parametrize('url', [
    'tcl:[HTTP::uri]', 'http://x/[exec]', 'http://x/$a', 'http://x/`y`',
    'http://x/{a}', 'javascript:alert(1)', '/relative', 'http://a b'])
def test_redirect_url_refused(url):
    g = graph()
    pol = listener(g, fx.L_HTTP)['l7policies'][0]
    pol.update(action='REDIRECT_TO_URL', redirect_url=url,
               redirect_pool_id=None)
    refused(g, 'redirect_url')


@pytest.mark.parametrize('field,value', [
    ('url_path', '/x`=/Common/y`'), ('url_path', '/x\\r\\nHost: evil'),
    ('url_path', '/a b'), ('domain_name', 'evil\r\nX: 1'),
    ('domain_name', '`A`'), ('http_method', 'GET /x'),
    ('expected_codes', '200|.*'), ('expected_codes', '`x`')])
def test_monitor_strings_refused(field, value):
    g = graph()
    pool(g, fx.POOL_WEB)['healthmonitor'][field] = value
    err = refused(g)
    assert err.object_ids == (fx.HM,)


def test_names_and_descriptions_never_reach_the_declaration():
    g = graph(name='/Common/lbname`x`', description='{"bigip": "x"}')
    for li in g['listeners']:
        li['name'] = '/Common/evil'
    for p in g['pools']:
        p['name'] = 'EVILNAME'
        for m in p['members']:
            m['name'] = 'EVILNAME'
    text = json.dumps(decl(g))
    assert 'EVILNAME' not in text and '/Common/evil' not in text
    assert 'lbname' not in text


def test_hostile_ids_refused():
    g = graph()
    pool(g, fx.POOL_API)['pool_id'] = '../Common/x'
    refused(g, 'invalid pool id')


def test_every_pointer_points_into_the_application():
    d = decl(graph())
    assert as3_schema.validate(d) == []
    application = app(graph())
    for p in pointers(d):
        assert p in application


def test_private_key_only_in_certificates():
    d = decl(graph())
    where = [k for k, v in app(graph()).items()
             if fx.SECRETS[0] in json.dumps(v)]
    assert where and all(app(graph())[k]['class'] == 'Certificate'
                         for k in where)
    assert as3_schema.validate(d) == []


# -- golden cases -------------------------------------------------------------


def _udp_graph():
    g = graph(loadbalancer_id='lb-udp')
    g['listeners'] = [dict(listener(g, fx.L_HTTP), listener_id='l-udp',
                           protocol='UDP', port=53, protocol_port=53,
                           l7policies=[], default_pool_id='pool-dns',
                           insert_headers={})]
    dns = dict(pool(g, fx.POOL_API), pool_id='pool-dns', protocol='UDP',
               lb_algorithm='SOURCE_IP')
    dns['members'] = [dict(m, protocol_port=53, weight=200)
                      for m in dns['members']]
    dns['healthmonitor'] = dict(fx.lb_graph()['pools'][0]['healthmonitor'],
                                healthmonitor_id='hm-dns',
                                type='UDP-CONNECT')
    g['pools'] = [dns]
    return g


def case_full_http():
    g = graph()
    g['listeners'] = [listener(g, fx.L_HTTP)]
    li = g['listeners'][0]
    li.update(connection_limit=1000, allowed_cidrs=['198.51.100.0/24'],
              insert_headers={'X-Forwarded-For': 'true'})
    web = pool(g, fx.POOL_WEB)
    web['session_persistence'] = {'type': 'APP_COOKIE',
                                  'cookie_name': 'JSESSIONID'}
    web['members'][0].update(weight=0)
    web['members'][1].update(backup=True, weight=256)
    web['healthmonitor'].update(domain_name='www.example.com',
                                expected_codes='200-202,204')
    return [g]


def case_terminated_https_sni():
    g = graph()
    g['listeners'] = [listener(g, fx.L_TLS)]
    tls = g['listeners'][0]
    tls.update(default_pool_id=fx.POOL_WEB, tls_versions=['TLSv1.2',
                                                          'TLSv1.3'])
    tls['sni_container_data'][0]['primary_cn'] = 'api.example.com'
    pool(g, fx.POOL_WEB)['session_persistence'] = {'type': 'HTTP_COOKIE'}
    return [g]


def case_udp():
    return [_udp_graph()]


def case_l7_policies():
    g = graph()
    g['listeners'] = [listener(g, fx.L_HTTP)]
    pols = g['listeners'][0]['l7policies']
    pols[0]['rules'].append(dict(rule(g), l7rule_id='r-host',
                                 type='HOST_NAME', compare_type='ENDS_WITH',
                                 value='.example.com', invert=True))
    pols[0]['rules'].append(dict(rule(g), l7rule_id='r-hdr', type='HEADER',
                                 key='X-Env', compare_type='EQUAL_TO',
                                 value='prod'))
    pols[1]['rules'].append(dict(rule(g), l7rule_id='r-ck', type='COOKIE',
                                 key='role', compare_type='CONTAINS',
                                 value='admin'))
    pols.append(dict(pols[1], l7policy_id='pol-url', position=3,
                     action='REDIRECT_TO_URL', redirect_http_code=301,
                     redirect_url='https://www.example.com/moved',
                     rules=[dict(rule(g), l7rule_id='r-ft',
                                 type='FILE_TYPE', compare_type='EQUAL_TO',
                                 value='php')]))
    pols.append(dict(pols[1], l7policy_id='pol-off', position=4,
                     admin_state_up=False))
    return [g]


def case_two_lbs_one_tenant():
    a = graph()
    b = graph(loadbalancer_id='lb-2', vip_address='2001:db8::5')
    b['listeners'] = [dict(listener(b, fx.L_HTTP), listener_id='l-tcp',
                           protocol='TCP', protocol_port=5432,
                           l7policies=[], insert_headers={},
                           admin_state_up=False)]
    b['pools'] = [dict(pool(b, fx.POOL_API), pool_id='pool-pg',
                       protocol='TCP', healthmonitor=dict(
                           pool(b, fx.POOL_WEB)['healthmonitor'],
                           healthmonitor_id='hm-pg', type='TCP'))]
    b['listeners'][0]['default_pool_id'] = 'pool-pg'
    return [a, b]


CASES = {name[len('case_'):]: builder for name, builder in sorted(
    globals().items()) if name.startswith('case_')}


@pytest.mark.parametrize('name', sorted(CASES))
def test_golden(name):
    actual = decl(*CASES[name]())
    assert as3_schema.validate(actual) == []
    golden.assert_matches(GOLDEN, name, actual)


def test_every_golden_file_has_a_case():
    assert sorted(p.stem for p in GOLDEN.glob('*.json')) == sorted(CASES)


def test_deterministic_and_leaves_the_graph_alone():
    g = graph()
    before = copy.deepcopy(g)
    assert decl(g) == decl(g)
    assert g == before


# -- features, spelled out ----------------------------------------------------


@pytest.mark.parametrize('hm_type,monitor', [
    ('HTTP', 'http'), ('HTTPS', 'https'), ('TCP', 'tcp'), ('PING', 'icmp'),
    ('UDP-CONNECT', 'udp')])
def test_monitor_types(hm_type, monitor):
    g = graph()
    pool(g, fx.POOL_WEB)['healthmonitor']['type'] = hm_type
    assert app(g)['mon_hm-web']['monitorType'] == monitor
    assert as3_schema.validate(decl(g)) == []


@pytest.mark.parametrize('algorithm,mode', [
    ('ROUND_ROBIN', 'ratio-member'),
    ('LEAST_CONNECTIONS', 'ratio-least-connections-member'),
    ('SOURCE_IP', 'ratio-member')])
def test_algorithms(algorithm, mode):
    g = graph()
    pool(g, fx.POOL_WEB)['lb_algorithm'] = algorithm
    a = app(g)
    assert a['pool_pool-web']['loadBalancingMode'] == mode
    assert (a['vs_listener-http']['persistenceMethods']
            == (['source-address'] if algorithm == 'SOURCE_IP' else []))


@pytest.mark.parametrize('protocol,kind', [
    ('HTTP', 'Service_HTTP'), ('HTTPS', 'Service_TCP'),
    ('TCP', 'Service_TCP'), ('UDP', 'Service_UDP')])
def test_listener_protocols(protocol, kind):
    g = graph()
    li = listener(g, fx.L_HTTP)
    li.update(protocol=protocol, l7policies=[])
    pool(g, fx.POOL_WEB)['protocol'] = 'TCP' if protocol != 'UDP' else 'UDP'
    if protocol == 'UDP':
        pool(g, fx.POOL_WEB)['healthmonitor']['type'] = 'UDP-CONNECT'
    assert app(g)['vs_listener-http']['class'] == kind
    assert as3_schema.validate(decl(g)) == []


def test_terminated_https_service():
    vs = app(graph())['vs_listener-tls']
    assert vs['class'] == 'Service_HTTPS' and vs['redirect80'] is False
    assert vs['serverTLS'] == 'tls_listener-tls'


def test_hsts_of_a_terminated_https_listener_is_inserted():
    """Octavia's HSTS fields, not BIG-IP's defaults (no header; and AS3
    would include subdomains unless told not to)."""
    g = graph()
    listener(g, fx.L_TLS).update(hsts_max_age=31536000,
                                 hsts_include_subdomains=False,
                                 hsts_preload=True,
                                 insert_headers={'X-Forwarded-For': 'true'})
    a = app(g)
    assert a['vs_listener-tls']['profileHTTP'] == {'use': 'http_listener-tls'}
    assert a['http_listener-tls'] == {
        'class': 'HTTP_Profile', 'xForwardedFor': True, 'hstsInsert': True,
        'hstsPeriod': 31536000, 'hstsIncludeSubdomains': False,
        'hstsPreload': True}
    assert as3_schema.validate(decl(g)) == []


def test_no_hsts_asked_is_no_hsts_header():
    g = graph()
    listener(g, fx.L_TLS).update(hsts_max_age=None)
    assert not any(k.startswith('hsts') for v in app(g).values()
                   if isinstance(v, dict) for k in v)


@pytest.mark.parametrize('max_age', [-1, 2 ** 32, '3600', True])
def test_an_hsts_max_age_as3_cannot_take_is_refused(max_age):
    g = graph()
    listener(g, fx.L_TLS)['hsts_max_age'] = max_age
    refused(g, 'hsts_max_age')


def test_weights_backup_and_states():
    g = graph()
    web = pool(g, fx.POOL_WEB)
    web['members'][0].update(weight=0)
    web['members'][1].update(admin_state_up=False, backup=True)
    members = app(g)['pool_pool-web']['members']
    assert [m['adminState'] for m in members] == ['disable', 'offline']
    assert [m['priorityGroup'] for m in members] == [1, 0]
    assert app(g)['pool_pool-web']['minimumMembersActive'] == 1


def test_large_weights_scaled_into_as3_range():
    g = graph()
    for m, w in zip(pool(g, fx.POOL_WEB)['members'], (256, 1)):
        m['weight'] = w
    ratios = [m['ratio'] for m in app(g)['pool_pool-web']['members']]
    assert ratios == [100, 1]


def test_disabled_lb_disables_services():
    a = app(graph(admin_state_up=False))
    assert all(v['enable'] is False for v in a.values()
               if isinstance(v, dict) and v['class'].startswith('Service'))


def test_dangling_pointer_would_be_caught():
    d = decl(graph())
    tenant = d[names.tenant_of(graph())]
    del tenant['lb_' + fx.LB]['pool_pool-api']
    assert as3_schema.validate(d)[0].endswith(
        'Unable to find /%s/lb_%s/pool_pool-api' % (names.tenant_of(
            graph()), fx.LB))


# -- tenant naming ------------------------------------------------------------


def test_tenant_name_from_project_and_network():
    name = names.tenant(PROJECT, NETWORK)
    assert name == 'mlb_%s_%s' % (PROJECT, NETWORK)
    assert len(name) <= names.TENANT_MAX


def test_long_or_odd_ids_hash_deterministically():
    long = names.tenant('p' * 200, NETWORK)
    assert long == names.tenant('p' * 200, NETWORK)
    assert long.startswith('mlb_h') and len(long) == 69
    assert names.tenant('a/b', 'n') != names.tenant('a', 'b/n')
    odd = names.tenant('proj x', 'net')
    assert odd.startswith('mlb_h')


def test_tenant_refuses_mixed_networks():
    with pytest.raises(exceptions.BackendRejected):
        translate.tenant([graph(), graph(loadbalancer_id='lb-2',
                                         vip_network_id='other')])


def test_declaration_envelope():
    d = decl(graph())
    assert d['class'] == 'ADC' and d['schemaVersion'] == '3.56.0'


# -- refusals -----------------------------------------------------------------


def test_capabilities_match_base_names():
    from backends import base
    for attr, values in translate.SUPPORTED.items():
        assert hasattr(base.ApplianceBackend, attr)
        every = getattr(base, 'ALL_' + attr[len('SUPPORTED_'):])
        assert values <= every, attr


@pytest.mark.parametrize('mutate,words', [
    (lambda g: listener(g, fx.L_HTTP).update(protocol='SCTP'),
     ['listener protocol SCTP', 'supported']),
    (lambda g: pool(g, fx.POOL_WEB).update(protocol='PROXY'),
     ['pool protocol PROXY']),
    (lambda g: pool(g, fx.POOL_WEB).update(lb_algorithm='SOURCE_IP_PORT'),
     ['SOURCE_IP_PORT', 'ROUND_ROBIN']),
    (lambda g: pool(g, fx.POOL_WEB)['healthmonitor'].update(
        type='TLS-HELLO'), ['TLS-HELLO', 'supported']),
    (lambda g: pool(g, fx.POOL_WEB)['healthmonitor'].update(delay=400),
     ['900']),
    (lambda g: rule(g).update(compare_type='REGEX'),
     ['REGEX', 'regular expressions']),
    (lambda g: rule(g).update(type='SSL_CONN_HAS_CERT'),
     ['SSL_CONN_HAS_CERT']),
    (lambda g: listener(g, fx.L_HTTP)['l7policies'][0].update(
        action='REDIRECT_PREFIX'), ['REDIRECT_PREFIX']),
    (lambda g: listener(g, fx.L_HTTP).update(
        allowed_cidrs=['10.0.0.0/8', '192.168.0.0/16']), ['allowed_cidrs']),
    (lambda g: listener(g, fx.L_HTTP).update(
        insert_headers={'X-Forwarded-Port': 'true'}), ['X-Forwarded-Port']),
    (lambda g: listener(g, fx.L_TLS).update(
        client_authentication='MANDATORY'), ['client_authentication']),
    (lambda g: pool(g, fx.POOL_WEB).update(tls_enabled=True),
     ['tls_enabled']),
    (lambda g: pool(g, fx.POOL_WEB)['members'][0].update(monitor_port=99),
     ['monitor_port']),
    (lambda g: pool(g, fx.POOL_WEB)['members'][0].update(address='x'),
     ['not an IP']),
    (lambda g: pool(g, fx.POOL_WEB).update(session_persistence={
        'type': 'HTTP_COOKIE'}) or listener(g, fx.L_HTTP).update(
            protocol='TCP', l7policies=[]), ['needs an HTTP listener']),
])
def test_refused(mutate, words):
    g = graph()
    mutate(g)
    refused(g, *words)
