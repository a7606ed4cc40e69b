"""The cluster scheduler (scheduler/manager.py): filters, weighers, choice."""

import collections
import importlib.metadata
import logging
import sys

import pytest

from multilb.conf import scheduler as scheduler_conf
from multilb import exceptions
from scheduler import filters
from scheduler import manager
from scheduler import weighers
from tests.unit import fixtures as fx
from tests.unit.scheduler import fakes

cluster = fakes.cluster
request = fakes.request


def scheduler(**overrides):
    return manager.ClusterScheduler(fakes.conf(**overrides))


def select(clusters, req=None, **overrides):
    return fakes.names(scheduler(**overrides).select(req or request(),
                                                     clusters))


def refusal(clusters, req=None, **overrides):
    with pytest.raises(exceptions.NoValidCluster) as err:
        scheduler(**overrides).select(req or request(), clusters)
    return err.value


def choices(clusters, runs=300, req=None, **overrides):
    """How often each cluster comes first over many decisions."""
    sched = scheduler(**overrides)
    return collections.Counter(
        sched.select(req or request(), clusters)[0].name
        for _ in range(runs))


# -- loading ------------------------------------------------------------------


def test_defaults_without_configuration():
    sched = manager.ClusterScheduler()
    assert [name for name, _f in sched.filters] == \
        scheduler_conf.DEFAULT_FILTERS
    assert [name for name, _w in sched.weighers] == \
        scheduler_conf.DEFAULT_WEIGHERS
    assert sched.subset_size == 1


@pytest.mark.parametrize('group,base', [
    ('multilb.scheduler.filters', filters.BaseClusterFilter),
    ('multilb.scheduler.weighers', weighers.BaseClusterWeigher),
])
def test_every_installed_plugin_is_named_after_its_class(group, base):
    eps = importlib.metadata.entry_points(group=group)
    assert eps
    for ep in eps:
        plugin = ep.load()
        assert issubclass(plugin, base) and plugin.__name__ == ep.name
        assert plugin.__doc__ and sys.modules[plugin.__module__].__doc__


@pytest.mark.parametrize('option,kind,installed', [
    ('enabled_filters', 'filters', scheduler_conf.DEFAULT_FILTERS),
    ('enabled_weighers', 'weighers', scheduler_conf.DEFAULT_WEIGHERS),
])
def test_unknown_plugin_name_is_a_clear_config_error(option, kind,
                                                     installed):
    with pytest.raises(exceptions.ConfigError) as err:
        scheduler(**{option: [installed[0], 'RAMFilter']})
    message = str(err.value)
    assert message.startswith(
        '[multilb_scheduler] %s: unknown name(s) RAMFilter; installed in '
        'multilb.scheduler.%s: ' % (option, kind))
    for name in installed:
        assert name in message


def test_plugin_listed_twice_is_a_config_error():
    with pytest.raises(exceptions.ConfigError) as err:
        scheduler(enabled_filters=['DrainFilter', 'CapacityFilter',
                                   'DrainFilter'])
    assert str(err.value) == ('[multilb_scheduler] enabled_filters: listed '
                              'more than once: DrainFilter')


def test_invalid_option_value_is_a_config_error(tmp_path):
    conf = fx.load_conf(fx.write_conf(
        tmp_path, extra='[multilb_scheduler]\nsubset_size = 0\n'))
    with pytest.raises(exceptions.ConfigError) as err:
        manager.ClusterScheduler(conf)
    assert str(err.value).startswith('[multilb_scheduler] subset_size: ')


def test_options_come_from_the_services_config_file(tmp_path):
    conf = fx.load_conf(fx.write_conf(tmp_path, extra=(
        '[multilb_scheduler]\n'
        'enabled_filters = CapacityFilter, DrainFilter\n'
        'enabled_weighers = RecentErrorsWeigher\n')))
    fleet = [cluster('busy', recent_errors=3), cluster('calm'),
             cluster('off', draining=True)]
    assert fakes.names(manager.ClusterScheduler(conf).select(
        request(), fleet)) == ['calm', 'busy']


# -- filtering ----------------------------------------------------------------


def test_each_filter_sees_what_the_previous_kept():
    fleet = [cluster('a', draining=True, max_loadbalancers=1, placed=1),
             cluster('b', max_loadbalancers=1, placed=1)]
    err = refusal(fleet, enabled_filters=['DrainFilter', 'CapacityFilter'])
    assert err.reasons == [
        ('DrainFilter', 'a', 'draining'),
        ('CapacityFilter', 'b', 'full (1 of 1 load balancers)')]
    assert err.last_filter == 'CapacityFilter'

    err = refusal(fleet, enabled_filters=['CapacityFilter', 'DrainFilter'])
    assert err.reasons == [
        ('CapacityFilter', 'a', 'full (1 of 1 load balancers)'),
        ('CapacityFilter', 'b', 'full (1 of 1 load balancers)')]
    assert err.last_filter == 'CapacityFilter'


