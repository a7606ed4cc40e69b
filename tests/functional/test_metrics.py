"""The provider agent's Prometheus endpoint on the real fleet.

The session-wide fleet's driver agent runs with ``[multilb] metrics_port``
set (tests/functional/fleet.py); a load balancer created through the real
Octavia API shows up, scraped over HTTP, in the gauges of the cluster it
landed on, counted as ``multilb-manage cluster list`` counts it, and its
apply in the apply latency histogram.
"""

import re
import urllib.error

from tests.functional import fleet as fleet_mod
from tests.functional.helpers import make_lb
from tests.functional.helpers import manage_json

CLUSTERS = {'alpha', 'beta'}
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text):
    found = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and not line.startswith('#'):
            found.append((m.group(1), dict(_LABEL.findall(m.group(2) or '')),
                          float(m.group(3))))
    return found


def per_cluster(text, name, **labels):
    """``{cluster: value}`` of metric ``name`` (with these labels)."""
    return {got['cluster']: v for n, got, v in samples(text)
            if n == name and all(got.get(k) == w for k, w in labels.items())}


def applies(text, cluster):
    return per_cluster(text, 'multilb_apply_duration_seconds_count',
                       outcome='ok').get(cluster, 0)


def serving_both(fleet):
    """The endpoint's text once the agent (which may still be starting)
    owns both clusters and has probed them; else None."""
    try:
        text = fleet.metrics()
    except urllib.error.URLError:
        return None
    reachable = per_cluster(text, 'multilb_cluster_reachable')
    return text if set(reachable) == CLUSTERS else None


def placed_by_manage(fleet):
    """``{cluster: placed}`` as ``multilb-manage cluster list`` says."""
    return {r['name']: r['placed']
            for r in manage_json(fleet, 'cluster', 'list')
            if r['name'] in CLUSTERS}


def test_a_new_load_balancer_shows_in_its_clusters_metrics(fleet, conn):
    text = fleet_mod.wait_for(lambda: serving_both(fleet), timeout=60,
                              what='both clusters exported')
    assert set(per_cluster(
        text, 'multilb_cluster_placed_loadbalancers')) == CLUSTERS
    applies_before = {name: applies(text, name) for name in CLUSTERS}

    lb = make_lb(conn, 'metrics-lb')
    cluster = fleet.appliance(lb.id)[0]

    def scraped():
        found = fleet.metrics()
        placed = per_cluster(found, 'multilb_cluster_placed_loadbalancers')
        done = (placed == placed_by_manage(fleet) and placed[cluster] >= 1
                and per_cluster(found, 'multilb_cluster_outbox_entries')
                .get(cluster) == 0
                and applies(found, cluster) > applies_before[cluster])
        return found if done else None
    text = fleet_mod.wait_for(scraped, timeout=30, interval=0.5,
                              what='the LB in the metrics')
    placed = per_cluster(text, 'multilb_cluster_placed_loadbalancers')

    assert per_cluster(text, 'multilb_cluster_max_loadbalancers') == {
        'alpha': 100, 'beta': 100}
    assert per_cluster(text, 'multilb_cluster_reachable') == {
        'alpha': 1, 'beta': 1}
    assert per_cluster(text, 'multilb_cluster_breaker_open') == {
        'alpha': 0, 'beta': 0}
    assert per_cluster(text, 'multilb_cluster_pending_intents')[cluster] == 0
    assert {labels['backend'] for name, labels, _v in samples(text)
            if name.startswith('multilb_cluster_')} == {'fake'}
    [(_name, agent, _one)] = [s for s in samples(text)
                              if s[0] == 'multilb_agent_info']
    assert agent['member_id']
    assert ('multilb_agent_owned_clusters', {}, 2.0) in samples(text)
    assert ('multilb_agent_store_reachable', {}, 1.0) in samples(text)

    print('\n'.join(line for line in text.splitlines()
                    if 'cluster="%s"' % cluster in line
                    and '_bucket' not in line and '_created' not in line
                    or line.startswith('multilb_agent')))

    conn.load_balancer.delete_load_balancer(lb, cascade=True)
    conn.load_balancer.wait_for_delete(lb, interval=0.1, wait=60)
    fleet_mod.wait_for(
        lambda: per_cluster(fleet.metrics(),
                            'multilb_cluster_placed_loadbalancers')
        .get(cluster) == placed[cluster] - 1, timeout=30,
        what='the placement released in the metrics')
