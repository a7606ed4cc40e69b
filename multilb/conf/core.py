"""Options of ``[multilb]``: clusters, where state lives, agent tuning."""

from oslo_config import cfg

GROUP = 'multilb'

opts = [
    cfg.ListOpt(
        'enabled_clusters', default=[],
        help='Names of the appliance clusters multilb may use. Each name '
             'needs a [cluster:<name>] section. Names may contain letters, '
             'digits, "_", "-" and ".".'),
    cfg.ListOpt(
        'management_cidrs', default=[],
        help='CIDRs tenants must never reach through a load balancer: the '
             'appliances\' management networks, the controllers, etcd, '
             'the hypervisors. A member, member monitor address or VIP in '
             'them is refused at the API (HTTP 501 naming the field) and '
             'again by the agent before anything reaches an appliance. '
             'Loopback, link-local, multicast, reserved, IPv4-embedding '
             'IPv6 and every configured appliance endpoint address are '
             'refused whatever this says.'),
    cfg.ListOpt(
        'vip_pools', default=[],
        help='Names of the VIP address pools multilb hands out VIPs from; '
             'each needs a [vip_pool:<name>] section. A load balancer '
             'created on a pool\'s network gets a free address of the pool '
             '(multilb owns the VIP port); networks without a pool keep '
             'Octavia\'s own VIP allocation.'),
    cfg.StrOpt(
        'store_url', default='sqlite:////var/lib/multilb/state.db',
        secret=True,
        help='Where multilb keeps its state (placements, pending work, the '
             'status outbox). Possible values: '
             'etcd3+http://HOST:PORT[,HOST:PORT...][?timeout=5'
             '&prefix=/multilb/] or etcd3+https://HOST:PORT[,HOST:PORT...]'
             '?ca_cert=..&cert_key=..&cert_cert=.. for an etcd cluster '
             'shared by every controller: list every member, a request '
             'goes to the next member when one fails; '
             'sqlite:////ABSOLUTE/PATH.db for a single controller only '
             '(octavia-api and octavia-driver-agent must share the file; '
             'on several controllers each would have its own state).'),
    cfg.StrOpt(
        'coordination_url', default='file:///var/lib/multilb/locks',
        secret=True,
        help='tooz coordination backend used for agent membership and '
             'per-cluster locks. Possible values: '
             'etcd3+http://HOST:PORT[,HOST:PORT...][?timeout=5'
             '&lock_timeout=10&membership_timeout=10] (or etcd3+https:// '
             'with ca_cert, cert_key, cert_cert) for agents on several '
             'controllers: list every member of the etcd cluster, an agent '
             'moves to the next member when one fails and keeps its '
             'membership and locks; file:///DIR for agents on a single '
             'controller only (on several, each would lock on its own).'),
    cfg.FloatOpt(
        'poll_interval', default=0.5, min=0.05,
        help='Seconds between two scans of the pending work and the status '
             'outbox by each cluster worker of the provider agent. With an '
             'etcd store the agent also watches for new work and scans at '
             'once; the scan then only catches what a watch missed.'),
    cfg.FloatOpt(
        'idle_poll_interval', default=5.0, min=0.05,
        help='Seconds between two rounds of the agent\'s sweep, which '
             'reads, once for all the clusters it drives, who owns them '
             '(a worker whose cluster another agent claimed stops) and the '
             'late writes to repair. With an etcd store (the agent watches '
             'for new work and wakes the cluster\'s worker when some is '
             'written) a cluster whose last scan found nothing pending and '
             'nothing undelivered is not scanned again until woken, and '
             'the sweep also looks for work and status updates such a '
             'cluster has: it bounds how late work a watch missed (while '
             'etcd restarts) is found. Probes keep their health_interval.'),
    cfg.FloatOpt(
        'commit_wait_timeout', default=60.0, min=1.0,
        help='Seconds the agent waits for Octavia to commit an object it was '
             'told about before it drops the work as rolled back.'),
    cfg.FloatOpt(
        'status_delivery_deadline', default=86400.0, min=60.0,
        help='Seconds during which the agent keeps retrying a status update '
             'that Octavia refuses (the driver agent refuses an update it '
             'cannot write, e.g. while its database fails over, as it '
             'refuses a bad record), with a backoff from 0.5 s doubling up '
             'to 30 s, counted from the first refusal. Past it the update '
             'is dropped with one ERROR naming the load balancer and the '
             'cluster, and its objects keep the status Octavia shows '
             '(PENDING_* until an operator fixes them). While the driver '
             'agent is unreachable nothing is dropped. Waiting updates are '
             'listed by "multilb-manage outbox list".'),
    cfg.FloatOpt(
        'apply_retry_timeout', default=300.0, min=0.0,
        help='Seconds during which the agent retries an appliance that is '
             'unavailable before it reports the object ERROR. Errors the '
             'appliance reports as permanent are not retried.'),
    cfg.IntOpt(
        'workers_per_cluster', default=4, min=1,
        help='Load balancers of one cluster that the agent applies in '
             'parallel. Each cluster has its own workers, so a slow cluster '
             'never delays another.'),
    cfg.FloatOpt(
        'health_interval', default=2.0, min=0.5,
        help='Seconds between two probes of each owned cluster by the agent '
             '(a cheap request per node, with the backend\'s short probe '
             'timeout). A probe that finds no node answering opens the '
             'cluster\'s circuit breaker, so this bounds how long a hung '
             'cluster keeps getting work. The scheduler treats a cluster '
             'whose last probe is older than three intervals as of unknown '
             'health.'),
    cfg.FloatOpt(
        'resync_interval', default=30.0, min=0.5,
        help='Seconds between two checks, by the agent, that each owned '
             'cluster still holds every load balancer placed on it; a '
             'missing one is re-applied without a user action. A probe '
             'that finds nodes disagreeing triggers it at once.'),
    cfg.StrOpt(
        'orphan_action', default='delete', choices=[
            ('delete', 'remove orphans from the cluster'),
            ('report', 'only log them (a WARNING per load balancer)')],
        help='What the agent does with an orphan: a load balancer a '
             'cluster holds that multilb did not place there (a node that '
             'was down during a delete kept it) and that Octavia no longer '
             'has, or that is placed on another cluster. Checked at every '
             'resync_interval. A load balancer Octavia still has but the '
             'state store does not place anywhere is never removed: it is '
             'logged as an ERROR (the store lost it).'),
    cfg.FloatOpt(
        'orphan_grace_period', default=30.0, min=0.0,
        help='Seconds an orphan must have been seen before it is removed '
             '(or reported).'),
    cfg.IntOpt(
        'orphan_sweep_limit', default=10, min=1,
        help='Orphans removed from one cluster per resync_interval at most; '
             'the rest wait for the next sweep.'),
    cfg.FloatOpt(
        'move_timeout', default=300.0, min=1.0,
        help='Seconds a move of a load balancer to another cluster '
             '(multilb-manage lb move, cluster evacuate, or an Octavia '
             'failover off a draining or broken cluster) may take to be '
             'applied on, and served by, every node of the target; after '
             'that the move is rolled back and the load balancer stays '
             'where it was.'),
    cfg.FloatOpt(
        'member_health_interval', default=10.0, min=0.5,
        help='Seconds between two reads of member health from each owned '
             'cluster. Changes of the operating status of members, pools, '
             'listeners and load balancers are sent to Octavia after each '
             'read. The appliance\'s own check delay and rise/fall counts '
             'come on top.'),
    cfg.FloatOpt(
        'statistics_interval', default=10.0, min=0.5,
        help='Seconds between two reads of listener traffic from each owned '
             'cluster. The totals (kept in the state store, monotonic across '
             'appliance restarts) are sent to Octavia after each read.'),
    cfg.FloatOpt(
        'membership_interval', default=2.0, min=0.1,
        help='Seconds between two checks of the agent group membership '
             '(which agent owns which cluster).'),
    cfg.PortOpt(
        'metrics_port', default=0,
        help='TCP port on which the provider agent (in '
             'octavia-driver-agent) serves Prometheus metrics at /metrics: '
             'gauges of the clusters it owns now, apply and probe '
             'latencies, re-applies and orphans removed. 0 (the default) '
             'turns the endpoint off. Each agent process needs a port of '
             'its own; if it cannot be bound the agent logs one WARNING '
             'and runs without metrics. octavia-api never serves metrics.'),
    cfg.HostAddressOpt(
        'metrics_host', default='127.0.0.1',
        help='Address the metrics endpoint (metrics_port) listens on. The '
             'endpoint has no authentication and no TLS: keep it on '
             'loopback or a management network (0.0.0.0 or :: listens on '
             'every address).'),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return [(GROUP, opts)]
