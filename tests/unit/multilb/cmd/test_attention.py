"""``cluster list`` exits 3 when a cluster needs attention
(multilb/cmd/views.py): scripts read the exit code, operators read the
full output and one line on stderr saying which cluster and why."""

import json
import time

import pytest

from multilb.cmd import manage
from tests.unit import fixtures
from tests.unit.multilb.cmd import common

conf_path, state = common.conf_path, common.state
run, run_json, place, healthy = (common.run, common.run_json, common.place,
                                 common.healthy)
ATTENTION = manage.EXIT_ATTENTION


@pytest.fixture
def fine(tmp_path):
    """alpha and beta, both configured and freshly probed reachable:
    ``(conf path, state)``."""
    conf = fixtures.write_conf(tmp_path, common.CLUSTERS)
    state = common.open_state(tmp_path)
    healthy(state, 'alpha', 'beta')
    return conf, state


def listed(capsys, conf):
    """``(exit code, {name: attention}, stderr)`` of cluster list, after
    checking that the table and the JSON are printed in full either way."""
    code, out, err = run(capsys, 'cluster', 'list', conf=conf)
    rows = run_json(capsys, conf, 'cluster', 'list', code=code)
    names = [r['name'] for r in rows]
    assert [line.split()[0] for line in out.splitlines()[1:len(rows) + 1]
            ] == names
    return code, {r['name']: r['attention'] for r in rows}, err


def test_every_cluster_fine_exits_0(capsys, fine):
    conf, _state = fine
    assert listed(capsys, conf) == (0, {'alpha': [], 'beta': []}, '')


def test_a_draining_cluster_is_fine(capsys, fine):
    conf, state = fine
    run_json(capsys, conf, 'cluster', 'drain', 'alpha', '--reason', 'RMA')
    assert listed(capsys, conf) == (0, {'alpha': [], 'beta': []}, '')


def test_an_unreachable_cluster_exits_3(capsys, fine):
    conf, state = fine
    state.set_health('beta', {'reachable': False, 'at': time.time(),
                              'detail': 'connection refused'})
    code, attention, err = listed(capsys, conf)
    assert (code, attention) == (ATTENTION, {'alpha': [],
                                             'beta': ['unreachable']})
    assert err == ('multilb-manage: 1 cluster(s) need attention: beta '
                   '(unreachable)\n')


def test_a_stale_probe_exits_3(capsys, fine):
    conf, state = fine
    healthy(state, 'alpha', at=time.time() - 31)   # 3 x health_interval
    code, attention, err = listed(capsys, conf)
    assert (code, attention['alpha']) == (ATTENTION, ['stale'])
    assert err.endswith('need attention: alpha (stale)\n')
    state.set_health('beta', {'reachable': False, 'at': time.time() - 600})
    assert listed(capsys, conf)[1]['beta'] == ['unreachable', 'stale']


def test_a_cluster_never_probed_exits_3(capsys, tmp_path):
    """No agent has probed it: right after the agents start (until their
    first probe, within health_interval), or no agent drives it."""
    conf = fixtures.write_conf(tmp_path, common.CLUSTERS)
    state = common.open_state(tmp_path)
    healthy(state, 'alpha')
    code, attention, err = listed(capsys, conf)
    assert (code, attention) == (ATTENTION, {'alpha': [],
                                             'beta': ['never-probed']})
    assert err.endswith('need attention: beta (never-probed)\n')


def test_an_open_circuit_breaker_exits_3_unless_stale(capsys, fine):
    conf, state = fine
    now = time.time()
    state.set_breaker('alpha', {'state': 'open', 'opened_at': now - 5,
                                'at': now, 'last_error': 'timed out'})
    assert listed(capsys, conf)[:2] == (ATTENTION, {
        'alpha': ['breaker-open'], 'beta': []})
    # a record no agent refreshed is ignored, as the scheduler does
    state.set_breaker('alpha', {'state': 'open', 'opened_at': now - 600,
                                'at': now - 600})
    assert listed(capsys, conf)[:2] == (0, {'alpha': [], 'beta': []})
    state.set_health('beta', {'reachable': True, 'at': now,
                              'breaker_open': True})
    assert listed(capsys, conf)[1]['beta'] == ['breaker-open']


