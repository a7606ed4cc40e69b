"""CaddyClient's verbs, paths and error handling, with a scripted transport.

The answers are the ones Caddy 2.11.7 gives (see the client's docstring
and caddy_errors.json, captured from a real node by
tests/functional/caddy_errors.py); tests/functional/test_caddy_client.py
checks them against real nodes.
"""

import json
import pathlib

import pytest

from backends import exceptions
from backends import transport as transport_mod
from backends.caddy import client as caddy_client

SERVERS = 'config/apps/http/servers'
NO_PARENT = {'error': 'invalid traversal path at: config/apps/http'}
# Caddy 2.11.7's answers to requests it cannot take, each provoked on a
# real node (tests/functional/caddy_errors.py), with what they must mean.
CADDY_ERRORS = json.loads((pathlib.Path(__file__).parent /
                           'caddy_errors.json').read_text())


def error(cls, status, body):
    exc = cls('http://node:2019 X /path: HTTP %d: %s' % (status, body))
    exc.status, exc.body, exc.retry_after = status, body, None
    return exc


def rejected(status, body):
    return error(exceptions.BackendRejected, status, body)


def unavailable(status, body):
    return error(exceptions.BackendUnavailable, status, body)


class ScriptedTransport:
    name = 'http://node:2019'

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, path, json=None):
        self.calls.append((method, path, json))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return 200, answer


def client(*answers):
    return caddy_client.CaddyClient(ScriptedTransport(*answers))


def test_put_server_posts_to_its_key():
    c = client(None)
    c.put_server('lb-1_l-2', {'listen': [':80']})
    assert c.transport.calls == [
        ('POST', SERVERS + '/lb-1_l-2', {'listen': [':80']})]


def test_put_server_creates_the_http_app_when_missing():
    c = client(unavailable(500, NO_PARENT), None, None)
    c.put_server('a', {'listen': [':80']})
    assert [call[:2] for call in c.transport.calls] == [
        ('POST', SERVERS + '/a'), ('PUT', SERVERS), ('POST', SERVERS + '/a')]
    assert c.transport.calls[1][2] == {}


def caddy_answers(meaning):
    """The real answers of Caddy (caddy_errors.json) with that meaning."""
    return sorted((name, record['body']) for name, record in
                  CADDY_ERRORS['errors'].items()
                  if record['meaning'] == meaning)


def test_the_captured_answers_are_real_ones():
    assert CADDY_ERRORS['caddy'].startswith('v2.11')
    assert all(r['status'] == 500 and r['body']['error']
               for r in CADDY_ERRORS['errors'].values())


@pytest.mark.parametrize('name,body', caddy_answers('rejected'))
def test_a_500_for_a_request_caddy_cannot_take_is_a_rejection(name, body):
    c = client(unavailable(500, body))
    with pytest.raises(exceptions.BackendRejected) as info:
        c.delete_id('a')
    assert info.value.status == 500
    assert info.value.body == body
    assert not transport_mod.counts_against_cluster(info.value)


@pytest.mark.parametrize('name,body', caddy_answers('transient'))
def test_a_500_for_the_host_state_stays_transient(name, body):
    with pytest.raises(exceptions.BackendUnavailable) as info:
        client(unavailable(500, body)).put_server('a', {})
    # retried, but the node answered: not a failure of the cluster
    assert info.value.cluster_failure is False
    assert not transport_mod.counts_against_cluster(info.value)