def test_last_filter_is_the_one_that_removed_the_last_candidates():
    fleet = [cluster('a', tags=['gold'], max_loadbalancers=1, placed=1),
             cluster('b', draining=True)]
    err = refusal(fleet, request(flavor={'cluster_tags': ['silver']}))
    assert err.last_filter == 'FlavorFilter'
    assert [r[0] for r in err.reasons] == ['FlavorFilter', 'FlavorFilter']
    assert 'lb-9' in str(err)


def test_no_cluster_at_all():
    err = refusal([])
    assert err.reasons == [] and err.last_filter is None
    assert 'no cluster is enabled' in str(err)


def test_capabilities_refusal_reads_the_same_for_the_tenant():
    http_only = {'listener.protocol': frozenset({'HTTP', 'TCP'}),
                 'pool.lb_algorithm': frozenset({'ROUND_ROBIN'})}
    err = refusal([cluster('lim', backend='httponly',
                           capabilities=http_only)],
                  request(needs={('listener.protocol', 'TERMINATED_HTTPS'),
                                 ('pool.lb_algorithm', 'LEAST_CONNECTIONS')}))
    assert err.last_filter == 'CapabilitiesFilter'
    assert err.reasons == [('CapabilitiesFilter', 'lim', (
        'cluster lim (backend httponly): listener protocol TERMINATED_HTTPS '
        'is not supported (supported: HTTP, TCP), pool lb_algorithm '
        'LEAST_CONNECTIONS is not supported (supported: ROUND_ROBIN)'))]


def test_default_pipeline_end_to_end():
    fleet = [cluster('az2', tags=['az2', 'gold'], max_loadbalancers=9),
             cluster('ded', tags=['az1', 'gold'], projects=['vip']),
             cluster('drained', tags=['az1', 'gold'], draining=True),
             cluster('down', tags=['az1', 'gold'], healthy=False),
             cluster('full', tags=['az1', 'gold'], max_loadbalancers=2,
                     placed=2),
             cluster('silver', tags=['az1']),
             cluster('ok', tags=['az1', 'gold'], max_loadbalancers=9,
                     placed=3),
             cluster('roomy', tags=['az1', 'gold'], max_loadbalancers=9)]
    req = request(availability_zone={'cluster_tags': ['az1']},
                  flavor={'cluster_tags': ['gold']})
    assert select(fleet, req) == ['roomy', 'ok']
    assert select(fleet, request(project='vip', flavor={
        'cluster_tags': ['gold']})) == ['ded']


def test_input_is_not_changed():
    fleet = [cluster('b', max_loadbalancers=5), cluster('a', draining=True)]
    before = list(fleet)
    select(fleet)
    assert fleet == before


# -- weighing and choosing ---------------------------------------------------


def test_spread_by_default_pack_with_the_flavor():
    fleet = [cluster('emptier', max_loadbalancers=10, placed=2),
             cluster('fuller', max_loadbalancers=10, placed=8),
             cluster('full', max_loadbalancers=10, placed=10)]
    assert select(fleet) == ['emptier', 'fuller']
    assert select(fleet, request(flavor={'placement': 'pack'})) == [
        'fuller', 'emptier']


def test_negative_multiplier_packs_and_pack_flavor_then_spreads():
    fleet = [cluster('emptier', max_loadbalancers=10, placed=2),
             cluster('fuller', max_loadbalancers=10, placed=8)]
    assert select(fleet, free_capacity_weight_multiplier=-1.0)[0] == \
        'fuller'
    assert select(fleet, request(flavor={'placement': 'pack'}),
                  free_capacity_weight_multiplier=-1.0)[0] == 'emptier'


@pytest.mark.parametrize('errors_multiplier,winner', [
    (-2.0, 'calm'),     # errors matter more than one free slot
    (-0.5, 'roomy'),    # free capacity matters more
])
def test_weights_are_normalised_then_multiplied(errors_multiplier, winner):
    # Raw scales differ (1000 free slots vs 3 errors); after normalising,
    # each weigher counts 0..1 times its multiplier.
    fleet = [cluster('roomy', max_loadbalancers=2000, placed=1000,
                     recent_errors=3),
             cluster('calm', max_loadbalancers=2000, placed=1001)]
    assert select(fleet, recent_errors_weight_multiplier=errors_multiplier,
                  )[0] == winner


