"""The quick start's client side (run by tools/quickstart.sh).

Creates two load balancers through the real clients against the local
Octavia that ``python -m tools.localstack up`` started with multilb enabled:

* ``qs-web``: a full graph in one call (HTTP:80 listener, ROUND_ROBIN
  default pool, two members, an HTTP health monitor, an L7 REJECT policy
  with a PATH rule), through openstacksdk;
* ``qs-plain``: a load balancer alone, through openstacksdk.

Waits for both to be ACTIVE, shows them with the ``openstack`` CLI
(``loadbalancer list``, ``loadbalancer status show`` and
``loadbalancer l7policy list``) and prints the
appliance cluster each one landed on, read from the fake appliances'
mirror directory (``fake_state_dir``).

    python tools/quickstart_demo.py \
        --stack-json .quickstart/stack/stack.json \
        --state-dir .quickstart/stack/appliance \
        --clusters dc1-fake-a,dc1-fake-b
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import openstack

PROJECT = 'quickstart'
# Any UUID: Octavia's no-op network driver accepts it and allocates a VIP.
VIP_SUBNET = '11111111-2222-3333-4444-555555555555'

FULL_GRAPH = [{
    'name': 'qs-http', 'protocol': 'HTTP', 'protocol_port': 80,
    'default_pool': {
        'name': 'qs-pool', 'protocol': 'HTTP', 'lb_algorithm': 'ROUND_ROBIN',
        'members': [{'name': 'web-1', 'address': '192.0.2.10',
                     'protocol_port': 8080},
                    {'name': 'web-2', 'address': '192.0.2.11',
                     'protocol_port': 8080}],
        'healthmonitor': {'type': 'HTTP', 'delay': 5, 'timeout': 3,
                          'max_retries': 3, 'url_path': '/healthz'}},
    'l7policies': [{'name': 'qs-no-admin', 'action': 'REJECT',
                    'rules': [{'type': 'PATH', 'compare_type': 'STARTS_WITH',
                               'value': '/admin'}]}]}]


def _api_url(stack_json):
    with open(stack_json) as f:
        return json.load(f)['octavia']['api_urls'][0]


def _cli(api, *args):
    """Run the real ``openstack`` CLI (from this venv) and print its output."""
    openstack_bin = os.path.join(os.path.dirname(sys.executable), 'openstack')
    argv = [openstack_bin, '--os-auth-type', 'none', '--os-endpoint', api,
            'loadbalancer'] + list(args)
    shown = ['openstack', '--os-auth-type', 'none', '--os-endpoint', api,
             'loadbalancer'] + list(args)
    print('\n$ ' + ' '.join(shlex.quote(a) for a in shown), flush=True)
    env = dict(os.environ)
    # No clouds.yaml or OS_* settings of the user's may leak in.
    for key in list(env):
        if key.startswith('OS_'):
            del env[key]
    result = subprocess.run(argv, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    print(result.stdout.rstrip('\n'), flush=True)
    if result.returncode:
        raise SystemExit('openstack CLI failed (exit %d)' % result.returncode)


def _placement(state_dir, clusters, lb_id):
    for cluster in clusters:
        if os.path.exists(os.path.join(state_dir, cluster, lb_id + '.json')):
            return cluster
    return None


def _create(conn, name, wait, **kwargs):
    lbc = conn.load_balancer
    start = time.monotonic()
    lb = lbc.create_load_balancer(name=name, project_id=PROJECT,
                                  vip_subnet_id=VIP_SUBNET, **kwargs)
    print('created %s (%s): %s' % (name, lb.id, lb.provisioning_status),
          flush=True)
    lb = lbc.wait_for_load_balancer(lb.id, status='ACTIVE', failures=['ERROR'],
                                    interval=0.2, wait=wait)
    print('%s is %s/%s after %.1f s (vip %s)' % (
        name, lb.provisioning_status, lb.operating_status,
        time.monotonic() - start, lb.vip_address), flush=True)
    return lb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--stack-json', required=True)
    parser.add_argument('--state-dir', required=True,
                        help='fake_state_dir of the fake clusters')
    parser.add_argument('--clusters', required=True,
                        help='comma-separated cluster names')
    parser.add_argument('--wait', type=float, default=120)
    args = parser.parse_args(argv)
    clusters = [c.strip() for c in args.clusters.split(',') if c.strip()]

    api = _api_url(args.stack_json)
    conn = openstack.connection.Connection(
        auth_type='none', auth={'endpoint': api},
        load_balancer_endpoint_override=api)

    print('\n== creating load balancers through openstacksdk (%s)' % api,
          flush=True)
    web = _create(conn, 'qs-web', args.wait, listeners=FULL_GRAPH)
    plain = _create(conn, 'qs-plain', args.wait)

    print('\n== the same, seen through the openstack CLI', flush=True)
    _cli(api, 'list')
    _cli(api, 'status', 'show', web.id)
    # The status tree leaves L7 policies out.
    _cli(api, 'l7policy', 'list', '-c', 'id', '-c', 'name', '-c', 'action',
         '-c', 'provisioning_status')

    print('\n== placement (from the fake appliances in %s)' % args.state_dir)
    for lb in (web, plain):
        cluster = _placement(args.state_dir, clusters, lb.id)
        print('  %-8s %s -> cluster %s' % (lb.name, lb.id,
                                           cluster or '(not found!)'))
        if cluster is None:
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
