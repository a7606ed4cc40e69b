"""The provider agent's Prometheus metrics (multilb/metrics.py).

Every test reads the exposition text, as Prometheus would scrape it: from
the registry (``Metrics.text()``) or over HTTP from the endpoint the agent
serves. Real agents (tooz file:// coordination, real ClusterWorkers) for
ownership; the ``env`` WorkerEnv (cluster 'alpha', fake appliance with
injected faults) for what the hooks count.
"""

import logging
import re
import socket
import threading
import time
import types
import urllib.error
import urllib.request

import pytest

from backends import transport
from backends import types as backend_types
from multilb import agent as agent_mod
from multilb import coordination
from multilb import exceptions
from multilb import metrics
from multilb import reconcile
from tests.unit import fixtures as fx
from tools.localstack import ports

CLUSTERS = ['c%d' % n for n in range(4)]
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


# -- reading the exposition text ---------------------------------------------

def samples(text):
    """``[(name, {label: value}, float)]`` of every sample line."""
    found = []
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = _SAMPLE.match(line)
        assert m, 'not a sample line: %r' % line
        labels = dict(_LABEL.findall(m.group(2) or ''))
        found.append((m.group(1), labels, float(m.group(3))))
    return found


def value(text, name, **labels):
    """The one sample ``name`` with these labels (others may differ)."""
    found = [v for n, got, v in samples(text) if n == name and all(
        got.get(k) == str(want) for k, want in labels.items())]
    assert len(found) == 1, '%s %s: %r in\n%s' % (name, labels, found, text)
    return found[0]


def clusters_in(text):
    return {labels['cluster'] for name, labels, _v in samples(text)
            if name.startswith('multilb_cluster_')}


def scrape(port, host='127.0.0.1'):
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            'http://%s:%d/metrics' % (host, port), timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


@pytest.fixture
def active():
    """``active(metrics)``: the hooks record into it for this test."""
    used = []

    def _activate(found):
        used.append(found)
        metrics.activate(found)
        return found
    yield _activate
    for found in used:
        metrics.deactivate(found)


# -- agents that own clusters ------------------------------------------------

@pytest.fixture
def rt(tmp_path, monkeypatch):
    runtime = fx.make_runtime(
        tmp_path, {name: {'max_loadbalancers': 7 + n}
                   for n, name in enumerate(CLUSTERS)},
        options={'poll_interval': 0.05, 'membership_interval': 0.1})
    fx.create_agent_group(runtime.conf.multilb.coordination_url)
    return fx.use_runtime(monkeypatch, runtime)


@pytest.fixture
def agents(rt):
    started = []

    def _start(member_id):
        agent = agent_mod.Agent(rt, fx.FakeOctavia(),
                                coordination.Coordinator(
                                    rt.conf.multilb.coordination_url,
                                    member_id=member_id))
        agent.start()
        started.append(agent)
        return agent

    yield _start
    for agent in started:
        agent.stop()


def test_off_by_default_no_endpoint_and_hooks_do_nothing(env):
    settings = env.rt.conf.multilb
    assert settings.metrics_port == 0
    assert settings.metrics_host == '127.0.0.1'
    threads = set(threading.enumerate())

    assert metrics.start(object(), settings) is None

    assert set(threading.enumerate()) == threads       # no server thread
    assert metrics._current is None
    env.create_active()           # the hooks run, record nothing, no error
    env.worker.probe(force=True)


def test_each_agent_exports_only_the_clusters_it_owns(agents):
    a, b = agents(b'agent-a'), agents(b'agent-b')
    a.rebalance()
    b.rebalance()
    text_a, text_b = metrics.Metrics(a).text(), metrics.Metrics(b).text()

    assert clusters_in(text_a) == set(a.workers)
    assert clusters_in(text_b) == set(b.workers)
    assert set(a.workers) and set(b.workers)
    assert not clusters_in(text_a) & clusters_in(text_b)
    assert clusters_in(text_a) | clusters_in(text_b) == set(CLUSTERS)
    assert value(text_a, 'multilb_agent_info', member_id='agent-a') == 1
    assert value(text_a, 'multilb_agent_owned_clusters') == len(a.workers)
    for name in a.workers:
        assert value(text_a, 'multilb_cluster_max_loadbalancers',
                     cluster=name, backend='fake') == 7 + CLUSTERS.index(name)

    # b stops: a takes its clusters over and exports them all; b nothing
    b_metrics = metrics.Metrics(b)
    b.stop()
    a.rebalance()
    assert clusters_in(metrics.Metrics(a).text()) == set(CLUSTERS)
    assert clusters_in(b_metrics.text()) == set()


