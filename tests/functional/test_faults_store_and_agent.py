"""Per-cluster failure isolation (issue 5): the state store and the driver
agent go away while users keep working.

* etcd (multilb's state store and coordination backend) is stopped for
  several seconds while load balancers are being built, then started again
  on the same port with the same data: no placement is lost, the capacity
  counters still match, and requests made while it is down are refused
  cleanly (HTTP 500 with a message, nothing left behind).
* octavia-driver-agent (and the multilb provider agent inside it) is
  stopped for 30 s while users create, update and delete objects: the API
  takes them (PENDING_*) and everything settles once the agent is back.
* The agent is stopped after the appliance took a change but before the
  status reached Octavia: multilb's durable outbox delivers it after the
  restart.
* Octavia's database goes away for 20 s while five operations are being
  applied: MariaDB stopped (the driver agent's status writes wait for it),
  then MariaDB refusing writes (the driver agent refuses each status
  update as if its record were bad). Every status arrives once the
  database is back: multilb retries refused updates instead of dropping
  them, and one load balancer never holds back another.

The module runs its own fleet (etcd + MariaDB + Octavia + FAKE clusters) so
that stopping etcd or the driver agent disturbs no other test.
"""

import collections
import time

import pytest

from tests.functional import fleet as fleet_mod
from tests.functional.helpers import (
    ACTIVE, FULL_GRAPH, gone, listeners_of, make_lb, manage_json, pools_of,
    prov)
from tools.localstack import process

PROJECT = 'proj-e2e'
# Longer than the agents' membership and lock timeouts (6 s, see fleet.py).
ETCD_OUTAGE = 8
AGENT_OUTAGE = 30
SETTLE = 120
DB_OUTAGE = 20
# Appliance calls outlast the agent's pick-up and graph read (about a
# second, up to 4 s on a busy host) and end while MariaDB is stopped, so
# the outage hits the status delivery, not the graph read.
DB_LATENCY = 8.0
DB_STOP_AFTER = 4.0
# After the database is back: a refused entry's next retry is at most the
# outbox's 30 s backoff away, a write waiting in the driver agent retries
# its connection every 10 s (oslo.db), and a timed-out one (30 s) is
# retried by multilb within 5 s.
DB_RECOVERY = 60
# How long octavia-driver-agent lets a provider agent finish after SIGTERM
# (localstack's 5 s, raised so that the shutdown test's appliance call
# always ends inside it; a later [driver_agent] section wins).
SHUTDOWN_TIMEOUT = 20
SHUTDOWN_CONF = ('[driver_agent]\nprovider_agent_shutdown_timeout = %d\n'
                 % SHUTDOWN_TIMEOUT)


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('faults', numbered=True)
    started = fleet_mod.Fleet(workdir, {'alpha': 10, 'beta': 10},
                              extra_conf=SHUTDOWN_CONF).start()
    try:
        yield started
    finally:
        started.stop()


# -- helpers -----------------------------------------------------------------

def create_lb(conn, name, listeners=None):
    """Ask for a load balancer and return its id without waiting."""
    return conn.load_balancer.create_load_balancer(
        name=name, project_id=PROJECT, vip_subnet_id=fleet_mod.VIP_SUBNET,
        listeners=listeners or []).id


def settled(conn, lb_id):
    """Wait until ``lb_id`` is ACTIVE (an ERROR fails at once)."""
    return conn.load_balancer.wait_for_load_balancer(
        lb_id, status=ACTIVE, failures=['ERROR'], interval=0.2, wait=SETTLE)


def raw_request(conn, fleet, method, path, body=None):
    """A REST call whose refusal is returned, not raised."""
    return conn.session.request(
        '%s/v2/lbaas/%s' % (fleet.octavia.api_url, path), method, json=body,
        headers={'X-Project-Id': PROJECT}, raise_exc=False)


def tree_statuses(conn, lb_id):
    """{(type, id): provisioning_status} of every object under ``lb_id``."""
    lbc = conn.load_balancer
    found = {('loadbalancer', lb_id): prov(lbc.get_load_balancer, lb_id)}
    for listener in listeners_of(conn, lb_id):
        found['listener', listener.id] = listener.provisioning_status
        for ref in listener.l7_policies:
            policy = lbc.get_l7_policy(ref['id'])
            found['l7policy', policy.id] = policy.provisioning_status
            for rule in lbc.l7_rules(policy.id):
                found['l7rule', rule.id] = rule.provisioning_status
    for pool in pools_of(conn, lb_id):
        found['pool', pool.id] = pool.provisioning_status
        for member in lbc.members(pool.id):
            found['member', member.id] = member.provisioning_status
        if pool.health_monitor_id:
            found['healthmonitor', pool.health_monitor_id] = prov(
                lbc.get_health_monitor, pool.health_monitor_id)
    return found


