"""Worker regressions: load balancers larger than one store transaction,
and the last-resort ERROR path unlocking every parent the API locked.
"""


import time

from octavia_lib.api.drivers import data_models as dm

from tests.unit import fixtures as fx
from tests.unit.fixtures import LB, M1, M2, POOL_WEB
from tests.unit.fixtures import reported


BIG = 'lb-big'


def big_lb(members=130):
    return dm.LoadBalancer(
        loadbalancer_id=BIG, project_id=fx.PROJECT, name='big',
        admin_state_up=True, flavor={}, availability_zone={}, listeners=[],
        pools=[fx.pool('pool-big', loadbalancer_id=BIG, members=[
            fx.member('m-%03d' % n, 'pool-big', '10.0.%d.%d' % divmod(n, 200))
            for n in range(members)])])


def test_lb_with_130_members_is_created(env):
    env.driver.loadbalancer_create(big_lb())
    env.octavia.commit(big_lb())

    env.process(BIG)

    found = reported(env)
    assert found[BIG] == fx.ACTIVE
    assert len(found) == 132            # LB + pool + 130 members
    assert env.pending(BIG) == []


def wait_for_status(env, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not env.octavia.statuses:
        assert time.monotonic() < deadline, 'nothing was reported'
        time.sleep(0.01)


def version_skew():
    # What DriverLibrary.get_loadbalancer raises when Octavia sends a field
    # this octavia-lib does not know (from_dict passes every key to
    # __init__).
    return TypeError("__init__() got an unexpected keyword argument 'x'")


def test_giving_up_on_a_member_update_unlocks_its_pool(env, executor, clock):
    env.create_active()
    env.driver.member_update(fx.member(M1, POOL_WEB, '192.0.2.10'),
                             dm.Member(member_id=M1, weight=5))
    env.octavia.get_errors.extend([version_skew()] * 5)
    clock.advance(361)      # past commit_wait_timeout + apply_retry_timeout

    env.worker.scan()
    wait_for_status(env)

    found = reported(env)
    assert (found[M1], found[LB]) == (fx.ERROR, fx.ACTIVE)
    assert found.get(POOL_WEB) == fx.ACTIVE


def test_giving_up_on_a_batch_reports_members_not_the_pool(env, executor,
                                                           clock):
    env.create_active()
    env.driver.member_batch_update(POOL_WEB, [
        dm.Member(member_id=M1, pool_id=POOL_WEB, address='192.0.2.10',
                  protocol_port=8080, weight=3)])
    env.octavia.get_errors.extend([version_skew()] * 5)
    clock.advance(361)

    env.worker.scan()
    wait_for_status(env)

    found = reported(env)
    assert found.get(POOL_WEB) == fx.ACTIVE
    assert found.get(M1) == fx.ERROR
    assert found.get(M2) == fx.ERROR