def test_placed_and_pending_work_of_an_owned_cluster(agents, rt):
    a = agents(b'agent-a')
    a.rebalance()
    name = sorted(a.workers)[0]
    state = rt.state
    state.kv.commit(puts={'cluster/%s/count' % name: '3'})
    record = {'cluster': name, 'project_id': 'p'}
    state.add_sync('lb-x', record)
    state.add_sync('lb-x', record)
    state.add_sync('lb-y', record)

    text = metrics.Metrics(a).text()

    assert value(text, 'multilb_cluster_placed_loadbalancers',
                 cluster=name) == 3
    assert value(text, 'multilb_cluster_pending_loadbalancers',
                 cluster=name) == 2
    assert value(text, 'multilb_cluster_pending_intents', cluster=name) == 3
    assert value(text, 'multilb_cluster_oldest_pending_intent_age_seconds',
                 cluster=name) >= 0
    assert value(text, 'multilb_agent_store_reachable') == 1


def test_a_store_that_does_not_answer_leaves_out_only_its_gauges(
        agents, monkeypatch):
    a = agents(b'agent-a')
    a.rebalance()

    def down():
        raise exceptions.StoreUnavailable('etcd: connection refused')
    monkeypatch.setattr(a.rt.state, 'cluster_runtime', down)
    text = metrics.Metrics(a).text()

    assert value(text, 'multilb_agent_store_reachable') == 0
    assert 'multilb_cluster_placed_loadbalancers{' not in text
    assert clusters_in(text) == set(a.workers)    # memory gauges still there


# -- what the worker's hooks count ------------------------------------------

def env_metrics(env, active):
    agent = types.SimpleNamespace(
        workers={'alpha': env.worker}, rt=env.rt,
        coordinator=types.SimpleNamespace(member_id=b'agent-x'))
    return active(metrics.Metrics(agent))


def test_an_apply_is_counted_in_the_apply_latency_histogram(env, active):
    found = env_metrics(env, active)
    env.create_active()
    text = found.text()

    labels = dict(cluster='alpha', backend='fake', outcome='ok')
    assert value(text, 'multilb_apply_duration_seconds_count', **labels) == 1
    assert value(text, 'multilb_apply_duration_seconds_bucket', le='+Inf',
                 **labels) == 1
    assert value(text, 'multilb_apply_duration_seconds_sum', **labels) >= 0
    assert value(text, 'multilb_cluster_placed_loadbalancers',
                 cluster='alpha') == 1
    assert value(text, 'multilb_cluster_pending_intents',
                 cluster='alpha') == 0


def test_a_failed_apply_is_counted_as_an_error(env, active):
    found = env_metrics(env, active)
    env.weight_update(appliance_down=True)
    env.process()
    text = found.text()

    assert value(text, 'multilb_apply_duration_seconds_count',
                 cluster='alpha', outcome='ok') == 1
    assert value(text, 'multilb_apply_duration_seconds_count',
                 cluster='alpha', outcome='error') == 1
    assert value(text, 'multilb_cluster_pending_intents',
                 cluster='alpha') == 1     # retried later


def test_an_open_breaker_shows_1(env, active):
    found = env_metrics(env, active)
    env.worker.breaker = transport.ClusterBreaker('alpha', fail_max=2,
                                                  reset_timeout=60)
    text = found.text()
    assert value(text, 'multilb_cluster_breaker_open', cluster='alpha') == 0
    assert value(text, 'multilb_cluster_breaker_state', cluster='alpha',
                 state='closed') == 1

    env.worker.breaker.trip('probe: nothing answers')
    text = found.text()

    assert value(text, 'multilb_cluster_breaker_open', cluster='alpha',
                 backend='fake') == 1
    assert value(text, 'multilb_cluster_breaker_state', cluster='alpha',
                 state='open') == 1
    assert value(text, 'multilb_cluster_breaker_state', cluster='alpha',
                 state='closed') == 0


def test_probes_give_reachability_and_latency(env, active):
    found = env_metrics(env, active)
    assert 'multilb_cluster_reachable{' not in found.text()  # not probed

    env.worker.probe(force=True)
    text = found.text()
    assert value(text, 'multilb_cluster_reachable', cluster='alpha') == 1
    assert value(text, 'multilb_probe_duration_seconds_count',
                 cluster='alpha', backend='fake') == 1
    assert value(text, 'multilb_cluster_last_probe_duration_seconds',
                 cluster='alpha') >= 0
    assert value(text, 'multilb_cluster_last_probe_timestamp_seconds',
                 cluster='alpha') > 1.6e9

    env.faults(probe='unavailable')
    env.worker.probe(force=True)
    text = found.text()
    assert value(text, 'multilb_cluster_reachable', cluster='alpha') == 0
    assert value(text, 'multilb_probe_duration_seconds_count',
                 cluster='alpha') == 2


