"""The quick start's client side (run by tools/quickstart.sh).

Against the local stack that ``python -m tools.localstack up`` started
(Octavia with multilb over real Caddy clusters that take their VIPs from
a loopback VIP pool, and member HTTP servers in a member lab: a network
namespace with a /24 of 198.18.0.0/15, each member on an address of its
own, never on loopback), read from its ``stack.json``:

1. deletes the load balancers a previous run of this demo left (same
   names), so the demo can run again and again;
2. creates (once per stack) the flavor ``qs-one-cluster`` with the real
   CLI: its profile's ``clusters`` is the first Caddy cluster, so both
   load balancers share one cluster;
3. creates through openstacksdk, on the VIP pool's subnet, with that
   flavor, and each in a project of its own

   * ``qs-web`` (project ``qs-project-a``): a full graph in one call: an
     HTTP listener on port 80, a ROUND_ROBIN default pool with two
     members (the first two member servers, at their lab addresses), an
     HTTP health monitor on ``/health``, an L7 REJECT policy for paths
     starting with ``/admin``;
   * ``qs-small`` (project ``qs-project-b``): one HTTP listener, on port
     80 too, and a pool with one member;

   and waits until both are ACTIVE;
4. shows them with the real ``openstack`` CLI (``loadbalancer list``,
   ``status show``, ``l7policy list``) and reads each VIP with ``openstack
   loadbalancer show NAME -c vip_address -f value``: two distinct
   addresses of the pool;
5. prints the Caddy cluster each one landed on, read from the nodes' admin
   API (``GET <admin>/config/apps/http/servers``: one server per listener,
   keyed ``<lb id>--<listener id>``, listening on exactly ``<VIP>:80``),
   and multilb's own view (``multilb-manage cluster list``, ``vip-pool
   list``);
6. sends real HTTP requests to those VIPs, port 80, and prints the
   answers: the requests to ``qs-web`` must be answered by both members,
   ``/admin`` must be refused (403) by the L7 policy, ``qs-small`` must
   answer;
7. prints the ``multilb_*`` lines of that cluster (and of the agent) from
   the provider agent's Prometheus endpoint (``[multilb] metrics_port`` of
   Octavia's configuration, on 127.0.0.1): it must answer and count both
   load balancers;
8. a second vendor: creates (once) the flavor ``qs-f5`` (``{"backend":
   "f5"}``) and ``qs-bigip`` with it, on the stack's F5 AS3 device
   EMULATOR cluster, waits for ACTIVE and prints the AS3 tenant and
   application the emulator holds for it (no traffic: an emulator).
   Exits 1 if any of that fails.

    python tools/quickstart_demo.py --stack-json .quickstart/stack/stack.json
"""

import argparse
import base64
import collections
import configparser
import ipaddress
import itertools
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

# Two tenants: each load balancer in a project of its own.
PROJECTS = {'qs-web': 'qs-project-a', 'qs-small': 'qs-project-b',
            'qs-bigip': 'qs-project-a'}
NAMES = tuple(PROJECTS)
PORT = 80           # both listen on it, each on its own VIP
FLAVOR = 'qs-one-cluster'
F5_FLAVOR = 'qs-f5'
REQUESTS = 6
SEPARATOR = '--'  # Caddy server keys: <lb id>--<listener id>

# Requests to loopback VIPs must not go through a proxy from the
# environment.
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