def test_a_tenant_value_never_passes_for_the_host_state():
    """The regex of an L7 rule is echoed in Caddy's text: whatever it
    holds, the answer stays a rejection (the real texts are in the
    fixture: regex_hostile_*)."""
    in_use = CADDY_ERRORS['errors']['address_in_use']['body']['error']
    for name in ('regex_hostile_words', 'regex_hostile_tail',
                 'regex_cookie_hostile', 'regex_unbalanced'):
        text = CADDY_ERRORS['errors'][name]['body']['error']
        assert caddy_client.classify(unavailable(
            500, {'error': text})).__class__ is exceptions.BackendRejected
    # the host's state only when the whole text is Caddy's structure
    assert caddy_client.classify(unavailable(
        500, {'error': in_use})).cluster_failure is False
    for hostile in ('x' + in_use, in_use + ' timeout', in_use + ': x',
                    in_use.replace('listen tcp', 'listen tcp x'),
                    in_use.replace('listening on', 'listening on a b')):
        found = caddy_client.classify(unavailable(500, {'error': hostile}))
        assert getattr(found, 'cluster_failure', True), hostile
        assert isinstance(found, exceptions.BackendRejected) is \
            hostile.startswith('loading new config: '), hostile
        text = ('loading new config: loading http app module: provision '
                'http: server x: setting up route matchers: route 0: '
                'compiling matcher regexp %s: error parsing regexp: '
                'missing closing ): `%s`' % (hostile, hostile))
        assert isinstance(caddy_client.classify(unavailable(
            500, {'error': text})), exceptions.BackendRejected), hostile


@pytest.mark.parametrize('body', [
    {'error': 'upstream timed out'}, 'Internal Server Error', None, '',
    {'error': 'timeout'}, {'message': 'loading new config: x'}])
def test_a_500_not_in_caddy_words_stays_a_failure_of_the_cluster(body):
    """Not Caddy's answer (a proxy in front of it, an empty body): the
    node failed, the breaker counts it."""
    with pytest.raises(exceptions.BackendUnavailable) as info:
        client(unavailable(500, body)).put_server('a', {})
    assert transport_mod.counts_against_cluster(info.value)


def test_other_unavailable_errors_pass_through():
    down = error(exceptions.BackendUnavailable, 503, 'busy')
    with pytest.raises(exceptions.BackendUnavailable):
        client(down).put_server('a', {})
    no_answer = exceptions.BackendUnavailable('refused')
    no_answer.status = no_answer.body = no_answer.retry_after = None
    with pytest.raises(exceptions.BackendUnavailable):
        client(no_answer).get_servers()


def test_delete_server():
    c = client(None)
    assert c.delete_server('a') is True
    assert c.transport.calls == [('DELETE', SERVERS + '/a', None)]


@pytest.mark.parametrize('answer', [
    rejected(404, {'error': '[/config/apps/http/servers/a] key does not '
                            'exist: a'}),
    unavailable(500, NO_PARENT)])
def test_delete_of_an_absent_server_succeeds(answer):
    assert client(answer).delete_server('a') is False


def test_delete_404_from_something_else_is_not_success():
    with pytest.raises(exceptions.BackendRejected):
        client(rejected(404, '404 page not found')).delete_server('a')


def test_ensure_http_app():
    c = client(None)
    assert c.ensure_http_app() is True
    assert c.transport.calls == [('PUT', SERVERS, {})]
    exists = rejected(409, {'error': 'key already exists: servers'})
    assert client(exists).ensure_http_app() is False
    with pytest.raises(exceptions.BackendRejected):
        client(rejected(403, 'origin not allowed')).ensure_http_app()


def test_reading():
    c = client({'a': {}}, None, rejected(400, NO_PARENT), None, [{'x': 1}],
               None, {'b': 1}, None)
    assert c.get_servers() == {'a': {}}
    assert c.get_servers() == {}
    assert c.get_servers() == {}
    assert c.get_server('a') is None
    assert c.upstreams() == [{'x': 1}]
    assert c.upstreams() == []
    assert c.get_server('b') == {'b': 1}
    assert c.config() == {}
    assert [call[:2] for call in c.transport.calls] == [
        ('GET', SERVERS), ('GET', SERVERS), ('GET', SERVERS),
        ('GET', SERVERS + '/a'), ('GET', 'reverse_proxy/upstreams'),
        ('GET', 'reverse_proxy/upstreams'), ('GET', SERVERS + '/b'),
        ('GET', 'config/')]


@pytest.mark.parametrize('name', ['', 'a/b', '..', '...', '-a', 'a b',
                                  'a%2Fb', None, 'x' * 201])
