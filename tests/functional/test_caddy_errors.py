"""Caddy's error answers on real nodes, as the caddy backend reads them.

* every answer kept in tests/unit/backends/caddy/caddy_errors.json is
  provoked again (tests/functional/caddy_errors.py) and must mean what the
  file says: the unit tests' fixtures are what Caddy really answers;
* a tenant's L7 regex that Python accepts but Caddy's RE2 refuses, full of
  words that once passed for a transient error, is a rejection at once,
  and a burst of them never opens the cluster's circuit breaker.
"""

import time

import pytest

from backends import exceptions
from backends import transport as transport_mod
from backends.caddy import backend as caddy_backend
from backends.caddy import client as caddy_client
from multilb.conf import clusters as cluster_conf
from tests.functional import caddy_errors
from tests.functional import caddy_lab as lab
from tests.unit.backends.caddy import test_client as unit
from tools.localstack import caddy as caddy_mod
from tools.localstack import ports

try:
    caddy_mod.find_caddy()
    _MISSING = None
except FileNotFoundError as exc:
    _MISSING = str(exc)

pytestmark = pytest.mark.skipif(bool(_MISSING), reason=_MISSING or '')

# Python's re takes it (Octavia checks L7 regexes with it); Go's RE2 has no
# look-ahead, so Caddy refuses the config and echoes the regex.
HOSTILE_REGEX = ('(?=timeout|timed out|connection refused|context deadline '
                 'exceeded|bind: address already in use)x')


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    # CaddyCluster is a context manager: started, and stopped at the end
    with caddy_mod.CaddyCluster(tmp_path_factory.mktemp('caddyerr'), 'errs',
                                nodes=2) as started:
        yield started


def test_every_captured_answer_is_what_a_real_node_answers(cluster):
    recorded = unit.CADDY_ERRORS['errors']
    answers = caddy_errors.provoke(cluster.nodes[0])
    assert set(answers) <= set(recorded)
    for name, answer in answers.items():
        if answer is None and name in caddy_errors.EMFILE_CASES:
            # how many descriptors Go still finds under a lowered limit
            # varies between runs (CI saw it take the config); the
            # recorded text of this case is checked by the unit tests
            continue
        assert answer is not None and answer[0] == 500, (name, answer)
        error = unit.unavailable(*answer)
        found = caddy_client.classify(error)
        meaning = ('rejected' if isinstance(found, exceptions.BackendRejected)
                   else 'transient')
        assert meaning == recorded[name]['meaning'], (name, answer)
        if meaning == 'transient':
            assert found.cluster_failure is False, (name, answer)
    # the tenant's regex is echoed in the rejections
    assert 'context deadline exceeded' in answers[
        'regex_hostile_words'][1]['error']
    assert 'bind: address already in use' in answers[
        'regex_hostile_tail'][1]['error']


def test_a_hostile_regex_is_rejected_at_once_and_never_opens_the_breaker(
        cluster):
    breaker = transport_mod.ClusterBreaker('errs', fail_max=2,
                                           reset_timeout=60)
    config = cluster_conf.ClusterConfig(
        name='errs', backend='caddy', max_loadbalancers=0, description='',
        backend_class=caddy_backend.CaddyBackend,
        options=dict(lab.BACKEND_OPTIONS, endpoints=cluster.endpoints))
    backend = caddy_backend.CaddyBackend(config)
    backend.breaker = breaker
    backend.start()
    try:
        port = ports.free_port()
        graph = lab.backend_graph('lb-hostile', port, [], listener={
            'l7policies': [{
                'l7policy_id': 'pol-1', 'action': 'REJECT', 'position': 1,
                'admin_state_up': True,
                'rules': [{'l7rule_id': 'rule-1', 'type': 'PATH',
                           'compare_type': 'REGEX', 'key': None,
                           'value': HOSTILE_REGEX, 'invert': False,
                           'admin_state_up': True}]}]})
        for _attempt in range(4):      # more than breaker_fail_max
            t0 = time.monotonic()
            with pytest.raises(exceptions.BackendRejected) as err:
                backend.apply_loadbalancer(graph)
            assert time.monotonic() - t0 < 5
            assert 'error parsing regexp' in str(err.value)
            assert breaker.state == transport_mod.BREAKER_CLOSED
        assert breaker.snapshot()['failures'] == 0
        for node in cluster.nodes:
            assert not [name for name in lab.servers_on(node)
                        if name.startswith('lb-hostile')]
        # the same load balancer with a regex Caddy takes is applied
        rule = graph['listeners'][0]['l7policies'][0]['rules'][0]
        rule['value'] = '^/admin'
        backend.apply_loadbalancer(graph)
        for node in cluster.nodes:
            assert [name for name in lab.servers_on(node)
                    if name.startswith('lb-hostile')]
        backend.delete_loadbalancer('lb-hostile')
    finally:
        backend.stop()
