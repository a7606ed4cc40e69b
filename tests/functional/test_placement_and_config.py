"""Placement under contention and broken cluster configuration, through the
real Octavia API: two octavia-api processes race for a cluster's last slot,
and broken [cluster:*] sections are reported without taking the valid
cluster down.
"""

import concurrent.futures
import json
import os
import urllib.error
import urllib.request

import pytest

from tests.functional import fleet as fleet_mod

BROKEN = """
[cluster:nosuch]
backend = does-not-exist
[cluster:badnumber]
backend = fake
max_loadbalancers = lots
"""


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('tiny', numbered=True)
    started = fleet_mod.Fleet(
        workdir, {'solo': 1}, api_count=2,
        enabled_extra=['nosuch', 'badnumber', 'nosection'],
        extra_conf=BROKEN).start()
    try:
        yield started
    finally:
        started.stop()


def post_lb(api, name):
    body = json.dumps({'loadbalancer': {
        'name': name, 'project_id': 'proj-race',
        'vip_subnet_id': fleet_mod.VIP_SUBNET}}).encode()
    request = urllib.request.Request(
        api + '/v2/lbaas/loadbalancers', data=body, method='POST',
        headers={'Content-Type': 'application/json',
                 'X-Project-Id': 'proj-race'})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_two_api_workers_race_for_the_last_slot(tiny):
    apis = tiny.octavia.api_urls
    assert len(apis) == 2
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(post_lb, apis, ['racer-0', 'racer-1']))
    codes = sorted(code for code, _body in results)
    assert codes == [201, 500], results
    [(_code, loser)] = [r for r in results if r[0] == 500]
    assert 'No appliance cluster has room' in loser['faultstring']
    [(_code, winner)] = [r for r in results if r[0] == 201]
    conn = tiny.connection()
    lb_id = winner['loadbalancer']['id']
    lb = conn.load_balancer.wait_for_load_balancer(
        lb_id, status='ACTIVE', failures=[], interval=0.1, wait=60)
    assert tiny.appliance(lb.id)[0] == 'solo'
    # The loser left nothing behind: exactly one LB exists.
    names = [lb.name for lb in conn.load_balancer.load_balancers()]
    assert names == [winner['loadbalancer']['name']]

    # Deleting the winner gives the slot back.
    conn.load_balancer.delete_load_balancer(lb_id)
    fleet_mod.wait_for(lambda: post_lb(apis[1], 'after')[0] == 201,
                       timeout=60, interval=0.5, what='slot released')


def test_broken_cluster_sections_are_reported_clearly(tiny):
    logs = tiny.octavia.log_dir
    expected = [
        "[cluster:nosuch] backend: unknown backend 'does-not-exist'; "
        "installed backends: caddy, f5, fake",
        '[cluster:badnumber] max_loadbalancers:',
        "[multilb] enabled_clusters lists 'nosection' but the configuration "
        "has no [cluster:nosection] section"]
    for name in ('octavia-api-0.log', 'octavia-api-1.log',
                 'octavia-driver-agent.log'):
        with open(os.path.join(logs, name)) as f:
            text = f.read()
        for message in expected:
            assert message in text, (name, message)
    # The valid cluster keeps serving beside them: see the race test, which
    # runs on this same fleet.