def assert_all_active(conn, lb_id):
    statuses = tree_statuses(conn, lb_id)
    assert set(statuses.values()) == {ACTIVE}, statuses
    return statuses


def assert_capacity_matches_octavia(fleet, conn):
    """What multilb-manage shows per cluster is exactly what Octavia has:
    each counter equals the load balancers placed there, those are the
    load balancers Octavia lists, and nothing is left pending."""
    octavia_ids = {lb.id for lb in conn.load_balancer.load_balancers()}
    listed = set()
    for name in fleet.clusters:
        shown = manage_json(fleet, 'cluster', 'show', name)
        ids = {lb['id'] for lb in shown['loadbalancers']}
        assert shown['placed'] == len(ids), shown
        assert (shown['pending_intents'], shown['outbox']) == (0, 0), shown
        for lb_id in ids:
            assert fleet.appliance(lb_id)[0] == name
        listed |= ids
    assert listed == octavia_ids


def wait_quiet(fleet):
    """Wait until no cluster has pending work or undelivered statuses."""
    def quiet():
        # about pending work only: a cluster whose probe went stale in the
        # fault (exit 3, "need attention") is not this wait's business
        rows = manage_json(fleet, 'cluster', 'list', code=(0, 3))
        return all(r['pending_intents'] == 0 and r['outbox'] == 0
                   for r in rows)
    fleet_mod.wait_for(quiet, timeout=SETTLE, interval=0.5,
                       what='no pending work or outbox entries')


# -- etcd restarted ----------------------------------------------------------

def test_etcd_restart_loses_no_placement_and_work_continues(fleet, conn):
    lbc = conn.load_balancer
    steady = make_lb(conn, 'steady', listeners=FULL_GRAPH)
    # Slow appliance calls keep the next creates in flight (placed, being
    # applied, not reported) when etcd goes away.
    fleet.set_faults(latency=5.0)
    in_flight = [create_lb(conn, 'in-flight-%d' % i, FULL_GRAPH)
                 for i in range(4)]
    assert {prov(lbc.get_load_balancer, i) for i in in_flight} == {
        'PENDING_CREATE'}

    fleet.etcd.stop()
    down_since = time.monotonic()
    try:
        assert not fleet.etcd.service.alive()
        # A new load balancer is refused with a clear message and nothing
        # of it remains.
        refused = raw_request(conn, fleet, 'POST', 'loadbalancers', {
            'loadbalancer': {'name': 'while-etcd-down', 'project_id': PROJECT,
                             'vip_subnet_id': fleet_mod.VIP_SUBNET,
                             'listeners': FULL_GRAPH}})
        assert refused.status_code == 500, refused.text
        assert refused.json()['faultstring'] == (
            "Provider 'multilb' reports error: The load balancer service "
            "cannot record this request right now; nothing was changed. "
            "Please retry later.")
        assert list(lbc.load_balancers(name='while-etcd-down')) == []
        # So is a change to an existing one, which stays usable.
        refused = raw_request(conn, fleet, 'POST', 'listeners', {
            'listener': {'name': 'while-etcd-down', 'protocol': 'HTTP',
                         'protocol_port': 8080,
                         'loadbalancer_id': steady.id}})
        assert refused.status_code == 500, refused.text
        assert 'cannot record this request right now' in \
            refused.json()['faultstring']
        assert prov(lbc.get_load_balancer, steady.id) == ACTIVE
        assert [li.name for li in listeners_of(conn, steady.id)] == ['web']
        time.sleep(max(0.0, ETCD_OUTAGE - (time.monotonic() - down_since)))
        # Nothing can be reported before multilb has recorded it.
        assert {prov(lbc.get_load_balancer, i) for i in in_flight} == {
            'PENDING_CREATE'}
    finally:
        fleet.etcd.start()
    fleet.set_faults()

    for lb_id in in_flight:
        settled(conn, lb_id)
        assert_all_active(conn, lb_id)
        record = manage_json(fleet, 'lb', 'show', lb_id)
        assert record['cluster'] == fleet.appliance(lb_id)[0]
        assert record['project_id'] == PROJECT
    assert list(lbc.load_balancers(name='while-etcd-down')) == []
    assert_capacity_matches_octavia(fleet, conn)

    # Work goes on: a new load balancer, and a change to an old one.
    after = make_lb(conn, 'after-etcd-restart', listeners=FULL_GRAPH)
    assert_all_active(conn, after.id)
    listener = lbc.create_listener(name='after', protocol='HTTP',
                                   protocol_port=8080,
                                   load_balancer_id=steady.id)
    settled(conn, steady.id)
    assert prov(lbc.get_listener, listener.id) == ACTIVE
    assert sorted(li['protocol_port'] for li in
                  fleet.appliance(steady.id)[1]['listeners']) == [80, 8080]
    assert_capacity_matches_octavia(fleet, conn)


