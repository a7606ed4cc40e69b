"""The quick start's client side (run by tools/quickstart.sh).

Against the local stack that ``python -m tools.localstack up`` started
(Octavia with multilb over real Caddy clusters, and member HTTP servers
in a member lab: a network namespace with a /24 of 198.18.0.0/15, each
member on an address of its own, never on loopback), read from its
``stack.json``:

1. deletes the load balancers a previous run of this demo left (same
   names, project ``quickstart``), so the demo can run again and again;
2. creates through openstacksdk

   * ``qs-web``: a full graph in one call: an HTTP listener on a free port,
     a ROUND_ROBIN default pool with two members (the first two member
     servers, at their lab addresses), an HTTP health monitor on
     ``/health``, an L7 REJECT policy for paths starting with ``/admin``;
   * ``qs-small``: one HTTP listener on another free port, a pool with one
     member;

   and waits until both are ACTIVE;
3. shows them with the real ``openstack`` CLI (``loadbalancer list``,
   ``status show``, ``l7policy list``);
4. prints the Caddy cluster each one landed on, read from the nodes' admin
   API (``GET <admin>/config/apps/http/servers``: one server per listener,
   keyed ``<lb id>--<listener id>``), and multilb's own view
   (``multilb-manage cluster list``);
5. sends real HTTP requests to the listeners and prints the answers: the
   requests to ``qs-web`` must be answered by both members, ``/admin`` must
   be refused (403) by the L7 policy.  Exits 1 if any of that fails.

    python tools/quickstart_demo.py --stack-json .quickstart/stack/stack.json
"""

import argparse
import collections
import ipaddress
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openstack

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tools.localstack import caddy  # noqa: E402
from tools.localstack import ports  # noqa: E402

PROJECT = 'quickstart'
# Any UUID: Octavia's no-op network driver accepts it and allocates a VIP.
VIP_SUBNET = '11111111-2222-3333-4444-555555555555'
NAMES = ('qs-web', 'qs-small')
REQUESTS = 6
SEPARATOR = '--'  # Caddy server keys: <lb id>--<listener id>

# Requests to 127.0.0.1 must not go through a proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DemoFailed(Exception):
    pass


def full_graph(port, members):
    return [{
        'name': 'qs-http', 'protocol': 'HTTP', 'protocol_port': port,
        'default_pool': {
            'name': 'qs-pool', 'protocol': 'HTTP',
            'lb_algorithm': 'ROUND_ROBIN',
            'members': [{'name': 'web-%s' % m['name'],
                         'address': m['address'],
                         'protocol_port': m['port']} for m in members],
            'healthmonitor': {'type': 'HTTP', 'delay': 5, 'timeout': 3,
                              'max_retries': 3, 'url_path': '/health'}},
        'l7policies': [{'name': 'qs-no-admin', 'action': 'REJECT',
                        'rules': [{'type': 'PATH',
                                   'compare_type': 'STARTS_WITH',
                                   'value': '/admin'}]}]}]


def small_graph(port, member):
    return [{
        'name': 'qs-small-http', 'protocol': 'HTTP', 'protocol_port': port,
        'default_pool': {
            'name': 'qs-small-pool', 'protocol': 'HTTP',
            'lb_algorithm': 'ROUND_ROBIN',
            'members': [{'name': 'small-%s' % member['name'],
                         'address': member['address'],
                         'protocol_port': member['port']}]}}]


def section(title):
    print('\n== ' + title, flush=True)


def _clean_env():
    env = dict(os.environ)
    # No clouds.yaml or OS_* settings of the user's may leak in.
    for key in list(env):
        if key.startswith('OS_'):
            del env[key]
    return env


