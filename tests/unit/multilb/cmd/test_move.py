"""multilb-manage lb move / cluster evacuate / cluster retire: what the
operator is told and what is recorded (the agent's part of a move is in
tests/unit/multilb/test_moves.py; end to end in
tests/functional/test_evacuation.py)."""

import time

from multilb import moves
from tests.unit.multilb.cmd import common

conf_path, state, operator = common.conf_path, common.state, common.operator
place, run, run_json = common.place, common.run, common.run_json
LB_M, LB_A, LB_B, LB_NEW = (common.uuid(n) for n in range(31, 35))


_healthy = common.healthy


def test_lb_move_queues_a_move_to_the_scheduler_s_choice(capsys, conf_path,
                                                         state, operator):
    _healthy(state, 'alpha', 'beta')
    place(state, LB_M, 'alpha', project='proj-b', applied=True)
    moved = run_json(capsys, conf_path, 'lb', 'move', LB_M, '--no-wait')
    assert moved == {'id': LB_M, 'source': 'alpha', 'target': 'beta',
                     'status': 'queued'}
    move = moves.Moves(state).get(LB_M)
    assert (move['source'], move['target'], move['phase']) == (
        'alpha', 'beta', 'applying')
    assert move['by'] == 'multilb-manage (ops@ctl-1)'    # who asked
    # the target's slot is reserved now; the source keeps its own
    counts = state.cluster_counts()
    assert (counts['alpha'][0], counts['beta'][0]) == (1, 1)
    shown = run_json(capsys, conf_path, 'lb', 'show', LB_M)
    assert shown['cluster'] == 'alpha'
    assert shown['move']['target'] == 'beta'
    code, out, err = run(capsys, 'lb', 'show', LB_M, conf=conf_path)
    assert 'from alpha to beta: applying' in out
    assert 'by multilb-manage (ops@ctl-1))' in out


def test_lb_move_says_why_no_cluster_can_take_it(capsys, conf_path, state):
    _healthy(state, 'alpha')
    state.set_health('beta', {'reachable': False, 'at': time.time(),
                              'detail': 'refused'})
    place(state, LB_M, 'alpha', project='proj-b', applied=True)
    code, out, err = run(capsys, 'lb', 'move', LB_M, conf=conf_path)
    assert code == 2 and out == ''
    assert '%s cannot move' % LB_M in err and 'beta' in err
    assert moves.Moves(state).get(LB_M) is None
    code, _out, err = run(capsys, 'lb', 'move', LB_M, '--to', 'delta',
                          conf=conf_path)
    assert code == 2 and 'no cluster delta' in err


def test_a_project_a_cluster_does_not_serve_is_not_moved_there(
        capsys, conf_path, state):
    """beta serves proj-b and proj-c only: the scheduler's filters apply."""
    _healthy(state, 'alpha', 'beta')
    place(state, LB_A, 'alpha', project='proj-a', applied=True)
    code, _out, err = run(capsys, 'lb', 'move', LB_A, '--to', 'beta',
                          '--no-wait', conf=conf_path)
    assert code == 2 and 'beta' in err
    assert moves.Moves(state).get(LB_A) is None


def test_an_lb_not_applied_yet_is_not_moved(capsys, conf_path, state):
    _healthy(state, 'alpha', 'beta')
    place(state, LB_NEW, 'alpha', project='proj-b')
    code, _out, err = run(capsys, 'lb', 'move', LB_NEW, '--no-wait',
                          conf=conf_path)
    assert code == 2 and 'has not been applied' in err
    assert state.cluster_counts().get('beta', (0,))[0] == 0


def test_evacuate_dry_run_shows_targets_and_changes_nothing(
        capsys, conf_path, state):
    _healthy(state, 'alpha', 'beta')
    place(state, LB_B, 'alpha', project='proj-b', applied=True)
    place(state, LB_A, 'alpha', project='proj-a', applied=True)
    plan = run_json(capsys, conf_path, 'cluster', 'evacuate', 'alpha',
                    '--dry-run')
    by_id = {p['id']: p for p in plan['plan']}
    assert by_id[LB_B]['target'] == 'beta'
    assert by_id[LB_A]['target'] is None
    assert 'dedicated to other projects' in by_id[LB_A]['error']
    assert state.cluster_runtime()['alpha']['admin'] == {}   # not drained
    assert moves.Moves(state).all() == {}


def test_evacuate_drains_and_reports_what_cannot_move(capsys, conf_path,
                                                      state, operator):
    _healthy(state, 'alpha', 'beta')
    place(state, LB_A, 'alpha', project='proj-a', applied=True)
    code, out, err = run(capsys, 'cluster', 'evacuate', 'alpha',
                         conf=conf_path)
    assert code == 1
    assert LB_A in out and '0 moved, 1 failed' in out
    assert 'stays drained' in err
    admin = state.cluster_runtime()['alpha']['admin']
    assert (admin['draining'], admin['by']) == (True, operator)


def test_retire_an_empty_cluster_says_it_can_leave_the_config(
        capsys, conf_path, state):
    _healthy(state, 'alpha', 'beta')
    code, out, err = run(capsys, 'cluster', 'retire', 'beta',
                         conf=conf_path)
    assert (code, err) == (0, '')
    assert 'Cluster beta holds nothing: remove it from [multilb] ' \
        'enabled_clusters' in out
    admin = state.cluster_runtime()['beta']['admin']
    assert admin['draining'] is True and admin['retired'] is True


def test_retire_refuses_while_work_is_left(capsys, conf_path, state):
    _healthy(state, 'alpha', 'beta')
    place(state, LB_A, 'alpha', project='proj-a', applied=True)
    code, out, err = run(capsys, 'cluster', 'retire', 'alpha',
                         conf=conf_path)
    assert code == 1
    assert 'cannot leave the configuration yet' in err
    assert '1 load balancer(s) placed on it' in err
    assert 'pending work for 1 load balancer(s)' in err


def test_evacuate_refuses_a_concurrency_below_one(capsys, conf_path, state):
    """0 would start no move and wait forever: a usage error, nothing
    drained."""
    for value in ('0', '-2', 'many'):
        code, out, err = run(capsys, 'cluster', 'evacuate', 'alpha',
                             '--concurrency', value, conf=conf_path)
        assert (code, out) == (2, '')
        assert "--concurrency: %r is not a whole number of at least 1" % (
            value) in err
    assert not state.cluster_runtime().get('alpha', {}).get(
        'admin', {}).get('draining')