# -- driver agent stopped ----------------------------------------------------

def test_driver_agent_outage_statuses_arrive_when_it_returns(fleet, conn):
    lbc = conn.load_balancer
    # The API locks a load balancer until its status comes back, so each
    # operation made during the outage gets a load balancer of its own.
    names = ('updated', 'grown', 'shrunk', 'doomed')
    ids = dict(zip(names, [create_lb(conn, 'agent-' + n, FULL_GRAPH)
                           for n in names]))
    for lb_id in ids.values():
        settled(conn, lb_id)
    [updated] = listeners_of(conn, ids['updated'])
    [grown] = pools_of(conn, ids['grown'])
    [shrunk] = pools_of(conn, ids['shrunk'])
    dropped = next(iter(lbc.members(shrunk.id)))
    doomed = tree_statuses(conn, ids['doomed'])

    agents = fleet.octavia.provider_agent_pids('multilb')
    assert agents
    fleet.octavia.stop_driver_agent()
    try:
        assert not any(process.pid_alive(pid) for pid in agents)
        new_id = create_lb(conn, 'agent-new', FULL_GRAPH)
        lbc.update_listener(updated, connection_limit=321)
        added = lbc.create_member(grown, address='192.0.2.99',
                                  protocol_port=8080)
        lbc.delete_member(dropped, shrunk)
        lbc.delete_load_balancer(ids['doomed'], cascade=True)
        expected = {
            new_id: 'PENDING_CREATE', ids['updated']: 'PENDING_UPDATE',
            ids['grown']: 'PENDING_UPDATE', ids['shrunk']: 'PENDING_UPDATE',
            ids['doomed']: 'PENDING_DELETE'}
        assert {i: prov(lbc.get_load_balancer, i) for i in expected} == \
            expected
        time.sleep(AGENT_OUTAGE)
        # Nobody else reports: everything waits for the agent.
        assert {i: prov(lbc.get_load_balancer, i) for i in expected} == \
            expected
        assert prov(lbc.get_member, added.id, grown) == 'PENDING_CREATE'
        assert prov(lbc.get_member, dropped.id, shrunk) == 'PENDING_DELETE'
    finally:
        fleet.octavia.start_driver_agent()

    settled(conn, new_id)
    assert_all_active(conn, new_id)
    assert fleet.appliance(new_id) is not None

    settled(conn, ids['updated'])
    assert_all_active(conn, ids['updated'])
    assert lbc.get_listener(updated.id).connection_limit == 321
    assert fleet.appliance(ids['updated'])[1]['listeners'][0][
        'connection_limit'] == 321

    settled(conn, ids['grown'])
    statuses = assert_all_active(conn, ids['grown'])
    assert ('member', added.id) in statuses
    assert sorted(m['address'] for m in fleet.appliance(ids['grown'])[1][
        'pools'][0]['members']) == ['192.0.2.10', '192.0.2.11', '192.0.2.99']

    settled(conn, ids['shrunk'])
    assert_all_active(conn, ids['shrunk'])
    assert gone(lbc.get_member, dropped.id, shrunk)
    assert [m['member_id'] for m in fleet.appliance(ids['shrunk'])[1][
        'pools'][0]['members']] == [m.id for m in lbc.members(shrunk.id)]
    assert len(list(lbc.members(shrunk.id))) == 1

    fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, ids['doomed']),
                       timeout=SETTLE, what='cascade-deleted LB gone')
    getters = {'listener': lbc.get_listener, 'pool': lbc.get_pool,
               'healthmonitor': lbc.get_health_monitor,
               'l7policy': lbc.get_l7_policy}
    for (otype, oid) in doomed:
        if otype in getters:
            assert gone(getters[otype], oid), (otype, oid)
    assert fleet.appliance(ids['doomed']) is None
    wait_quiet(fleet)
    assert_capacity_matches_octavia(fleet, conn)


