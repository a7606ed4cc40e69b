"""Moves between clusters, make-before-break (multilb/moves.py, moving.py,
the driver's failover off a draining cluster).

Two fake clusters (FAKE appliances: JSON mirrors on disk), one worker
each, a fake Octavia. The sample load balancer is created on 'alpha'.
"""

import dataclasses
import json

import pytest

from multilb import driver as driver_mod
from multilb import exceptions
from multilb import moves as moves_mod
from multilb import worker as worker_mod
from tests.unit import fixtures as fx
from tests.unit.fixtures import LB, M1, POOL_WEB

CLUSTERS = ('alpha', 'beta')


class TwoClusters:
    def __init__(self, tmp_path, monkeypatch, settings):
        self.tmp_path = tmp_path
        self.rt = fx.use_runtime(monkeypatch, fx.make_runtime(tmp_path, {
            name: {'fake_state_dir': tmp_path / 'appliance',
                   'fake_fault_file': tmp_path / ('%s.json' % name),
                   'fake_observe_health': True} for name in CLUSTERS}))
        self.state = self.rt.state
        self.driver = driver_mod.MultiLBProviderDriver()
        self.octavia = fx.FakeOctavia()
        self.workers = {}
        for name in CLUSTERS:
            cluster = self.rt.clusters.clusters[name]
            worker = worker_mod.ClusterWorker(cluster, self.state,
                                              self.octavia, settings)
            worker.backend = cluster.backend_class(cluster)
            self.workers[name] = worker
        self.moves = moves_mod.Moves(self.state)

    def process(self, name, lb_id=LB):
        intents = self.state.pending(name).get(lb_id)
        if intents:
            self.workers[name].process(lb_id, intents)

    def appliance(self, name, lb_id=LB):
        path = self.tmp_path / 'appliance' / name / (lb_id + '.json')
        return json.loads(path.read_text()) if path.exists() else None

    def faults(self, name, **faults):
        (self.tmp_path / ('%s.json' % name)).write_text(json.dumps(faults))

    def placed(self, name):
        return self.state.cluster_counts().get(name, (0, None))[0]

    def create_on_alpha(self):
        self.state.set_admin('beta', draining=True)
        self.driver.loadbalancer_create(fx.create_lb())
        self.state.set_admin('beta', draining=False)
        self.octavia.commit(fx.full_lb())
        self.process('alpha')
        assert self.state.get_lb(LB)['cluster'] == 'alpha'
        assert self.appliance('alpha') is not None
        self.octavia.statuses.clear()

    def start(self, target='beta', **kwargs):
        return self.moves.start(LB, target, 20, 'test', **kwargs)


@pytest.fixture
def two(tmp_path, monkeypatch, settings, clock):
    return TwoClusters(tmp_path, monkeypatch, settings)


def test_a_move_applies_verifies_switches_then_empties_the_source(two):
    two.create_on_alpha()
    two.start()
    # capacity is reserved at once; nothing changes for the source yet
    assert (two.placed('alpha'), two.placed('beta')) == (1, 1)
    assert two.moves.get(LB)['phase'] == moves_mod.APPLYING
    [queued] = two.state.pending('beta')[LB]
    assert queued['op'] == 'move' and queued['at'] and queued['seq']

    two.process('beta')
    assert two.appliance('beta') == two.appliance('alpha')  # both serve
    record = two.state.get_lb(LB)
    assert record['cluster'] == 'beta'
    assert (two.placed('alpha'), two.placed('beta')) == (0, 1)
    assert two.state.cluster_lb_ids('beta') == [LB]
    assert two.state.cluster_listeners('beta') == record['listeners'] > 0
    assert two.state.cluster_listeners('alpha') == 0
    assert two.moves.get(LB)['phase'] == moves_mod.EVICTING

    [evict] = two.state.pending('alpha')[LB]
    assert evict['op'] == 'evict' and evict['at'] and evict['seq']
    two.process('alpha')
    assert two.appliance('alpha') is None
    assert two.moves.get(LB) is None
    assert two.state.pending('alpha') == two.state.pending('beta') == {}
    # Octavia saw nothing: no status, so no updated_at change
    assert two.octavia.statuses == []