def _run(argv, shown, ok=(0,)):
    """Run a command of this venv, print it and its output; returns the
    output. ``ok``: the exit codes that are no failure of the demo."""
    print('\n$ ' + ' '.join(shlex.quote(a) for a in shown), flush=True)
    result = subprocess.run(argv, env=_clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    print(result.stdout.rstrip('\n'), flush=True)
    if result.returncode not in ok:
        raise DemoFailed('%s failed (exit %d)' % (shown[0],
                                                  result.returncode))
    return result.stdout


def _bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def cli(api, *args):
    """The real ``openstack`` CLI (from this venv)."""
    common = ['--os-auth-type', 'none', '--os-endpoint', api, 'loadbalancer']
    return _run([_bin('openstack')] + common + list(args),
                ['openstack'] + common + list(args))


def manage(conf, *args):
    """``multilb-manage`` (from this venv) on Octavia's configuration.
    ``cluster list`` exits 3 when a cluster needs attention (its last line
    says which and why): shown, not a failure of the demo."""
    common = ['--config-file', conf]
    _run([_bin('multilb-manage')] + common + list(args),
         ['multilb-manage'] + common + list(args),
         ok=(0, 3) if args[:2] == ('cluster', 'list') else (0,))


def show_stack(stack):
    section('the stack (%s)' % os.path.join(stack['workdir'], 'stack.json'))
    print('  Octavia API     %s' % stack['octavia']['api_urls'][0])
    for name, cluster in stack['caddy_clusters'].items():
        print('  Caddy cluster   %s: %s' % (name, ', '.join(
            '%s (admin %s)' % (node['name'], node['admin_url'])
            for node in cluster['nodes'])))
    pool = stack['vip_pool']
    print('  VIP pool        %s: %s on subnet %s (every address of it is '
          'local)' % (pool['name'], pool['cidr'], pool['subnet_id']))
    lab = stack.get('member_lab')
    if lab:
        print('  member lab      network namespace %s, %s (this host: %s)'
              % (lab['namespace'], lab['subnet'], lab['host_address']))
    for member in stack['members'].values():
        print('  member server   %s: %s' % (member['name'], member['url']))


def delete_previous(lbc, wait):
    """Delete the load balancers an earlier run of this demo created."""
    # noauth: every request is an admin's, so this lists every project
    old = [lb for lb in lbc.load_balancers() if lb.name in NAMES]
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


def ensure_flavor(lbc, api, cluster):
    """The flavor that puts a load balancer on ``cluster``, created with
    the real CLI the first time (it lives as long as the stack)."""
    section('a flavor for one cluster (%s)' % cluster)
    flavor = lbc.find_flavor(FLAVOR)
    if flavor is not None:
        print('  flavor %s exists already (an earlier run on this stack '
              'created it)' % FLAVOR)
        return flavor.id
    cli(api, 'flavorprofile', 'create', '--name', FLAVOR + '-profile',
        '--provider', 'multilb',
        '--flavor-data', json.dumps({'clusters': [cluster]}),
        '-c', 'name', '-c', 'flavor_data')
    cli(api, 'flavor', 'create', '--name', FLAVOR, '--flavorprofile',
        FLAVOR + '-profile', '--enable', '-c', 'name', '-c', 'enabled')
    return lbc.find_flavor(FLAVOR, ignore_missing=False).id


def ensure_f5_flavor(lbc, api):
    """The flavor of the ``f5`` backend (any cluster of it)."""
    flavor = lbc.find_flavor(F5_FLAVOR)
    if flavor is not None:
        return flavor.id
    cli(api, 'flavorprofile', 'create', '--name', F5_FLAVOR + '-profile',
        '--provider', 'multilb', '--flavor-data',
        json.dumps({'backend': 'f5'}), '-c', 'name', '-c', 'flavor_data')
    cli(api, 'flavor', 'create', '--name', F5_FLAVOR, '--flavorprofile',
        F5_FLAVOR + '-profile', '--enable', '-c', 'name', '-c', 'enabled')
    return lbc.find_flavor(F5_FLAVOR, ignore_missing=False).id


def as3_get(device, path):
    """GET of the AS3 emulator's REST API as its user."""
    request = urllib.request.Request(device['url'] + path, headers={
        'Authorization': 'Basic ' + base64.b64encode(('%s:%s' % (
            device['user'], device['password'])).encode()).decode()})
    with HTTP.open(request, timeout=10) as resp:
        body = resp.read()
        return json.loads(body) if body else {}


def second_vendor(stack, lbc, api, common, member, wait):
    """A load balancer on the emulated F5 cluster (flavor backend f5)
    and the AS3 application the emulator holds for it."""
    devices = stack.get('as3_devices') or {}
    if not devices:
        return
    name, device = sorted(devices.items())[0]
    section('a second vendor: %s, an F5 AS3 device EMULATOR (not a '
            'BIG-IP: it validates every declaration against F5\'s '
            'published AS3 schema, nothing carries traffic)' % name)
    flavor_id = ensure_f5_flavor(lbc, api)
    lb = create(lbc, 'qs-bigip', wait, listeners=small_graph(PORT, member),
                **dict(common, flavor_id=flavor_id))
    declared = as3_get(device, '/mgmt/shared/appsvcs/declare')
    app_name = 'lb_' + lb.id
    found = [(tenant, body[app_name]) for tenant, body in declared.items()
             if isinstance(body, dict) and app_name in body]
    if not found:
        raise DemoFailed('the AS3 emulator holds no application %s'
                         % app_name)
    tenant, app = found[0]
    print('  AS3 tenant %s (project %s, VIP network), application %s:'
          % (tenant, PROJECTS['qs-bigip'], app_name))
    for obj_name, obj in sorted(app.items()):
        if isinstance(obj, dict):
            extra = ''
            if obj.get('virtualAddresses'):
                extra = ' %s:%s' % (obj['virtualAddresses'][0],
                                    obj.get('virtualPort'))
            elif obj.get('members'):
                extra = ' members %s' % ', '.join(
                    '%s:%s' % (m['serverAddresses'][0], m['servicePort'])
                    for m in obj['members'])
            print('    %-50s %s%s' % (obj_name, obj.get('class'), extra))
    manage(stack['octavia']['conf_path'], 'cluster', 'show', name)


def create(lbc, name, wait, **kwargs):
    start = time.monotonic()
    lb = lbc.create_load_balancer(name=name, project_id=PROJECTS[name],
                                  **kwargs)
    print('  created %s (%s) in project %s: %s' % (
        name, lb.id, PROJECTS[name], lb.provisioning_status), flush=True)
    lb = lbc.wait_for_load_balancer(lb.id, status='ACTIVE', failures=['ERROR'],
                                    interval=0.2, wait=wait)
    print('  %s is %s/%s after %.1f s' % (
        name, lb.provisioning_status, lb.operating_status,
        time.monotonic() - start), flush=True)
    return lb


def read_vips(api, pool, lbs):
    """``{name: VIP}`` as the real CLI prints it; each must be an address
    of the pool, and no two the same."""
    section('the VIPs, as the openstack CLI shows them (from VIP pool %s, '
            '%s)' % (pool['name'], pool['cidr']))
    network = ipaddress.ip_network(pool['cidr'])
    vips = {}
    for lb in lbs:
        text = cli(api, 'show', lb.name, '-c', 'vip_address', '-f',
                   'value').strip()
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise DemoFailed('%s: the CLI printed %r, not a VIP address'
                             % (lb.name, text)) from None
        if address not in network:
            raise DemoFailed('%s: VIP %s is not an address of the VIP pool '
                             '%s' % (lb.name, address, network))
        vips[lb.name] = str(address)
    if len(set(vips.values())) != len(vips):
        raise DemoFailed('two load balancers got the same VIP: %s' % vips)
    return vips


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


def show_placement(stack, lbs, vips):
    """Each load balancer runs on every node of one cluster, listening
    on exactly its VIP and port 80; both on the same cluster."""
    section('placement: the Caddy nodes running each load balancer (GET '
            '<admin>/config/apps/http/servers, keys <lb id>--<listener id>)')
    landed = {}
    for lb in lbs:
        cluster, nodes = placement(stack, lb)
        if cluster is None:
            raise DemoFailed('%s (%s) runs on no Caddy node'
                             % (lb.name, lb.id))
        landed[lb.name] = cluster
        print('  %-8s -> cluster %s' % (lb.name, cluster))
        for node, servers in nodes.items():
            print('      node %-16s %s' % (node, '; '.join(
                '%s listen %s' % s for s in servers) or 'NOTHING'))
        if not all(nodes.values()):
            raise DemoFailed('%s is missing on a node of %s' % (lb.name,
                                                                cluster))
        want = '%s:%d' % (vips[lb.name], PORT)
        wrong = {listen for _key, listen in itertools.chain.from_iterable(
            nodes.values())} - {want}
        if wrong:
            raise DemoFailed('%s: Caddy listens on %s, not on its VIP %s'
                             % (lb.name, ', '.join(sorted(wrong)), want))
    if len(set(landed.values())) != 1:
        raise DemoFailed('the load balancers landed on different clusters '
                         '(%s) despite flavor %s' % (landed, FLAVOR))
    cluster = next(iter(landed.values()))
    print('\n  one cluster (%s), two projects, port %d twice: each load '
          'balancer\n  on its own VIP, and the nodes bind exactly it:'
          % (next(iter(landed.values())), PORT))
    for lb in lbs:
        print('      %-8s project %-13s VIP %s, port %d' % (
            lb.name, PROJECTS[lb.name], vips[lb.name], PORT))
    return cluster


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


def vip_url(vip):
    return 'http://%s' % vip if PORT == 80 else 'http://%s:%d' % (vip, PORT)


def traffic(web, small, vips, members):
    base = vip_url(vips[web.name])
    section('real HTTP through %s, its VIP %s, ROUND_ROBIN over %s' % (
        web.name, vips[web.name], ' and '.join(m['name'] for m in members)))
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

    base = vip_url(vips[small.name])
    section('real HTTP through %s, its VIP %s'
            % (small.name, vips[small.name]))
    expected = 'member=%s' % members[0]['name']
    for _ in range(2):
        status, body = show_get(base + '/')
        if (status, body) != (200, expected):
            raise DemoFailed('GET %s/ (%s) answered %d %r, not 200 %r'
                             % (base, small.name, status, body, expected))


# The lines of the agent's metrics the demo shows (per cluster, and the
# agent's own); the histogram buckets and _created series are left out.
METRICS_SHOWN = (
    'multilb_agent_info', 'multilb_agent_owned_clusters',
    'multilb_cluster_placed_loadbalancers',
    'multilb_cluster_max_loadbalancers', 'multilb_cluster_listeners',
    'multilb_cluster_reachable', 'multilb_cluster_breaker_open',
    'multilb_cluster_pending_intents', 'multilb_cluster_outbox_entries',
    'multilb_apply_duration_seconds_count',
    'multilb_apply_duration_seconds_sum',
    'multilb_probe_duration_seconds_count')


def metrics_url(conf_path):
    """The agent's metrics endpoint from Octavia's configuration, or
    None (``[multilb] metrics_port`` unset or 0)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(conf_path)
    port = parser.getint('multilb', 'metrics_port', fallback=0)
    host = parser.get('multilb', 'metrics_host', fallback='127.0.0.1')
    return 'http://%s:%d/metrics' % (host, port) if port else None


def show_metrics(conf_path, cluster, lbs, retry_for=15.0):
    """Print the agent's ``multilb_*`` lines of ``cluster``; they must
    count the demo's load balancers on it."""
    url = metrics_url(conf_path)
    if url is None:
        raise DemoFailed('%s sets no [multilb] metrics_port; restart the '
                         'stack with: tools/quickstart.sh down; '
                         'tools/quickstart.sh up' % conf_path)
    section("the provider agent's Prometheus metrics (GET %s), cluster %s"
            % (url, cluster))
    deadline = time.monotonic() + retry_for
    while True:
        status, text = get(url, retry_for=retry_for)
        if status != 200:
            raise DemoFailed('GET %s answered %d' % (url, status))
        shown = [line for line in text.splitlines()
                 if line.split('{')[0].split(' ')[0] in METRICS_SHOWN
                 and ('cluster=' not in line
                      or 'cluster="%s"' % cluster in line)]
        placed = [float(line.rsplit(' ', 1)[1]) for line in shown
                  if line.startswith('multilb_cluster_placed_')]
        if placed and placed[0] >= len(lbs) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for line in shown:
        print('  ' + line)
    if not placed or placed[0] < len(lbs):
        raise DemoFailed('the metrics do not count the %d load balancers on '
                         'cluster %s' % (len(lbs), cluster))
    print('  (every metric and two alert rules: '
          'doc/source/admin/monitoring.rst)')


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
    if (any(ipaddress.ip_address(m['address']).is_loopback
            for m in members) or not stack.get('vip_pool')):
        raise DemoFailed('%s has member servers on loopback or no VIP pool '
                         '(a stack of an older quick start); restart it '
                         'with: tools/quickstart.sh down; tools/quickstart.sh'
                         ' up' % args.stack_json)
    api = stack['octavia']['api_urls'][0]
    show_stack(stack)
    conn = openstack.connection.Connection(
        auth_type='none', auth={'endpoint': api},
        load_balancer_endpoint_override=api)
    lbc = conn.load_balancer
    delete_previous(lbc, args.wait)

    pool = stack['vip_pool']
    flavor_id = ensure_flavor(lbc, api, sorted(stack['caddy_clusters'])[0])

    section('creating load balancers through openstacksdk (%s), on subnet '
            '%s, flavor %s' % (api, pool['subnet_id'], FLAVOR))
    common = {'vip_subnet_id': pool['subnet_id'], 'flavor_id': flavor_id}
    web = create(lbc, 'qs-web', args.wait,
                 listeners=full_graph(PORT, members[:2]), **common)
    small = create(lbc, 'qs-small', args.wait,
                   listeners=small_graph(PORT, members[0]), **common)

    section('the same, seen through the openstack CLI')
    cli(api, 'list')
    cli(api, 'status', 'show', web.id)
    # The status tree leaves L7 policies out.
    cli(api, 'l7policy', 'list', '-c', 'id', '-c', 'name', '-c', 'action',
        '-c', 'provisioning_status')

    vips = read_vips(api, pool, (web, small))

    cluster = show_placement(stack, (web, small), vips)
    section("multilb's view of its clusters and its VIP pool")
    manage(stack['octavia']['conf_path'], 'cluster', 'list')
    manage(stack['octavia']['conf_path'], 'vip-pool', 'list')
    print('  (QUARANTINED: VIPs of deleted load balancers, e.g. of an '
          'earlier run; handed\n  out again after [vip_pool:%s] '
          'quarantine, 300 s by default)' % pool['name'])

    traffic(web, small, vips, members[:2])
    show_metrics(stack['octavia']['conf_path'], cluster, (web, small))
    second_vendor(stack, lbc, api, common, members[0], args.wait)
    section('try it yourself')
    print('  curl %s/          # %s, round robin'
          % (vip_url(vips[web.name]), web.name))
    print('  curl %s/admin     # 403' % vip_url(vips[web.name]))
    print('  curl %s/          # %s' % (vip_url(vips[small.name]), small.name))


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