def test_status_applied_during_agent_shutdown_is_delivered_after_restart(
        fleet, conn):
    """SIGTERM reaches the driver agent while the appliance call runs:
    Octavia closes its sockets at once, then waits for the provider agent
    (SHUTDOWN_TIMEOUT); the call ends in between, so the status cannot be
    delivered and must wait in multilb's outbox across the restart."""
    lbc = conn.load_balancer
    lb = make_lb(conn, 'shutdown-race', listeners=FULL_GRAPH)
    wait_quiet(fleet)
    [listener] = listeners_of(conn, lb.id)
    # The agent needs about a second to pick the update up (poll + graph
    # read through the driver agent), up to 4 s on a busy host; the
    # appliance call then takes 7 s, so it ends 3-7 s after the SIGTERM,
    # after Octavia's sockets are gone and well before the shutdown timeout.
    fleet.set_faults(latency=7.0)
    lbc.update_listener(listener, connection_limit=555)
    time.sleep(4)
    fleet.octavia.stop_driver_agent()
    fleet.set_faults()

    # Applied, durably recorded, not reported.
    assert fleet.appliance(lb.id)[1]['listeners'][0][
        'connection_limit'] == 555, 'the apply was cut short'
    assert prov(lbc.get_load_balancer, lb.id) == 'PENDING_UPDATE'
    held = manage_json(fleet, 'lb', 'show', lb.id)
    assert (held['pending'], held['outbox']) == ([], 1), held
    assert 'status update for load balancer %s not delivered' % lb.id in \
        fleet.agent_log()

    fleet.octavia.start_driver_agent()
    settled(conn, lb.id)
    assert_all_active(conn, lb.id)
    assert lbc.get_listener(listener.id).connection_limit == 555
    # Octavia took it, so it has left the outbox.
    fleet_mod.wait_for(
        lambda: manage_json(fleet, 'lb', 'show', lb.id)['outbox'] == 0,
        timeout=30, interval=0.5, what='outbox entry acknowledged')


# -- Octavia's database away -------------------------------------------------

class FiveOperations:
    """One operation on each of five load balancers of their own (the API
    locks each until its status arrives, and separate ones show that a
    failing load balancer does not hold back another), made while the
    appliance is slow so that each is inside its appliance call when the
    database goes away and its status update meets the outage. Each
    :meth:`start` makes a new round of changes on the same load
    balancers."""

    NAMES = ('listener', 'pool', 'member', 'monitor', 'loadbalancer')

    def __init__(self, fleet, conn):
        self.fleet, self.conn, self.lbc = fleet, conn, conn.load_balancer
        self.ids = dict(zip(self.NAMES, [
            create_lb(conn, 'db-' + n, FULL_GRAPH) for n in self.NAMES]))
        for lb_id in self.ids.values():
            settled(conn, lb_id)
        wait_quiet(fleet)
        spread = collections.Counter(fleet.appliance(i)[0]
                                     for i in self.ids.values())
        # A fifth job on one cluster would wait for a free worker (4 per
        # cluster) and read its graph during the outage instead.
        assert max(spread.values()) <= 4, spread
        [self.listener] = listeners_of(conn, self.ids['listener'])
        [self.pool] = pools_of(conn, self.ids['pool'])
        [self.grown] = pools_of(conn, self.ids['member'])
        [monitored] = pools_of(conn, self.ids['monitor'])
        self.monitor_id = monitored.health_monitor_id
        self.round = 0
        self.added = None

    def start(self):
        lbc = self.lbc
        self.round += 1
        self.algorithm = ('LEAST_CONNECTIONS', 'SOURCE_IP')[self.round % 2]
        self.fleet.set_faults(latency=DB_LATENCY)
        lbc.update_listener(self.listener, connection_limit=320 + self.round)
        lbc.update_pool(self.pool, lb_algorithm=self.algorithm)
        self.added = lbc.create_member(
            self.grown, address='192.0.2.%d' % (100 + self.round),
            protocol_port=8080)
        lbc.update_health_monitor(self.monitor_id, delay=6 + self.round)
        lbc.update_load_balancer(self.ids['loadbalancer'],
                                 description='db outage %d' % self.round)
        assert {prov(lbc.get_load_balancer, i) for i in self.ids.values()
                } == {'PENDING_UPDATE'}
        time.sleep(DB_STOP_AFTER)

    def waiting(self):
        """``{lb id: outbox list row}`` of the five, as an operator sees
        them while the database is away."""
        rows = {r['loadbalancer_id']: r
                for r in manage_json(self.fleet, 'outbox', 'list')}
        missing = set(self.ids.values()) - set(rows)
        assert not missing, ('applied during the outage and waiting for '
                             'delivery', missing, rows)
        return {i: rows[i] for i in self.ids.values()}

    def settle(self, since):
        """Wait for every final status; ``{name: seconds after since}``."""
        arrived = {}
        for name, lb_id in self.ids.items():
            settled(self.conn, lb_id)
            arrived[name] = round(time.monotonic() - since, 1)
        return arrived

    def check(self):
        lbc = self.lbc
        assert prov(lbc.get_listener, self.listener.id) == ACTIVE
        assert lbc.get_listener(self.listener.id).connection_limit == \
            320 + self.round
        assert prov(lbc.get_pool, self.pool.id) == ACTIVE
        assert lbc.get_pool(self.pool.id).lb_algorithm == self.algorithm
        assert prov(lbc.get_member, self.added.id, self.grown) == ACTIVE
        assert prov(lbc.get_health_monitor, self.monitor_id) == ACTIVE
        assert lbc.get_health_monitor(self.monitor_id).delay == \
            6 + self.round
        assert lbc.get_load_balancer(self.ids['loadbalancer']).description \
            == 'db outage %d' % self.round
        for lb_id in self.ids.values():
            assert_all_active(self.conn, lb_id)