def test_server_names_are_checked(name):
    c = client()
    for call in (lambda: c.put_server(name, {}),
                 lambda: c.delete_server(name),
                 lambda: c.get_server(name)):
        with pytest.raises(ValueError):
            call()
    assert c.transport.calls == []


def dropped():
    """A kept-alive admin connection closed by a reload: no status."""
    exc = exceptions.BackendUnavailable(
        'http://node:2019 POST /x: connection closed without a response')
    exc.status, exc.body, exc.retry_after = None, None, None
    return exc


def test_put_server_is_replayed_once_after_a_dropped_connection():
    c = client(dropped(), None)
    c.put_server('a', {'listen': [':80']})
    assert [call[:2] for call in c.transport.calls] == [
        ('POST', SERVERS + '/a'), ('POST', SERVERS + '/a')]


def test_put_server_gives_up_after_a_second_dropped_connection():
    c = client(dropped(), dropped())
    with pytest.raises(exceptions.BackendUnavailable):
        c.put_server('a', {'listen': [':80']})
    assert len(c.transport.calls) == 2


def test_an_answered_error_is_not_replayed():
    c = client(unavailable(502, 'bad gateway'))
    with pytest.raises(exceptions.BackendUnavailable):
        c.put_server('a', {'listen': [':80']})
    assert len(c.transport.calls) == 1


def test_certificates_are_added_without_replay():
    c = client(dropped())
    with pytest.raises(exceptions.BackendUnavailable):
        c.add_certificate({'@id': 'lb--l--default--pem-1'})
    assert len(c.transport.calls) == 1      # an append is not idempotent


CERTIFICATES = 'config/apps/tls/certificates/load_pem'
NOT_A_LIST = {'error': 'loading new config: loading http app module: '
              'provision http: getting tls app: loading tls app module: '
              'provision tls: loading certificate loader modules: module '
              "name 'load_pem': decoding module config: "
              'tls.certificates.load_pem: json: cannot unmarshal object '
              'into Go value of type caddytls.PEMLoader'}


def test_first_certificate_next_to_other_loaders_creates_the_list():
    """A tls app that loads files (the admin API's certificate) but has no
    load_pem list: Caddy refuses the POST (Caddy 2.11.7's answer), the
    client PUTs the list."""
    entry = {'@id': 'lb--l--default--pem-1'}
    c = client(rejected(500, NOT_A_LIST), None, None)
    c.add_certificate(entry)
    assert c.transport.calls == [('POST', CERTIFICATES, entry),
                                 ('GET', CERTIFICATES, None),
                                 ('PUT', CERTIFICATES, [entry])]


def test_a_refused_certificate_next_to_others_is_not_retried_as_a_put():
    c = client(rejected(500, {'error': 'loading new config: bad PEM'}),
               [{'@id': 'other'}])
    with pytest.raises(exceptions.BackendRejected, match='bad PEM'):
        c.add_certificate({'@id': 'lb--l--default--pem-1'})
    assert [call[:2] for call in c.transport.calls] == [
        ('POST', CERTIFICATES), ('GET', CERTIFICATES)]


def test_certificates_are_read_through_the_tls_app():
    """Never a GET under a parent that may be absent: Caddy logs each as
    an error (HTTP 400). A node without TLS listeners has no tls app."""
    pem = [{'@id': 'lb--l--default--pem-1', 'certificate': 'C'}]
    c = client({'certificates': {'load_pem': pem, 'load_files': []}},
               None, {'certificates': {'load_files': [{}]}},
               rejected(400, {'error': 'invalid traversal path at: '
                                       'config/apps'}))
    assert c.get_certificates() == pem
    assert c.get_certificates() == []
    assert c.get_certificates() == []
    assert c.get_certificates() == []
    assert [call[:2] for call in c.transport.calls] == [
        ('GET', 'config/apps/tls')] * 4


def test_goroutine_profile_is_read_as_text():
    c = client('goroutine profile: total 3\n')
    assert c.goroutines() == 'goroutine profile: total 3\n'
    assert c.transport.calls == [
        ('GET', 'debug/pprof/goroutine?debug=1', None)]