def test_a_change_recorded_during_the_move_ends_active_on_the_target(two):
    two.create_on_alpha()
    two.start()
    two.driver.member_update(fx.member(M1, POOL_WEB, '192.0.2.10'),
                             fx.dm.Member(member_id=M1, weight=7))
    two.octavia.lbs[LB]['pools'][0]['members'][0]['weight'] = 7
    two.process('beta')                       # switch takes the intent along
    assert list(two.state.pending('beta')) == [LB]
    two.process('beta')
    assert fx.reported(two)[M1] == 'ACTIVE'
    assert two.appliance('beta')['pools'][0]['members'][0]['weight'] == 7
    two.process('alpha')
    assert two.appliance('alpha') is None


def test_a_source_completion_racing_the_switch_is_refused(two):
    """The source applies a change while the target switches: the source
    records and reports nothing; the target applies and reports it."""
    two.create_on_alpha()
    two.start()
    two.driver.member_update(fx.member(M1, POOL_WEB, '192.0.2.10'),
                             fx.dm.Member(member_id=M1, weight=3))
    two.octavia.lbs[LB]['pools'][0]['members'][0]['weight'] = 3
    alpha = two.workers['alpha']
    real_apply = alpha.backend.apply_loadbalancer

    def apply_then_target_switches(graph):
        real_apply(graph)
        two.process('beta')

    alpha.backend.apply_loadbalancer = apply_then_target_switches
    with pytest.raises(exceptions.Moved):
        two.process('alpha')
    assert two.octavia.statuses == []
    assert two.state.get_lb(LB)['cluster'] == 'beta'
    two.process('beta')
    assert fx.reported(two)[M1] == 'ACTIVE'
    assert two.appliance('beta')['pools'][0]['members'][0]['weight'] == 3


def test_work_recorded_on_the_source_after_the_switch_is_forwarded(two):
    two.create_on_alpha()
    two.start()
    two.process('beta')
    # a request that read the old placement record before the switch
    two.state.add_intent(LB, 'alpha', {'op': 'update', 'type': 'member',
                                       'id': M1, 'project': fx.PROJECT})
    two.process('alpha')      # evicts
    assert two.appliance('alpha') is None
    two.process('alpha')      # forwards
    assert two.state.pending('alpha') == {}
    [intent] = two.state.pending('beta')[LB]
    assert (intent['op'], intent['id']) == ('update', M1)


def test_a_target_that_refuses_rolls_the_move_back(two):
    two.create_on_alpha()
    two.faults('beta', apply='rejected')
    two.start()
    two.process('beta')
    move = two.moves.get(LB)
    assert move['phase'] == moves_mod.FAILED
    assert 'refused' in move['error']
    assert two.state.get_lb(LB)['cluster'] == 'alpha'
    assert (two.placed('alpha'), two.placed('beta')) == (1, 0)
    assert two.state.pending('beta') == {}
    assert two.appliance('alpha') is not None
    assert two.octavia.statuses == []
    # a failed move can be asked again
    two.faults('beta')
    two.start()
    two.process('beta')
    assert two.state.get_lb(LB)['cluster'] == 'beta'