@pytest.fixture(scope='module')
def five(fleet):
    """The five load balancers of the database tests (made once: the
    module's clusters hold 20)."""
    return FiveOperations(fleet, fleet.connection())


def test_mariadb_stopped_statuses_arrive_when_it_returns(fleet, conn, five):
    """MariaDB stopped for real: Octavia's driver agent writes each status
    from a forked process that keeps retrying its database connection
    (oslo.db: 10 s apart) and answers when it can, or not within its
    client's 30 s (multilb then retries). Every status arrives once the
    database is back, and the API and driver agent reconnect."""
    ops = five
    log_from = len(fleet.agent_log())
    ops.start()

    fleet.db.stop()
    down_since = time.monotonic()
    try:
        assert not fleet.db.service.alive()
        time.sleep(DB_OUTAGE)
        ops.waiting()
    finally:
        fleet.set_faults()
        fleet.db.start()
    back = time.monotonic()

    arrived = ops.settle(back)
    print('\nMariaDB stopped %.0fs; final statuses %s s after it was back'
          % (back - down_since, arrived))
    assert max(arrived.values()) < DB_RECOVERY, arrived
    ops.check()
    log = fleet.agent_log()[log_from:]
    # The status writes met the outage and were retried, by Octavia's
    # status writers (and by multilb whenever one of them timed out).
    assert 'SQL connection failed' in log
    assert 'Octavia refused the status update for load balancer' not in log

    # The fleet works on: Octavia's processes reconnected to the database.
    after = make_lb(conn, 'after-db-restart', listeners=FULL_GRAPH)
    assert_all_active(conn, after.id)
    wait_quiet(fleet)
    assert_capacity_matches_octavia(fleet, conn)


def test_database_refusing_writes_statuses_arrive_when_it_recovers(
        fleet, conn, five):
    """MariaDB up but refusing writes for 20 s (read-only, as a Galera node
    that lost its primary component refuses them): the driver agent
    answers each status update with an error naming the record, as for a
    bad record. multilb keeps retrying with backoff instead of dropping it
    after five tries, and one load balancer never holds back another."""
    ops = five
    log_from = len(fleet.agent_log())
    ops.start()

    fleet.db.sql('SET GLOBAL read_only = ON')
    refusing_since = time.monotonic()
    try:
        time.sleep(DB_OUTAGE)
        for lb_id, row in ops.waiting().items():
            # Refused again and again and still there: they used to be
            # dropped after five tries, half a second apart.
            assert row['attempts'] >= 3, row
            assert row['last_error'].startswith('refused: '), row
            assert 'read-only' in row['last_error'], row
    finally:
        fleet.set_faults()
        fleet.db.sql('SET GLOBAL read_only = OFF')
    back = time.monotonic()

    arrived = ops.settle(back)
    print('\nMariaDB read-only %.0fs; final statuses %s s after it was '
          'writable' % (back - refusing_since, arrived))
    assert max(arrived.values()) < DB_RECOVERY, arrived
    ops.check()
    log = fleet.agent_log()[log_from:]
    for lb_id in ops.ids.values():
        assert ('status update for load balancer %s not delivered '
                '(refused by Octavia, attempt 1,' % lb_id) in log
        assert ('status update for load balancer %s delivered after'
                % lb_id) in log
    assert 'Octavia refused the status update for load balancer' not in log
    wait_quiet(fleet)
    assert_capacity_matches_octavia(fleet, conn)