def test_broken_and_removed_clusters_exit_3(capsys, conf_path, state):
    """nosuch: a broken section; gone: removed from enabled_clusters with
    a load balancer left on it (health does not matter for either)."""
    healthy(state, 'alpha', 'beta')
    place(state, common.LB4, 'gone')
    code, attention, err = listed(capsys, conf_path)
    assert (code, attention) == (ATTENTION, {
        'alpha': [], 'beta': [], 'nosuch': ['config-error'],
        'gone': ['not-configured']})
    assert err == ('multilb-manage: 2 cluster(s) need attention: nosuch '
                   '(config-error), gone (not-configured)\n')


def test_only_cluster_list_exits_3(capsys, fine):
    """cluster show and drain show the same reasons and exit 0."""
    conf, state = fine
    state.set_health('beta', {'reachable': False, 'at': time.time()})
    assert run_json(capsys, conf, 'cluster', 'show', 'beta')[
        'attention'] == ['unreachable']
    code, out, err = run(capsys, 'cluster', 'drain', 'beta', conf=conf)
    assert (code, err) == (0, '')


def test_the_json_is_complete_with_exit_3(capsys, fine):
    conf, state = fine
    state.set_health('beta', {'reachable': False, 'at': time.time()})
    code, out, err = run(capsys, 'cluster', 'list', '-f', 'json', conf=conf)
    assert code == ATTENTION
    assert [r['name'] for r in json.loads(out)] == ['alpha', 'beta']
    assert err.count('\n') == 1


def test_store_unreachable_is_still_1(capsys, tmp_path):
    conf = fixtures.write_conf(tmp_path, common.CLUSTERS)   # no state.db
    code, out, err = run(capsys, 'cluster', 'list', conf=conf)
    assert (code, out) == (1, '')


def test_a_cluster_no_live_agent_configures_needs_attention(
        fine, capsys, tmp_path):
    """Half-way through a rolling change: the agent that runs does not
    have beta in its enabled_clusters yet, so nobody serves beta's work."""
    from multilb import coordination
    conf, _state = fine
    url = 'file://%s?executor=sync' % (tmp_path / 'locks')  # write_conf's
    fixtures.create_agent_group(url)
    agent = coordination.Coordinator(
        url, member_id=b'agent-old', capabilities=coordination.capabilities(
            ['alpha'], ['alpha'], 'test'))
    agent.start()
    try:
        code, attention, err = listed(capsys, conf)
        rows = run_json(capsys, conf, 'cluster', 'list', code=code)
    finally:
        agent.stop()
    assert (code, attention) == (ATTENTION, {'alpha': [],
                                             'beta': ['no-agent']})
    assert err == ('multilb-manage: 1 cluster(s) need attention: beta '
                   '(no-agent)\n')
    assert {r['name']: r['agents'] for r in rows} == {'alpha': 1, 'beta': 0}

    # once the agent is gone, nothing is counted (stale/never-probed tell)
    code, attention, _err = listed(capsys, conf)
    assert (code, attention) == (0, {'alpha': [], 'beta': []})


def test_an_unreadable_agents_group_is_said_and_exits_3(
        fine, capsys, monkeypatch):
    """Whether a live agent drives each cluster cannot be told: the list
    is printed all the same, and stderr says what was not checked."""
    from multilb import coordination
    from multilb import exceptions

    def unreadable(url, with_capabilities=False):
        raise exceptions.StoreUnavailable(
            'coordination backend unavailable: connection refused')
    monkeypatch.setattr(coordination, 'live_agents', unreadable)
    conf, _state = fine

    code, attention, err = listed(capsys, conf)

    assert (code, attention) == (ATTENTION, {'alpha': [], 'beta': []})
    assert err == (
        "multilb-manage: the agents' group could not be read (coordination "
        "backend unavailable: connection refused): clusters no live agent "
        "can drive are not flagged\n")
    rows = run_json(capsys, conf, 'cluster', 'list', code=ATTENTION)
    assert {r['name']: r['agents'] for r in rows} == {
        'alpha': None, 'beta': None}
