"""The F5 BIG-IP AS3 device emulator (tools/localstack/as3_device.py),
driven with plain ``requests`` as a backend would drive a device."""

import copy
import threading
import time

import pytest
import requests

from tools.localstack.as3_device import AS3Device

try:        # every declaration goes through the AS3 schema helper
    from tools.localstack import as3_schema
except ImportError:     # pragma: no cover - written by another change
    as3_schema = None
needs_schema = pytest.mark.skipif(
    as3_schema is None, reason='tools/localstack/as3_schema.py is missing')

DECLARE = '/mgmt/shared/appsvcs/declare'
LOCK = ('Configuration operation in progress on device localhost, please '
        'try again in 2 minutes')


def app(address='192.0.2.10', port=8080):
    return {
        'class': 'Application',
        'vs': {'class': 'Service_HTTP', 'virtualAddresses': [address],
               'virtualPort': 80, 'pool': 'pool'},
        'pool': {'class': 'Pool', 'monitors': ['http'],
                 'members': [{'servicePort': port,
                              'serverAddresses': ['192.0.2.20',
                                                  '192.0.2.21']}]},
    }


def adc(**tenants):
    declaration = {'class': 'ADC', 'schemaVersion': '3.56.0',
                   'id': 'multilb-test'}
    for name, apps in tenants.items():
        declaration[name] = {'class': 'Tenant', **apps}
    return declaration


@pytest.fixture
def device():
    dev = AS3Device().start()
    yield dev
    dev.stop()


