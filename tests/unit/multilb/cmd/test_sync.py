"""``multilb-manage lb sync`` / ``cluster sync`` (multilb/cmd/sync.py)."""

from tests.unit import fixtures as fx
from tests.unit.multilb.cmd import common

conf_path, state, fleet = common.conf_path, common.state, common.fleet
place, run, run_json = common.place, common.run, common.run_json
LB1, LB2, LISTENER1, uuid = common.LB1, common.LB2, common.LISTENER1, \
    common.uuid


def _syncs(store, cluster):
    return {lb_id: [i['op'] for i in intents]
            for lb_id, intents in store.pending(cluster).items()
            if any(i['op'] == 'sync' for i in intents)}


def test_lb_sync_queues_a_reapply_on_its_cluster(capsys, conf_path, fleet):
    lb9 = uuid(9)
    place(fleet, lb9, 'alpha', applied=True)    # (with its create)
    code, out, err = run(capsys, 'lb', 'sync', lb9, conf=conf_path)
    assert (code, err) == (0, '')
    assert out == ('re-apply of load balancer %s queued on cluster alpha '
                   '(2 pending operation(s)); the agent owning the cluster '
                   'applies it, nothing is reported to Octavia\n' % lb9)
    assert _syncs(fleet, 'alpha') == {lb9: ['create', 'sync']}
    data = run_json(capsys, conf_path, 'lb', 'sync', lb9)
    assert data == {'id': lb9, 'cluster': 'alpha', 'queued': True,
                    'pending_intents': 3}


def test_lb_sync_refusals_say_why_and_queue_nothing(capsys, conf_path,
                                                    fleet):
    broken, departed, unknown = uuid(20), uuid(21), uuid(22)
    place(fleet, broken, 'nosuch', applied=True)
    place(fleet, departed, 'gone', applied=True)
    cases = {
        unknown: 'no load balancer %s in the multilb state store' % unknown,
        LISTENER1: '%s is a listener of load balancer %s' % (LISTENER1,
                                                             LB1),
        LB1: 'has not been applied to cluster alpha yet',
        departed: ('load balancer %s is on cluster gone, which multilb '
                   'cannot apply to (not in [multilb] enabled_clusters)'
                   % departed),
        broken: "unknown backend 'does-not-exist'",
    }
    for lb_id, expected in cases.items():
        code, out, err = run(capsys, 'lb', 'sync', lb_id, conf=conf_path)
        assert (code, out) == (2, ''), lb_id
        assert expected in err, (lb_id, err)
    for cluster in ('alpha', 'nosuch', 'gone'):
        assert _syncs(fleet, cluster) == {}


def test_cluster_sync_queues_every_applied_lb(capsys, conf_path, fleet):
    place(fleet, uuid(8), 'alpha', applied=True)
    place(fleet, uuid(9), 'alpha', applied=True)
    code, out, err = run(capsys, 'cluster', 'sync', 'alpha', conf=conf_path)
    assert (code, err) == (0, '')
    assert out.splitlines() == [
        're-apply of 2 load balancer(s) queued on cluster alpha; the agent '
        'owning the cluster applies them, nothing is reported to Octavia',
        '2 not applied yet (their pending work applies them): %s, %s' % (
            LB1, LB2)]
    assert sorted(_syncs(fleet, 'alpha')) == [uuid(8), uuid(9)]
    code, _out, err = run(capsys, 'cluster', 'sync', 'nope', conf=conf_path)
    assert code == 2 and 'no cluster nope' in err


def test_a_synced_lb_the_cluster_lost_is_applied_again(env, capsys,
                                                       monkeypatch):
    common.accept_sample_lb_id(monkeypatch)
    env.create_active()
    env.worker.backend.delete_loadbalancer(fx.LB)      # the cluster lost it
    assert env.appliance() is None

    code, _out, err = run(capsys, 'lb', 'sync', fx.LB,
                          conf=env.tmp_path / 'multilb.conf')
    assert (code, err) == (0, '')
    env.process()

    assert env.appliance()['loadbalancer_id'] == fx.LB
    assert env.octavia.statuses == []       # no status rewrite
    assert env.pending() == []
