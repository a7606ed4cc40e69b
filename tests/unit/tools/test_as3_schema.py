"""The AS3 validator: F5's examples pass, what AS3 refuses is refused."""

import copy
import glob
import json
import os

import pytest

from tools.localstack import as3_schema

EXAMPLES = sorted(glob.glob(os.path.join(
    os.path.dirname(as3_schema.SCHEMA_PATH), 'examples', '*.json')))


def _decl(app_items=None):
    app = {'class': 'Application',
           'vs': {'class': 'Service_HTTP',
                  'virtualAddresses': ['192.0.2.1'], 'pool': 'web'},
           'web': {'class': 'Pool', 'members': [
               {'servicePort': 80, 'serverAddresses': ['192.0.2.10']}]}}
    app.update(app_items or {})
    return {'class': 'ADC', 'schemaVersion': '3.56.0', 'id': 'x',
            'T1': {'class': 'Tenant', 'A1': app}}


def test_forty_examples():
    assert len(EXAMPLES) == 40


@pytest.mark.parametrize('path', EXAMPLES, ids=os.path.basename)
def test_example_valid_after_defaults(path):
    with open(path) as f:
        declaration = json.load(f)
    before = copy.deepcopy(declaration)
    assert as3_schema.validate(declaration) == []
    assert declaration == before        # defaults go into a copy


def test_minimal_valid():
    assert as3_schema.validate(_decl()) == []


def test_as3_wrapper():
    body = {'class': 'AS3', 'action': 'deploy', 'declaration': _decl()}
    assert as3_schema.validate(body) == []
    body['declaration']['T1']['A1']['vs']['pool'] = 'nope'
    assert as3_schema.validate(body) == [
        '/T1/A1/vs/pool: Unable to find /T1/A1/nope']
    body['declaration']['T1']['A1']['vs']['virtualPort'] = 'x'
    errors = as3_schema.validate(body)
    assert errors and errors[0].startswith('/T1/A1/vs/virtualPort: ')


def test_malformed_rejected():
    d = _decl()
    del d['T1']['A1']['web']['members'][0]['servicePort']
    errors = as3_schema.validate(d)
    assert errors == ["/T1/A1/web/members/0: should have required "
                      "property 'servicePort'"]


def test_not_an_object():
    assert as3_schema.validate('x') == ['/: should be object']


def test_not_an_ip_rejected():
    d = _decl()
    d['T1']['A1']['vs']['virtualAddresses'] = ['not-an-ip']
    errors = as3_schema.validate(d)
    assert errors and 'should match format "f5ip"' in errors[0]
    assert errors[0].startswith('/T1/A1/vs/virtualAddresses/0')


@pytest.mark.parametrize('value,ok', [
    ('192.0.2.1', True), ('192.0.2.1%2', True), ('10.0.0.0/8', True),
    ('10.0.0.0%3/8', True), ('2001:db8::1', True), ('2001:db8::/32', True),
    ('any', True), ('', True), ('not-an-ip', False), ('10.0.0.0/33', False),
    ('2001:db8::/129', False), ('192.0.2.1%x', False), ('1.2.3', False),
    ('/Common/x', False)])
def test_f5ip(value, ok):
    assert as3_schema.is_f5ip(value) is ok


@pytest.mark.parametrize('value,ok', [
    ('/Common/http', True), ('/Common/Shared/x', True), ('http', False),
    ('/Common', False), ('/Common/a b', False), ('/Common/x/', False)])
def test_f5bigip(value, ok):
    assert as3_schema.is_f5bigip(value) is ok


def test_dangling_pool_pointer():
    d = _decl()
    d['T1']['A1']['vs']['pool'] = 'missing'
    assert as3_schema.validate(d) == [
        '/T1/A1/vs/pool: Unable to find /T1/A1/missing']


def test_pointer_to_wrong_class():
    d = _decl({'mon': {'class': 'Monitor', 'monitorType': 'tcp'}})
    d['T1']['A1']['vs']['pool'] = 'mon'
    errors = as3_schema.validate(d)
    assert errors == ['/T1/A1/vs/pool: /T1/A1/mon is not of class Pool']


def test_use_pointer_and_absolute_paths():
    d = _decl()
    d['T1']['A1']['vs']['pool'] = {'use': '/T1/A1/web'}
    assert as3_schema.validate(d) == []
    d['T1']['A1']['vs']['pool'] = {'use': '/T1/A1/gone'}
    assert as3_schema.validate(d) == [
        '/T1/A1/vs/pool/use: Unable to find /T1/A1/gone']


def test_common_reference_refused():
    d = _decl()
    d['T1']['A1']['vs']['pool'] = '/Common/some_device_pool'
    assert as3_schema.validate(d) == [
        '/T1/A1/vs/pool: Unable to find /Common/some_device_pool']


def test_shared_lookup():
    d = _decl()
    d['T1']['Shared'] = {'class': 'Application', 'template': 'shared',
                         'sp': d['T1']['A1'].pop('web')}
    d['T1']['A1']['vs']['pool'] = 'sp'
    assert as3_schema.validate(d) == []


def test_server_tls_pointer():
    d = _decl()
    vs = d['T1']['A1']['vs']
    vs['class'] = 'Service_HTTPS'
    vs['serverTLS'] = 'web'          # a Pool, not a TLS_Server
    vs['redirect80'] = False
    errors = as3_schema.validate(d)
    assert errors and 'serverTLS' in errors[0]


def test_tenant_name_pattern_and_length():
    d = _decl()
    d['1bad'] = d.pop('T1')
    assert as3_schema.validate(d)
    d = _decl()
    d['T' * 190] = d.pop('T1')
    assert as3_schema.validate(d) == []
    d['T' * 191] = d.pop('T' * 190)
    assert as3_schema.validate(d)


NEED_DEFAULTS = ['example-endpoint-policy-tcp-condition.json',
                 'example-http-extra-virtual-servers.json',
                 'example-http-https-one-declaration.json']


def test_three_examples_need_defaults():
    import jsonschema
    plain = jsonschema.Draft7Validator(as3_schema.schema())
    failing = []
    for path in EXAMPLES:
        with open(path) as f:
            if not plain.is_valid(json.load(f)):
                failing.append(os.path.basename(path))
    assert failing == NEED_DEFAULTS


def test_errors_never_quote_the_declaration():
    secret = 'SECRET-KEY-MATERIAL'
    d = _decl({'cert': {'class': 'Certificate', 'certificate': 'C',
                        'privateKey': secret, 'bogus': secret}})
    errors = as3_schema.validate(d)
    assert errors and all(secret not in e for e in errors)
    d = _decl()
    d['T1']['A1']['vs']['virtualAddresses'] = [secret]
    assert all(secret not in e for e in as3_schema.validate(d))


def test_wrong_type_reported_at_its_path():
    d = _decl()
    d['T1']['A1']['vs']['virtualPort'] = 'x'
    assert as3_schema.validate(d) == [
        '/T1/A1/vs/virtualPort: should be integer,object']