class Client:
    def __init__(self, device, user='admin', password='admin'):
        self.url = device.url
        answer = requests.post(self.url + '/mgmt/shared/authn/login',
                               json={'username': user, 'password': password,
                                     'loginProviderName': 'tmos'},
                               timeout=5)
        assert answer.status_code == 200, answer.text
        self.token = answer.json()['token']['token']

    def __call__(self, method, path, body=None, **kw):
        return requests.request(method, self.url + path, json=body,
                                headers={'X-F5-Auth-Token': self.token},
                                timeout=kw.pop('timeout', 10), **kw)

    def wait_task(self, task_id, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self('GET', f'/mgmt/shared/appsvcs/task/{task_id}')
            assert answer.status_code == 200
            results = answer.json()['results']
            if results[0]['code'] != 0:
                return answer.json()
            time.sleep(0.05)
        raise AssertionError(f'task {task_id} still running')


@pytest.fixture
def client(device):
    return Client(device)


def login(device, **body):
    body = {'username': 'admin', 'password': 'admin', **body}
    return requests.post(device.url + '/mgmt/shared/authn/login',
                         json=body, timeout=5)


# -- authentication --------------------------------------------------------

def test_login_token_and_401(device):
    answer = login(device, loginProviderName='tmos')
    token = answer.json()['token']
    assert token['timeout'] == 1200 and token['userName'] == 'admin'
    info = '/mgmt/shared/appsvcs/info'
    assert requests.get(device.url + info, timeout=5).status_code == 401
    assert requests.get(device.url + info, timeout=5,
                        headers={'X-F5-Auth-Token': 'NOPE'}
                        ).status_code == 401
    good = requests.get(device.url + info, timeout=5,
                        headers={'X-F5-Auth-Token': token['token']})
    assert good.json()['version'] == '3.56.0'
    assert good.json()['schemaMinimum'] == '3.0.0'
    assert login(device, password='wrong').status_code == 401


def test_token_expiry_and_extension(device, client):
    tokens = f'/mgmt/shared/authz/tokens/{client.token}'
    assert client('PATCH', tokens, {'timeout': 36001}).status_code == 400
    assert client('PATCH', tokens, {'timeout': 3600}).json()[
        'timeout'] == 3600
    device.advance_clock(3000)
    assert client('GET', '/mgmt/tm/sys/version').status_code == 200
    device.advance_clock(601)
    assert client('GET', '/mgmt/tm/sys/version').status_code == 401


def test_100_tokens_per_user(device):
    tokens = [login(device).json()['token']['token'] for _ in range(100)]
    refused = login(device)
    assert refused.status_code == 400
    assert 'maximum active login tokens' in refused.json()['message']
    requests.delete(f'{device.url}/mgmt/shared/authz/tokens/{tokens[0]}',
                    headers={'X-F5-Auth-Token': tokens[1]}, timeout=5)
    assert login(device).status_code == 200
    device.advance_clock(1201)      # expired tokens do not count
    assert login(device).status_code == 200


def test_basic_auth_and_version(device):
    answer = requests.get(device.url + '/mgmt/tm/sys/version',
                          auth=('admin', 'admin'), timeout=5)
    entries = answer.json()['entries']
    nested = next(iter(entries.values()))['nestedStats']['entries']
    assert nested['Product']['description'] == 'BIG-IP'
    assert requests.get(device.url + '/mgmt/tm/sys/version',
                        auth=('admin', 'x'), timeout=5).status_code == 401


# -- declarations -----------------------------------------------------------

@needs_schema
def test_declare_get_and_no_change(client):
    assert client('GET', DECLARE).status_code == 204
    answer = client('POST', DECLARE, adc(T1={'App': app()}))
    assert answer.status_code == 200, answer.text
    assert [(r['tenant'], r['code'], r['message'])
            for r in answer.json()['results']] == [('T1', 200, 'success')]
    stored = client('GET', DECLARE + '/T1').json()
    assert stored['class'] == 'ADC'
    assert stored['T1']['App']['vs']['virtualAddresses'] == ['192.0.2.10']
    again = client('POST', DECLARE, adc(T1={'App': app()}))
    assert again.json()['results'][0]['message'] == 'no change'
    assert client('GET', DECLARE + '/T9').status_code == 404


@needs_schema
def test_device_lock_503(device, client):
    device.delay = 1.0
    first = client('POST', DECLARE + '?async=true', adc(T1={'App': app()}))
    assert first.status_code == 202
    assert first.json()['results'][0]['message'] == \
        'Declaration successfully submitted'
    busy = client('POST', DECLARE, adc(T2={'App': app()}))
    assert busy.status_code == 503
    assert busy.json() == {'code': 503, 'message': LOCK,
                           'host': 'localhost', 'tenant': ['T2'],
                           'declarationId': 'multilb-test'}
    assert 'Retry-After' not in busy.headers
    queued = client('POST', DECLARE + '?async=true', adc(T2={'App': app()}))
    assert queued.status_code == 202
    refused = client.wait_task(queued.json()['id'])
    assert refused['results'][0]['code'] == 503
    done = client.wait_task(first.json()['id'])
    assert done['results'][0]['code'] == 200
    assert device.counters['concurrent_attempts'] == 2
    assert device.counters['lock_503'] == 1
    assert sorted(device.tenants) == ['T1']


@needs_schema
def test_async_task_flow(device, client):
    device.delay = 1.0
    task_id = client('POST', DECLARE + '?async=true',
                     adc(T1={'App': app()})).json()['id']
    running = client('GET', f'/mgmt/shared/appsvcs/task/{task_id}').json()
    assert running['results'] == [{'code': 0, 'message': 'in progress'}]
    done = client.wait_task(task_id)
    assert done['results'][0]['message'] == 'success'
    assert done['declaration']['T1']['class'] == 'Tenant'
    listed = client('GET', '/mgmt/shared/appsvcs/task').json()['items']
    assert [t['id'] for t in listed] == [task_id]


@needs_schema
def test_sync_switches_to_async(device, client):
    device.delay, device.sync_timeout = 0.6, 0.1
    answer = client('POST', DECLARE, adc(T1={'App': app()}))
    assert answer.status_code == 202
    assert client.wait_task(answer.json()['id'])['results'][0]['code'] \
        == 200


@needs_schema
def test_invalid_declaration_422(device, client):
    bad = adc(T1={'App': app()})
    bad['T1']['App']['pool']['members'][0]['servicePort'] = 'eighty'
    answer = client('POST', DECLARE, bad)
    assert answer.status_code == 422
    assert answer.json()['message'] == 'declaration is invalid'
    assert len(answer.json()['errors']) == 1
    task = client('POST', DECLARE + '?async=true', bad).json()['id']
    assert client.wait_task(task)['results'][0]['code'] == 422
    assert device.tenants == {}


@needs_schema
def test_url_filters_tenants(device, client):
    both = adc(T1={'App': app()}, T2={'App': app('192.0.2.11')})
    answer = client('POST', DECLARE + '/T1', both)
    assert [r['tenant'] for r in answer.json()['results']] == ['T1']
    assert sorted(device.tenants) == ['T1']
    missing = client('POST', DECLARE + '/T3', both)
    assert missing.status_code == 404
    assert sorted(device.tenants) == ['T1']


@needs_schema
def test_tenant_delete(device, client):
    client('POST', DECLARE, adc(T1={'App': app()}, T2={'App': app()}))
    assert client('DELETE', DECLARE + '/T1').status_code == 200
    assert sorted(device.tenants) == ['T2']
    removed = client('POST', DECLARE, adc(T2={}))   # Tenant without apps
    assert removed.json()['results'][0]['message'] == 'success'
    assert device.tenants == {}
    assert device.counters['delete_all'] == 0


@needs_schema
def test_delete_all_is_recorded(device, client):
    client('POST', DECLARE, adc(T1={'App': app()}, T2={'App': app()}))
    assert client('DELETE', DECLARE).status_code == 200
    assert device.tenants == {}
    assert device.counters['delete_all'] == 1
    assert device.requested('DELETE', DECLARE) == 1


@needs_schema
def test_restart_empty_cancels_tasks(device, client):
    client('POST', DECLARE, adc(T0={'App': app()}))
    device.delay = 5
    task_id = client('POST', DECLARE + '?async=true',
                     adc(T1={'App': app()})).json()['id']
    time.sleep(0.1)
    device.restart_empty()
    device.delay = 0
    assert device.tenants == {}
    assert client('POST', DECLARE, adc(T2={'App': app()})).status_code \
        == 200
    time.sleep(0.2)
    task = client('GET', f'/mgmt/shared/appsvcs/task/{task_id}').json()
    assert task['results'] == [{'code': 0, 'message': 'task cancelled'}]
    assert sorted(device.tenants) == ['T2']


@needs_schema
def test_restart_drops_synchronous_caller(device, client):
    device.delay = 5
    timer = threading.Timer(0.3, device.restart_empty)
    timer.start()
    with pytest.raises(requests.ConnectionError):
        client('POST', DECLARE, adc(T1={'App': app()}))
    timer.join()
    assert device.tenants == {} and not device.busy


@needs_schema
def test_fail_next(device, client):
    device.fail_next(500, 'boom')
    answer = client('POST', DECLARE, adc(T1={'App': app()}))
    assert answer.status_code == 500
    assert answer.json() == {'code': 500, 'message': 'boom',
                             'host': 'localhost', 'tenant': ['T1'],
                             'declarationId': 'multilb-test'}
    assert device.tenants == {}
    device.fail_next(422, 'tenant failed')
    answer = client('POST', DECLARE, adc(T1={'App': app()}))
    assert answer.status_code == 422
    assert answer.json()['results'][0]['code'] == 422
    assert device.tenants == {}
    assert client('POST', DECLARE, adc(T1={'App': app()})).status_code \
        == 200


@needs_schema
def test_per_application_api(device, client):
    apps = DECLARE + '/T1/applications'
    first = client('POST', apps, {'schemaVersion': '3.56.0', 'A1': app()})
    assert first.status_code == 200, first.text
    client('POST', apps, {'schemaVersion': '3.56.0', 'A2': app()})
    assert sorted(client('GET', apps).json()) == ['A1', 'A2',
                                                  'schemaVersion']
    single = client('GET', apps + '/A2').json()
    assert sorted(single) == ['A2', 'schemaVersion']
    assert client('POST', apps, {'A3': app()}).status_code == 422
    assert client('DELETE', apps + '/A1').status_code == 200
    assert sorted(device.tenants['T1']) == ['A2', 'class']
    assert client('DELETE', apps + '/A1').status_code == 404
    client('DELETE', apps + '/A2')
    assert device.tenants == {}


# -- statistics and availability ---------------------------------------

@needs_schema
def test_stats_shape(device, client):
    client('POST', DECLARE, adc(T1={'App': app()}))
    device.set_stats('/T1/App/vs', bits_in=8000, bits_out=16000,
                     cur_conns=3, tot_conns=10)
    device.set_stats('/T1/App/pool', member='192.0.2.21:8080',
                     availability='offline', monitor='down')
    virtuals = client('GET', '/mgmt/tm/ltm/virtual/stats').json()
    key = 'https://localhost/mgmt/tm/ltm/virtual/~T1~App~vs/stats'
    vs = virtuals['entries'][key]['nestedStats']['entries']
    assert vs['clientside.bitsIn'] == {'value': 8000}
    assert vs['clientside.bitsOut'] == {'value': 16000}
    assert vs['clientside.curConns'] == {'value': 3}
    assert vs['clientside.totConns'] == {'value': 10}
    assert vs['status.enabledState'] == {'description': 'enabled'}
    members = client(
        'GET', '/mgmt/tm/ltm/pool/~T1~App~pool/members/stats').json()
    states = {e['nestedStats']['entries']['addr']['description']:
              (e['nestedStats']['entries']['status.availabilityState']
               ['description'],
               e['nestedStats']['entries']['monitorStatus']['description'])
              for e in members['entries'].values()}
    assert states == {'192.0.2.20': ('available', 'up'),
                      '192.0.2.21': ('offline', 'down')}
    pools = client('GET', '/mgmt/tm/ltm/pool/stats').json()['entries']
    pool = next(iter(pools.values()))['nestedStats']['entries']
    assert pool['activeMemberCnt'] == {'value': 1}
    assert vs['status.availabilityState'] == {'description': 'available'}
    device.set_stats('/T1/App/pool', member='192.0.2.20:8080',
                     availability='offline')
    vs = client('GET', '/mgmt/tm/ltm/virtual/~T1~App~vs/stats').json()
    assert next(iter(vs['entries'].values()))['nestedStats']['entries'][
        'status.availabilityState'] == {'description': 'offline'}
    assert client('GET', '/mgmt/tm/ltm/pool/~T1~App~nope/members/stats'
                  ).status_code == 404


@needs_schema
def test_tm_busy_503(device, client):
    client('POST', DECLARE, adc(T1={'App': app()}))
    device.delay, device.tm_busy_503 = 1.0, True
    task_id = client('POST', DECLARE + '?async=true',
                     adc(T2={'App': app()})).json()['id']
    assert client('GET', '/mgmt/tm/ltm/virtual/stats').status_code == 503
    client.wait_task(task_id)
    assert client('GET', '/mgmt/tm/ltm/virtual/stats').status_code == 200


def test_down_refuse_and_hang(device, client):
    device.down()
    with pytest.raises(requests.ConnectionError):
        client('GET', '/mgmt/tm/sys/version')
    device.up()
    assert client('GET', '/mgmt/tm/sys/version').status_code == 200
    device.down(hang=True)
    with pytest.raises(requests.Timeout):
        client('GET', '/mgmt/tm/sys/version', timeout=0.3)
    device.up()
    assert client('GET', '/mgmt/tm/sys/version').status_code == 200


def test_control_endpoint(device, client):
    requests.post(device.url + '/emulator/knobs', json={'delay': 0.3},
                  timeout=5)
    assert device.delay == 0.3
    client('GET', '/mgmt/tm/sys/version')
    state = requests.get(device.url + '/emulator/state', timeout=5).json()
    assert {'method': 'GET', 'path': '/mgmt/tm/sys/version', 'query': '',
            'status': 200} in state['requests']


@needs_schema
def test_concurrent_declarations_one_wins(device, client):
    device.delay = 1.5
    answers = []

    def post(name):
        answers.append(client('POST', DECLARE,
                              adc(**{name: {'App': app()}})).status_code)

    threads = [threading.Thread(target=post, args=(f'T{i}',))
               for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 503, 503]
    assert len(device.tenants) == 1
    assert copy.deepcopy(device.counters)['lock_503'] == 2


@pytest.mark.filterwarnings(
    'ignore::urllib3.exceptions.InsecureRequestWarning')
def test_tls(tmp_path):
    from tests import tls
    material = tls.self_signed('localhost')
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    cert.write_text(material['certificate'])
    key.write_text(material['private_key'])
    with AS3Device(tls=(str(cert), str(key))) as dev:
        assert dev.url.startswith('https://')
        answer = requests.get(dev.url + '/mgmt/shared/appsvcs/info',
                              auth=('admin', 'admin'), verify=False,
                              timeout=5)
        assert answer.json()['version'] == '3.56.0'
