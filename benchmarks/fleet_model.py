"""The fleet of ``fleet_scale.py``: load balancers, their Octavia graphs,
their state store keys and the fake appliances that hold them.

Not a benchmark itself. Every figure of the fleet is a pure function of
``(lbs, clusters, projects)``, so the benchmark process (which seeds the
state store) and the agent process (which answers the agent's Octavia
reads and fills the fake appliances) build the same fleet without talking
to each other.

Load balancer ``n`` (0-based) is on cluster ``c%03d % (n % clusters)`` and
belongs to project ``n % projects``. Its graph is the one of
``create_to_active.py``: a load balancer with one HTTP:80 listener whose
default pool is ROUND_ROBIN with two members and an HTTP health monitor,
and one L7 policy REJECT with a PATH rule (8 objects). Its ids are
UUIDs, as Octavia's are, and its fields are those
``tests/unit/fixtures.py`` gives (octavia-lib data models).

What an applied load balancer leaves in the store is built with
multilb's own functions, as :meth:`multilb.placement.Placer.place` and
:meth:`multilb.jobs.LoadBalancerJobs._apply` build it after a create
that was applied and reported (the outbox entry delivered): see
:func:`store_entries`.
"""

from __future__ import annotations

import json
import time
import uuid

from octavia_lib.api.drivers import data_models as dm

from multilb import graph as graphs
from multilb import keys
from multilb import status as statuses

NS = uuid.UUID('6f1c8f3e-7c55-4a51-9a43-0b1e2a6c0f00')
KINDS = ('lb', 'listener', 'pool', 'member1', 'member2', 'hm', 'policy',
         'rule')


def cluster_name(index):
    return 'c%03d' % index


