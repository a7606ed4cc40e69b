"""The agent queues projects fairly: one project's churn on a cluster does
not hold another project's work back (a provider cannot answer 429)."""

from octavia_lib.api.drivers import data_models as dm


class RecordingPool:
    """Stands in for the worker's thread pool: records what is dispatched,
    runs nothing (the slots stay taken)."""

    def __init__(self):
        self.submitted = []

    def submit(self, func, lb_id):
        self.submitted.append(lb_id)


def bare(lb_id, project):
    return dm.LoadBalancer(loadbalancer_id=lb_id, project_id=project,
                           name=lb_id, admin_state_up=True, flavor={},
                           availability_zone={}, listeners=[], pools=[])


def test_a_busy_project_does_not_starve_another(env, clock):
    pool = RecordingPool()
    env.worker._pool = pool
    for n in range(6):                       # the noisy project first
        env.driver.loadbalancer_create(bare('lb-noisy-%d' % n, 'noisy'))
        clock.advance(1)
    env.driver.loadbalancer_create(bare('lb-quiet', 'quiet'))

    env.worker.scan()                        # 2 worker slots
    assert pool.submitted == ['lb-noisy-0', 'lb-quiet']
    env.worker.scan()                        # every slot taken
    assert len(pool.submitted) == 2


def test_one_slot_alternates_between_projects(env, clock):
    """With work from both projects waiting, each free slot goes to the
    project served least recently: the quiet project's three load
    balancers are not queued behind the noisy project's six."""
    pool = RecordingPool()
    env.worker._pool = pool
    env.worker.settings.workers_per_cluster = 1
    for n in range(6):
        env.driver.loadbalancer_create(bare('lb-noisy-%d' % n, 'noisy'))
        clock.advance(1)
    for n in range(3):
        env.driver.loadbalancer_create(bare('lb-quiet-%d' % n, 'quiet'))
        clock.advance(1)
    for _ in range(9):
        env.worker.scan()
        lb_id = pool.submitted[-1]
        env.state.complete(lb_id, 'alpha', env.pending(lb_id))
        env.worker._inflight.discard(lb_id)
        clock.advance(1)
    assert pool.submitted == [
        'lb-noisy-0', 'lb-quiet-0', 'lb-noisy-1', 'lb-quiet-1',
        'lb-noisy-2', 'lb-quiet-2', 'lb-noisy-3', 'lb-noisy-4',
        'lb-noisy-5']


def test_within_a_project_the_oldest_work_goes_first(env, clock):
    pool = RecordingPool()
    env.worker._pool = pool
    for lb_id in ('lb-z', 'lb-a', 'lb-m'):
        env.driver.loadbalancer_create(bare(lb_id, 'p1'))
        clock.advance(1)
    env.worker.scan()
    assert pool.submitted == ['lb-z', 'lb-a']