def test_tenant_affinity_when_enabled():
    fleet = [cluster('home', max_loadbalancers=10, placed=5,
                     project_placed=4),
             cluster('away', max_loadbalancers=10, placed=4)]
    assert select(fleet)[0] == 'away'
    assert select(fleet, tenant_affinity_weight_multiplier=2.0)[0] == 'home'
    assert select(fleet, tenant_affinity_weight_multiplier=-2.0)[0] == \
        'away'


def test_list_is_best_first_then_by_name_on_equal_weight():
    fleet = [cluster(n, max_loadbalancers=10, placed=p) for n, p in
             [('d', 5), ('c', 1), ('b', 5), ('a', 9)]]
    assert select(fleet) == ['c', 'b', 'd', 'a']


def test_equal_best_clusters_are_picked_at_random():
    fleet = [cluster('x', max_loadbalancers=10, placed=3),
             cluster('y', max_loadbalancers=10, placed=3),
             cluster('z', max_loadbalancers=10, placed=3),
             cluster('worse', max_loadbalancers=10, placed=4)]
    found = choices(fleet)
    assert set(found) == {'x', 'y', 'z'}
    assert min(found.values()) > 50       # about 100 each


def test_the_rest_of_the_list_follows_the_chosen_one():
    fleet = [cluster('x'), cluster('y'), cluster('z')]
    for _ in range(20):
        ordered = select(fleet)
        assert sorted(ordered) == ['x', 'y', 'z']
        assert ordered[1:] == sorted(ordered[1:])


def test_subset_size_picks_among_the_n_best():
    fleet = [cluster(n, max_loadbalancers=10, placed=p) for n, p in
             [('best', 0), ('second', 1), ('third', 2), ('fourth', 3)]]
    assert set(choices(fleet)) == {'best'}
    assert set(choices(fleet, subset_size=2)) == {'best', 'second'}
    assert set(choices(fleet, subset_size=9)) == {'best', 'second',
                                                  'third', 'fourth'}


def test_without_weighers_every_candidate_ties():
    fleet = [cluster('a', placed=9), cluster('b'), cluster('c', placed=1)]
    assert set(choices(fleet, enabled_weighers=[])) == {'a', 'b', 'c'}


def test_single_candidate():
    assert select([cluster('only', max_loadbalancers=1)]) == ['only']


# -- logging ------------------------------------------------------------------


def test_each_filter_logs_its_counts_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger='scheduler.manager')
    select([cluster('a'), cluster('b', draining=True)],
           enabled_filters=['DrainFilter', 'CapacityFilter'])
    lines = [r.getMessage() for r in caplog.records]
    assert 'Filter DrainFilter: (start: 2, end: 1)' in lines
    assert 'Filter CapacityFilter: (start: 1, end: 1)' in lines


def test_refusal_logs_the_filter_history_at_warning(caplog):
    caplog.set_level(logging.WARNING, logger='scheduler.manager')
    fleet = [cluster('a', tags=['gold'], max_loadbalancers=1, placed=1),
             cluster('b', tags=['gold'], draining=True),
             cluster('c', tags=['gold'], max_loadbalancers=3, placed=3),
             cluster('d')]
    refusal(fleet, request(flavor={'cluster_tags': ['gold']}))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        'No cluster can take load balancer lb-9 of project proj-1 '
        '(4 enabled): '
        'AvailabilityZoneFilter kept 4 of 4; '
        "FlavorFilter kept 3 of 4, removed 1 (lacks the flavor's tag(s) "
        'gold: d); '
        'DedicatedClusterFilter kept 3 of 3; '
        'TenantShardFilter kept 3 of 3; '
        'DrainFilter kept 2 of 3, removed 1 (draining: b); '
        'HealthFilter kept 2 of 2; '
        'CapabilitiesFilter kept 2 of 2; '
        'CapacityFilter kept 0 of 2, removed 2 (full (1 of 1 load '
        'balancers): a; full (3 of 3 load balancers): c)')


def test_refusal_log_groups_clusters_by_reason(caplog):
    caplog.set_level(logging.WARNING, logger='scheduler.manager')
    fleet = [cluster('c%02d' % n, draining=True) for n in range(25)]
    refusal(fleet, enabled_filters=['DrainFilter'])
    assert caplog.records[0].getMessage().endswith(
        'DrainFilter kept 0 of 25, removed 25 (draining: c00, c01, c02, '
        'c03, c04, c05, c06, c07, c08, c09 and 15 more)')