class Fleet:
    """``lbs`` load balancers over ``clusters`` clusters and ``projects``
    projects."""

    def __init__(self, lbs, clusters, projects, first=0):
        self.lbs = lbs
        self.clusters = clusters
        self.projects = projects
        self.first = first          # numbers first .. first+lbs-1
        self._template = None

    # -- ids ---------------------------------------------------------------

    @staticmethod
    def ids(n):
        """``{kind: uuid}`` of load balancer ``n``'s objects."""
        return {kind: str(uuid.uuid5(NS, '%s-%d' % (kind, n)))
                for kind in KINDS}

    def numbers(self):
        return range(self.first, self.first + self.lbs)

    def cluster_of(self, n):
        return cluster_name(n % self.clusters)

    def project_of(self, n):
        return uuid.uuid5(NS, 'project-%d' % (n % self.projects)).hex

    @staticmethod
    def vip_of(n):
        return '10.%d.%d.%d' % ((n >> 16) & 255, (n >> 8) & 255, n & 255)

    # -- Octavia's view ----------------------------------------------------

    def _model(self, n):
        """The committed tree of load balancer ``n`` (octavia-lib models,
        every one nested, as the driver agent's get socket has it)."""
        i = self.ids(n)
        project = self.project_of(n)

        def member(key, address):
            return dm.Member(
                member_id=i[key], pool_id=i['pool'], project_id=project,
                address=address, protocol_port=8080, weight=1, backup=False,
                admin_state_up=True, name=key, subnet_id=None,
                monitor_address=None, monitor_port=None, vnic_type='normal')

        def pool():
            return dm.Pool(
                pool_id=i['pool'], loadbalancer_id=i['lb'],
                project_id=project, name='pool', description='',
                admin_state_up=True, protocol='HTTP',
                lb_algorithm='ROUND_ROBIN', session_persistence=None,
                healthmonitor=dm.HealthMonitor(
                    healthmonitor_id=i['hm'], pool_id=i['pool'],
                    project_id=project, name='hm', admin_state_up=True,
                    type='HTTP', delay=5, timeout=3, max_retries=3,
                    max_retries_down=3, http_method='GET', http_version=1.1,
                    url_path='/healthz', expected_codes='200',
                    domain_name=None),
                members=[member('member1', '192.0.2.10'),
                         member('member2', '192.0.2.11')],
                tls_enabled=False)

        policy = dm.L7Policy(
            l7policy_id=i['policy'], listener_id=i['listener'],
            project_id=project, name='reject-admin', description='',
            admin_state_up=True, action='REJECT', position=1,
            redirect_pool_id=None, redirect_url=None, redirect_prefix=None,
            redirect_http_code=None,
            rules=[dm.L7Rule(
                l7rule_id=i['rule'], l7policy_id=i['policy'],
                project_id=project, admin_state_up=True, type='PATH',
                compare_type='STARTS_WITH', key=None, value='/admin',
                invert=False)])
        listener = dm.Listener(
            listener_id=i['listener'], loadbalancer_id=i['lb'],
            project_id=project, name='http', description='',
            admin_state_up=True, protocol='HTTP', protocol_port=80,
            connection_limit=-1, default_pool_id=i['pool'],
            default_pool=pool(), l7policies=[policy], insert_headers={},
            allowed_cidrs=None, timeout_client_data=50000,
            timeout_member_connect=5000, timeout_member_data=50000,
            timeout_tcp_inspect=0)
        return dm.LoadBalancer(
            loadbalancer_id=i['lb'], project_id=project, name='lb-%d' % n,
            description='', admin_state_up=True, flavor={},
            availability_zone={}, vip_address=self.vip_of(n),
            vip_network_id='net-1', vip_port_id=str(uuid.uuid5(
                NS, 'port-%d' % n)),
            vip_subnet_id='subnet-1', vip_qos_policy_id=None, vip_sg_ids=[],
            additional_vips=[], listeners=[listener], pools=[pool()])

    def octavia_text(self, n):
        """What the driver agent's get socket sends for load balancer
        ``n`` (JSON of ``to_dict(recurse=True, render_unsets=True)``),
        made from the text of load balancer 0 by replacing its ids."""
        if self._template is None:
            self._template = json.dumps(self._model(0).to_dict(
                recurse=True, render_unsets=True))
        text = self._template
        if n == 0:
            return text
        zero, mine = self.ids(0), self.ids(n)
        for kind in KINDS:
            text = text.replace(zero[kind], mine[kind])
        text = text.replace('"lb-0"', '"lb-%d"' % n)
        text = text.replace('"%s"' % self.vip_of(0), '"%s"' % self.vip_of(n))
        text = text.replace(str(uuid.uuid5(NS, 'port-0')),
                            str(uuid.uuid5(NS, 'port-%d' % n)))
        text = text.replace(self.project_of(0), self.project_of(n))
        return text

    def graph(self, n):
        """The graph multilb works on (``OctaviaClient.get_loadbalancer``:
        the library rebuilds the top level with ``from_dict``, then
        :func:`multilb.graph.from_octavia`)."""
        return graphs.from_octavia(dm.LoadBalancer.from_dict(
            json.loads(self.octavia_text(n))))

    # -- multilb's store ---------------------------------------------------

    def store_entries(self, n, cluster, now=None):
        """``{key: value}`` that load balancer ``n``, created, applied and
        reported, leaves in the state store (counters apart).

        ``cluster``: its :class:`multilb.conf.clusters.Cluster` (the
        record's ``addresses``/``binds``, as the API and the worker set
        them). No ``stats/`` key: a fake cluster counts no traffic.
        """
        from multilb import bindings
        now = time.time() if now is None else now
        graph = self.graph(n)
        lb_id = graph['loadbalancer_id']
        project = graph.get('project_id') or ''
        # multilb.placement.Placer.place (+ admission.placement_reserver)
        record = {'id': lb_id, 'cluster': cluster.name,
                  'project_id': project, 'flavor': {},
                  'availability_zone': {}, 'created_at': now,
                  'pools': graphs.pool_members(graph)}
        binds = bindings.bind_record(cluster, record, graph)
        # multilb.jobs.LoadBalancerJobs._apply, applied without refusals
        present = graphs.object_ids(graph)
        record.update(indexed=sorted(present),
                      pools=graphs.pool_members(graph),
                      listeners=len(graph['listeners']),
                      locks=statuses.locks(graph), applied=True, refused=[])
        intent = {'op': 'create', 'type': 'loadbalancer', 'id': lb_id,
                  'project': project, 'seq': '', 'at': now}
        status = statuses.for_intents([intent], graph, record, True,
                                      observes=False)
        entries = {keys.lb_key(lb_id): dump(record),
                   keys.marker_key(cluster.name, lb_id): '',
                   keys.sent_key(lb_id): dump(statuses.merge_sent({},
                                                                  status))}
        for oid, otype in present.items():
            entries[keys.idx_key(oid)] = dump({'lb': lb_id, 'type': otype})
        for key, listener_id in binds.items():
            entries[key] = dump({'lb': lb_id, 'listener': listener_id,
                                 'at': now})
        return entries, project, len(graph['listeners'])


def dump(value):
    """As :func:`multilb.state._dump`."""
    return json.dumps(value, sort_keys=True, separators=(',', ':'))


class FleetOctavia:
    """Stands in for ``multilb.octavia.OctaviaClient`` in the agent
    process: ``get_loadbalancer`` answers the fleet's graphs (decoded as
    the real client decodes the driver agent's reply), every status and
    statistics update is taken. Counts the calls."""

    def __init__(self, fleet, latency=0.0, on_get=None):
        self.fleet = fleet
        self.latency = latency
        self.on_get = on_get or (lambda lb_id, found: None)
        self.numbers = {Fleet.ids(n)['lb']: n for n in fleet.numbers()}

    def get_loadbalancer(self, lb_id):
        n = self.numbers.get(lb_id)
        if self.latency:
            time.sleep(self.latency)
        self.on_get(lb_id, n is not None)
        if n is None:
            return None
        return self.fleet.graph(n)

    def update_status(self, status):
        return None

    def update_statistics(self, statistics):
        return None


def fill_appliances(fleet):
    """Put every load balancer of ``fleet`` on its fake cluster (the
    in-process appliances of :mod:`backends.fake.backend`), as applied
    graphs; returns how many."""
    from backends.fake import backend as fake_backend
    with fake_backend._STATE_LOCK:
        for n in fleet.numbers():
            graph = fleet.graph(n)
            fake_backend._STATE.setdefault(fleet.cluster_of(n), {})[
                graph['loadbalancer_id']] = graph
    return fleet.lbs