def test_outbox_depth_counts_undelivered_status_updates(env, active,
                                                        clock):
    found = env_metrics(env, active)
    env.octavia.update_errors = [fx.OctaviaUnavailable('no socket')]
    env.driver.loadbalancer_create(fx.create_lb())
    env.octavia.commit(fx.full_lb())
    env.process()
    text = found.text()

    assert value(text, 'multilb_cluster_outbox_entries', cluster='alpha') == 1
    assert value(text, 'multilb_cluster_outbox_failing_entries',
                 cluster='alpha') == 1
    assert value(text, 'multilb_cluster_oldest_outbox_entry_age_seconds',
                 cluster='alpha') >= 0

    clock.advance(1)                     # past the delivery's backoff
    env.worker.deliver_outbox()
    text = found.text()
    assert value(text, 'multilb_cluster_outbox_entries', cluster='alpha') == 0


def test_reconcile_counts_reapplies_and_removed_orphans(env, active, clock,
                                                        settings):
    found = env_metrics(env, active)
    env.create_active()
    env.worker.orphans = reconcile.OrphanSweep(
        'alpha', env.state, env.worker.backend, env.octavia, settings)
    orphan = fx.lb_graph()
    orphan['loadbalancer_id'] = 'lb-orphan'
    env.worker.backend.apply_loadbalancer(orphan)
    env.worker.backend.delete_loadbalancer(fx.LB)     # the cluster lost it
    listing = backend_types.ClusterHealth(reachable=True)

    env.worker._resync(listing, listing=True)
    text = found.text()
    assert value(text, 'multilb_reapplies_total', cluster='alpha',
                 backend='fake', reason='missing') == 1
    assert value(text, 'multilb_cluster_orphans', cluster='alpha') == 1
    assert 'multilb_orphans_removed_total{' not in text    # in its grace

    clock.advance(31)
    env.worker._resync(listing, listing=True)
    text = found.text()
    assert value(text, 'multilb_orphans_removed_total', cluster='alpha',
                 backend='fake') == 1
    assert value(text, 'multilb_cluster_orphans', cluster='alpha') == 0


def test_a_broken_metric_never_breaks_the_work(env, active, monkeypatch):
    found = env_metrics(env, active)

    def broken(*args):
        raise ValueError('bug in a metric')
    monkeypatch.setattr(found, 'observe_apply', broken)
    monkeypatch.setattr(found, 'probed', broken)
    env.create_active()
    env.worker.probe(force=True)
    assert env.appliance() is not None


# -- the endpoint -----------------------------------------------------------

def test_the_endpoint_serves_and_closes(agents, rt, monkeypatch):
    a = agents(b'agent-a')
    a.rebalance()
    port = ports.free_port()
    settings = types.SimpleNamespace(metrics_port=port,
                                     metrics_host='127.0.0.1')

    served = metrics.start(a, settings)
    try:
        assert metrics._current is served
        text = scrape(port)
        assert clusters_in(text) == set(a.workers)
        assert value(text, 'multilb_agent_owned_clusters') == len(a.workers)
    finally:
        metrics.stop(served)
    assert metrics._current is None
    with pytest.raises(urllib.error.URLError):
        scrape(port)
    # the port is free again: the driver agent calls run() again after a
    # failure, in the same process
    again = metrics.start(a, settings)
    try:
        assert scrape(port)
    finally:
        metrics.stop(again)


def test_a_port_in_use_is_one_warning_and_no_endpoint(agents, caplog):
    a = agents(b'agent-a')
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger='multilb.metrics'):
            found = metrics.start(a, types.SimpleNamespace(
                metrics_port=port, metrics_host='127.0.0.1'))

    assert found is None
    assert metrics._current is None
    [record] = [r for r in caplog.records if r.name == 'multilb.metrics']
    assert record.levelno == logging.WARNING and not record.exc_info
    assert str(port) in record.getMessage()
    assert 'metrics_port' in record.getMessage()


def test_the_agent_process_serves_metrics_while_it_runs(tmp_path,
                                                        monkeypatch):
    port = ports.free_port()
    runtime = fx.use_runtime(monkeypatch, fx.make_runtime(
        tmp_path, {'solo': {}}, options={'poll_interval': 0.05,
                                         'membership_interval': 0.1,
                                         'metrics_port': port}))
    fx.create_agent_group(runtime.conf.multilb.coordination_url)
    exit_event = threading.Event()
    thread = threading.Thread(target=agent_mod.run, args=(exit_event,))
    thread.start()
    try:
        text = wait_for(lambda: _scrape_owning(port, 'solo'))
        assert value(text, 'multilb_cluster_max_loadbalancers',
                     cluster='solo', backend='fake') == 0
        assert value(text, 'multilb_cluster_breaker_open',
                     cluster='solo') == 0
    finally:
        exit_event.set()
        thread.join(30)
    assert not thread.is_alive()
    assert metrics._current is None
    with pytest.raises(urllib.error.URLError):
        scrape(port)


def _scrape_owning(port, cluster):
    try:
        text = scrape(port)
    except urllib.error.URLError:
        return None
    return text if cluster in clusters_in(text) else None


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError('not reached in %ss' % timeout)