def _run(argv, shown):
    """Run a command of this venv, print it and its output."""
    print('\n$ ' + ' '.join(shlex.quote(a) for a in shown), flush=True)
    result = subprocess.run(argv, env=_clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    print(result.stdout.rstrip('\n'), flush=True)
    if result.returncode:
        raise DemoFailed('%s failed (exit %d)' % (shown[0],
                                                  result.returncode))


def _bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def cli(api, *args):
    """The real ``openstack`` CLI (from this venv)."""
    common = ['--os-auth-type', 'none', '--os-endpoint', api, 'loadbalancer']
    _run([_bin('openstack')] + common + list(args),
         ['openstack'] + common + list(args))


def manage(conf, *args):
    """``multilb-manage`` (from this venv) on Octavia's configuration."""
    common = ['--config-file', conf]
    _run([_bin('multilb-manage')] + common + list(args),
         ['multilb-manage'] + common + list(args))


def show_stack(stack):
    section('the stack (%s)' % os.path.join(stack['workdir'], 'stack.json'))
    print('  Octavia API     %s' % stack['octavia']['api_urls'][0])
    for name, cluster in stack['caddy_clusters'].items():
        print('  Caddy cluster   %s: %s' % (name, ', '.join(
            '%s (admin %s)' % (node['name'], node['admin_url'])
            for node in cluster['nodes'])))
    lab = stack.get('member_lab')
    if lab:
        print('  member lab      network namespace %s, %s (this host: %s)'
              % (lab['namespace'], lab['subnet'], lab['host_address']))
    for member in stack['members'].values():
        print('  member server   %s: %s' % (member['name'], member['url']))


def delete_previous(lbc, wait):
    """Delete the load balancers an earlier run of this demo created."""
    old = [lb for lb in lbc.load_balancers(project_id=PROJECT)
           if lb.name in NAMES]
    if not old:
        return
    section('deleting the load balancers of the previous run')
    for lb in old:
        if lb.provisioning_status.startswith('PENDING'):
            lb = lbc.wait_for_load_balancer(
                lb.id, status='ACTIVE', failures=['ERROR'], interval=0.5,
                wait=wait)
        start = time.monotonic()
        lbc.delete_load_balancer(lb, cascade=True)
        lbc.wait_for_delete(lb, interval=0.2, wait=wait)
        print('  deleted %s (%s) in %.1f s' % (lb.name, lb.id,
                                               time.monotonic() - start),
              flush=True)


def create(lbc, name, wait, **kwargs):
    start = time.monotonic()
    lb = lbc.create_load_balancer(name=name, project_id=PROJECT,
                                  vip_subnet_id=VIP_SUBNET, **kwargs)
    print('  created %s (%s): %s' % (name, lb.id, lb.provisioning_status),
          flush=True)
    lb = lbc.wait_for_load_balancer(lb.id, status='ACTIVE', failures=['ERROR'],
                                    interval=0.2, wait=wait)
    print('  %s is %s/%s after %.1f s (VIP %s)' % (
        name, lb.provisioning_status, lb.operating_status,
        time.monotonic() - start, lb.vip_address), flush=True)
    return lb


def caddy_servers(admin_url):
    """``{server key: server config}`` a Caddy node runs."""
    return caddy.admin_get(admin_url, '/config/apps/http/servers',
                           timeout=10) or {}


def placement(stack, lb):
    """``(cluster, {node name: [(server key, listen)]})`` for the cluster
    whose nodes run ``lb``'s servers, or ``(None, {})``."""
    for name, cluster in stack['caddy_clusters'].items():
        found = {}
        for node in cluster['nodes']:
            servers = caddy_servers(node['admin_url'])
            found[node['name']] = [
                (key, ' '.join(server.get('listen', [])))
                for key, server in sorted(servers.items())
                if key.startswith(lb.id + SEPARATOR)]
        if any(found.values()):
            return name, found
    return None, {}


def show_placement(stack, lbs):
    section('placement: the Caddy nodes running each load balancer (GET '
            '<admin>/config/apps/http/servers, keys <lb id>--<listener id>)')
    for lb in lbs:
        cluster, nodes = placement(stack, lb)
        if cluster is None:
            raise DemoFailed('%s (%s) runs on no Caddy node'
                             % (lb.name, lb.id))
        print('  %-8s -> cluster %s' % (lb.name, cluster))
        for node, servers in nodes.items():
            print('      node %-16s %s' % (node, '; '.join(
                '%s listen %s' % s for s in servers) or 'NOTHING'))
        if not all(nodes.values()):
            raise DemoFailed('%s is missing on a node of %s' % (lb.name,
                                                                cluster))


def get(url, retry_for=5.0):
    """``(status, body)`` of ``GET url``; retries a refused connection
    for ``retry_for`` s."""
    deadline = time.monotonic() + retry_for
    while True:
        try:
            with HTTP.open(url, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def show_get(url):
    status, body = get(url)
    print('  GET %-32s -> %d %s' % (url, status, body.strip() or '(empty)'),
          flush=True)
    return status, body.strip()


def traffic(web, web_port, small, small_port, members):
    base = 'http://127.0.0.1:%d' % web_port
    section('real HTTP through %s, ROUND_ROBIN over %s' % (
        web.name, ' and '.join(m['name'] for m in members)))
    print('  Its VIP %s is made up by the no-op network driver; the Caddy\n'
          '  nodes bind the listener to listen_address 127.0.0.1 instead, '
          'port %d.' % (web.vip_address, web_port))
    answers = collections.Counter()
    for _ in range(REQUESTS):
        status, body = show_get(base + '/')
        if status != 200:
            raise DemoFailed('GET %s/ answered %d' % (base, status))
        answers[body] += 1
    print('  answered by: %s' % ', '.join(
        '%s x%d' % (body, n) for body, n in sorted(answers.items())))
    expected = {'member=%s' % m['name'] for m in members}
    if set(answers) != expected:
        raise DemoFailed('expected answers from %s, got %s' % (
            sorted(expected), sorted(answers)))
    print('  both members answered', flush=True)
    status, _body = show_get(base + '/admin/users')
    if status != 403:
        raise DemoFailed('GET /admin/users answered %d, not 403 (L7 REJECT '
                         'policy qs-no-admin)' % status)
    print('  403: refused by the L7 REJECT policy qs-no-admin', flush=True)

    section('real HTTP through %s on 127.0.0.1:%d'
            % (small.name, small_port))
    for _ in range(2):
        status, body = show_get('http://127.0.0.1:%d/' % small_port)
        if status != 200:
            raise DemoFailed('GET on %s answered %d' % (small.name, status))


def run(args):
    with open(args.stack_json) as f:
        stack = json.load(f)
    members = sorted(stack.get('members', {}).values(),
                     key=lambda m: m['name'])
    if not stack.get('caddy_clusters') or len(members) < 2:
        raise DemoFailed('%s records no Caddy cluster or fewer than two '
                         'member servers; restart the stack with: '
                         'tools/quickstart.sh down; tools/quickstart.sh up'
                         % args.stack_json)
    if any(ipaddress.ip_address(m['address']).is_loopback for m in members):
        raise DemoFailed('%s has member servers on loopback (a stack of an '
                         'older quick start); restart it with: '
                         'tools/quickstart.sh down; tools/quickstart.sh up'
                         % args.stack_json)
    api = stack['octavia']['api_urls'][0]
    show_stack(stack)
    conn = openstack.connection.Connection(
        auth_type='none', auth={'endpoint': api},
        load_balancer_endpoint_override=api)
    lbc = conn.load_balancer
    delete_previous(lbc, args.wait)

    section('creating load balancers through openstacksdk (%s)' % api)
    web_port, small_port = ports.free_ports(2)
    web = create(lbc, 'qs-web', args.wait,
                 listeners=full_graph(web_port, members[:2]))
    small = create(lbc, 'qs-small', args.wait,
                   listeners=small_graph(small_port, members[0]))

    section('the same, seen through the openstack CLI')
    cli(api, 'list')
    cli(api, 'status', 'show', web.id)
    # The status tree leaves L7 policies out.
    cli(api, 'l7policy', 'list', '-c', 'id', '-c', 'name', '-c', 'action',
        '-c', 'provisioning_status')

    show_placement(stack, (web, small))
    section("multilb's view of its clusters")
    manage(stack['octavia']['conf_path'], 'cluster', 'list')

    traffic(web, web_port, small, small_port, members[:2])
    section('try it yourself')
    print('  curl http://127.0.0.1:%d/          # %s, round robin'
          % (web_port, web.name))
    print('  curl http://127.0.0.1:%d/admin     # 403' % web_port)
    print('  curl http://127.0.0.1:%d/          # %s'
          % (small_port, small.name))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--stack-json', required=True,
                        help='stack.json of python -m tools.localstack up')
    parser.add_argument('--wait', type=float, default=120,
                        help='seconds to wait for ACTIVE / deleted')
    args = parser.parse_args(argv)
    try:
        run(args)
    except (DemoFailed, openstack.exceptions.SDKException) as exc:
        print('\nquickstart demo FAILED: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