def test_a_target_whose_backend_lacks_a_feature_refuses_it_unwritten(two):
    """A target of a backend without the LB's listener protocol: the move
    fails naming what is missing, before anything reaches the target (its
    apply fault would otherwise be the reason); the LB stays served."""
    two.create_on_alpha()
    cluster = two.rt.clusters.clusters['beta']
    base = cluster.backend_class
    lacking = type('NoPlainHTTP', (base,), {
        'SUPPORTED_LISTENER_PROTOCOLS': frozenset(
            base.SUPPORTED_LISTENER_PROTOCOLS) - {'HTTP'}})
    two.workers['beta'].cluster = dataclasses.replace(cluster,
                                                      backend_class=lacking)
    two.faults('beta', apply='rejected')
    two.start()
    two.process('beta')
    move = two.moves.get(LB)
    assert move['phase'] == moves_mod.FAILED
    assert move['error'].startswith('cluster beta (backend fake) cannot '
                                    'serve it: listener protocol HTTP is '
                                    'not supported')
    assert two.state.get_lb(LB)['cluster'] == 'alpha'
    assert (two.placed('alpha'), two.placed('beta')) == (1, 0)
    assert two.appliance('beta') is None
    assert two.appliance('alpha') is not None
    assert two.octavia.statuses == []


def test_a_target_that_never_serves_it_rolls_back_after_move_timeout(two):
    two.create_on_alpha()
    two.faults('beta', verify='unavailable')
    two.start()
    two.process('beta')
    assert two.moves.get(LB)['phase'] == moves_mod.APPLYING   # retried
    assert two.state.get_lb(LB)['cluster'] == 'alpha'
    two.workers['beta']._forget(LB)
    # the move's age is measured from its start in the store
    record = two.moves.get(LB)
    record['started_at'] -= 301
    two.state.kv.commit(puts={moves_mod.move_key(LB): json.dumps(record)})
    two.process('beta')
    move = two.moves.get(LB)
    assert move['phase'] == moves_mod.FAILED
    assert 'move_timeout' in move['error']
    assert two.appliance('beta') is None
    assert two.placed('beta') == 0


def test_deleting_the_lb_during_the_move_releases_the_reservation(two):
    two.create_on_alpha()
    two.start()
    two.driver.loadbalancer_delete(fx.full_lb(), cascade=True)
    del two.octavia.lbs[LB]
    two.process('alpha')
    assert two.state.get_lb(LB) is None
    two.process('beta')
    assert two.moves.get(LB)['phase'] == moves_mod.FAILED
    assert (two.placed('alpha'), two.placed('beta')) == (0, 0)
    assert two.appliance('beta') is None


def test_a_move_cannot_start_twice_nor_to_its_own_cluster(two):
    two.create_on_alpha()
    with pytest.raises(ValueError, match='already on cluster alpha'):
        two.start('alpha')
    two.start()
    with pytest.raises(ValueError, match='already moving'):
        two.start()
    with pytest.raises(ValueError, match='no load balancer lb-x'):
        two.moves.start('lb-x', 'beta', 20, 'test')
    assert two.placed('beta') == 1


def test_a_full_target_takes_no_move(two):
    two.create_on_alpha()
    two.state.kv.commit(puts={'cluster/beta/count': '1'})
    with pytest.raises(ValueError, match='cluster beta is full'):
        two.moves.start(LB, 'beta', 1, 'test')
    assert two.moves.get(LB) is None
    assert two.placed('beta') == 1


def test_a_failover_on_a_draining_cluster_moves_the_lb(two):
    two.create_on_alpha()
    two.state.set_admin('alpha', draining=True)
    two.driver.loadbalancer_failover(LB)
    assert two.state.pending('alpha') == {}
    assert two.moves.get(LB)['target'] == 'beta'
    two.process('beta')       # move, switch
    assert two.state.get_lb(LB)['cluster'] == 'beta'
    two.process('beta')       # the failover itself, in place on beta
    assert fx.reported(two)[LB] == 'ACTIVE'
    two.process('alpha')
    assert two.appliance('alpha') is None


def test_a_failover_in_service_stays_in_place(two):
    two.create_on_alpha()
    two.driver.loadbalancer_failover(LB)
    assert two.moves.get(LB) is None
    [intent] = two.state.pending('alpha')[LB]
    assert intent['op'] == 'failover'
