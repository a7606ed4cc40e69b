"""[cluster_defaults] / [cluster:<name>] loading (multilb/conf/clusters.py).

What an operator sees: valid clusters serve with their resolved options;
each broken cluster is left out with ONE error naming the section and the
option, and the valid clusters keep working.
"""

import logging

import pytest

from backends.fake import backend as fake_backend
from multilb import conf as multilb_conf
from multilb.conf import clusters as cluster_conf
from tests.unit import fixtures

LOGGER = 'multilb.conf.clusters'


def load(tmp_path, clusters, **kwargs):
    conf = fixtures.load_conf(fixtures.write_conf(tmp_path, clusters,
                                                  **kwargs))
    # What Runtime does: register the [multilb] options, then load.
    multilb_conf.register_opts(conf)
    return cluster_conf.load_clusters(conf)


def errors_logged(caplog, name):
    return [r for r in caplog.records if r.name == LOGGER
            and r.levelno == logging.ERROR
            and r.getMessage().startswith('Cluster %s is disabled' % name)]


def test_defaults_apply_and_each_section_overrides(tmp_path):
    found = load(tmp_path, {
        'alpha': {},
        'beta': {'max_loadbalancers': 3, 'description': 'the beta rack',
                 'fake_latency': 0},
    }, defaults={'backend': 'fake', 'max_loadbalancers': 10,
                 'description': 'default rack', 'fake_latency': 0.5})

    assert found.errors == {}
    alpha, beta = found.clusters['alpha'], found.clusters['beta']
    assert (alpha.backend, alpha.max_loadbalancers, alpha.description) == (
        'fake', 10, 'default rack')
    assert alpha.options['fake_latency'] == 0.5
    assert alpha.backend_class is fake_backend.FakeBackend
    assert (beta.max_loadbalancers, beta.description) == (3, 'the beta rack')
    # An override to a falsy value (0) still wins over the default.
    assert beta.options['fake_latency'] == 0.0


def test_builtin_defaults_when_nothing_is_set(tmp_path):
    found = load(tmp_path, {'alpha': {}})
    alpha = found.clusters['alpha']
    assert alpha.max_loadbalancers == 0       # unlimited
    assert alpha.description == ''
    assert alpha.options == {'fake_latency': 0.0, 'fake_fault_file': '',
                             'fake_observe_health': False,
                             'fake_state_dir': ''}


def test_backend_may_be_set_per_section_only(tmp_path):
    found = load(tmp_path, {'alpha': {'backend': 'fake'}}, defaults={})
    assert found.errors == {}
    assert found.clusters['alpha'].backend == 'fake'


BROKEN = {
    'missing section': (
        None, {'backend': 'fake'},
        ['[multilb] enabled_clusters', "'broken'", '[cluster:broken]']),
    'missing backend': (
        {}, {},
        ['[cluster:broken] backend', 'missing',
         'installed backends: caddy, f5, fake']),
    'unknown backend': (
        {'backend': 'nosuch'}, {'backend': 'fake'},
        ['[cluster:broken] backend', "'nosuch'",
         'installed backends: caddy, f5, fake']),
    'bad integer': (
        {'max_loadbalancers': 'lots'}, {'backend': 'fake'},
        ['[cluster:broken] max_loadbalancers', 'lots']),
    'negative value': (
        {'max_loadbalancers': -3}, {'backend': 'fake'},
        ['[cluster:broken] max_loadbalancers',
         'greater than or equal to 0']),
    'relative fake_state_dir': (
        {'fake_state_dir': 'relative/dir'}, {'backend': 'fake'},
        ['[cluster:broken] fake_state_dir', "'relative/dir'", 'absolute']),
    'bad float': (
        {'fake_latency': 'slow'}, {'backend': 'fake'},
        ['[cluster:broken] fake_latency', 'slow']),
}


@pytest.mark.parametrize('case', sorted(BROKEN))
def test_broken_cluster_is_left_out_with_one_clear_error(tmp_path, caplog,
                                                         case):
    section, defaults, expected = BROKEN[case]
    clusters = {'good': {'backend': 'fake', 'max_loadbalancers': 4}}
    if section is not None:
        clusters['broken'] = section
    caplog.set_level(logging.WARNING, logger=LOGGER)

    found = load(tmp_path, clusters, defaults=defaults,
                 enabled='good, broken')

    assert list(found.errors) == ['broken']
    message = found.errors['broken']
    for text in expected:
        assert text in message
    assert '\n' not in message
    assert 'broken' not in found.clusters
    # The valid cluster keeps serving, fully resolved.
    assert found.clusters['good'].max_loadbalancers == 4
    assert [r.getMessage() for r in errors_logged(caplog, 'broken')] == [
        'Cluster broken is disabled: ' + message]
    assert errors_logged(caplog, 'good') == []


@pytest.mark.parametrize('name', ['bad name', 'a/b', '-dash', 'x' * 64])
def test_invalid_cluster_name(tmp_path, caplog, name):
    caplog.set_level(logging.ERROR, logger=LOGGER)
    found = load(tmp_path, {'good': {}}, enabled='good, %s' % name)

    assert list(found.errors) == [name]
    assert found.errors[name].startswith(
        '[multilb] enabled_clusters: invalid cluster name %r' % name)
    assert list(found.clusters) == ['good']
    assert len(errors_logged(caplog, name)) == 1


def test_longest_valid_name_is_accepted(tmp_path):
    name = 'c' * 63
    found = load(tmp_path, {name: {}})
    assert list(found.clusters) == [name]


def test_duplicate_name_warns_and_the_cluster_still_serves(tmp_path,
                                                           caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    found = load(tmp_path, {'alpha': {}, 'beta': {}},
                 enabled='alpha, beta, alpha')

    assert sorted(found.clusters) == ['alpha', 'beta']
    # Not reported as disabled: it is serving.
    assert found.errors == {}
    assert errors_logged(caplog, 'alpha') == []
    assert [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING] == [
        "[multilb] enabled_clusters lists 'alpha' twice; the repeat is "
        "ignored"]


def test_duplicate_broken_cluster_keeps_its_real_error(tmp_path):
    found = load(tmp_path, {}, enabled='ghost, ghost')
    assert found.clusters == {}
    assert list(found.errors) == ['ghost']
    assert 'no [cluster:ghost] section' in found.errors['ghost']


def test_broken_cluster_defaults_disable_every_cluster_once(tmp_path,
                                                            caplog):
    caplog.set_level(logging.ERROR, logger=LOGGER)
    found = load(tmp_path, {'alpha': {}, 'beta': {}},
                 defaults={'backend': 'fake', 'max_loadbalancers': 'many'})

    assert found.clusters == {}
    assert list(found.errors) == ['*']
    assert '[cluster_defaults] max_loadbalancers' in found.errors['*']
    assert 'many' in found.errors['*']
    assert len([r for r in caplog.records
                if r.levelno == logging.ERROR]) == 1


def test_unused_cluster_section_warns(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    found = load(tmp_path, {'alpha': {}, 'spare': {'backend': 'fake'}},
                 enabled='alpha')

    assert list(found.clusters) == ['alpha']
    assert found.errors == {}
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING]
    assert warnings == ['Section [cluster:spare] is not used: its cluster '
                        'is not in [multilb] enabled_clusters']


def test_no_enabled_cluster_is_not_an_error(tmp_path):
    found = load(tmp_path, {}, enabled='')
    assert found.clusters == {} and found.errors == {}


def test_backends_sharing_option_names_keep_their_own_defaults(tmp_path):
    """caddy and f5 both have endpoints, read_timeout, probe_timeout...:
    one configuration holds both (it failed with DuplicateOptError), each
    cluster gets its backend's default unless a section sets it."""
    found = load(tmp_path, {
        'web': {'backend': 'caddy', 'endpoints': 'https://10.0.0.11:2020'},
        'bigip': {'backend': 'f5', 'endpoints': 'https://192.0.2.10',
                  'password': 'pw'},
        'bigip-fast': {'backend': 'f5', 'endpoints': 'https://192.0.2.20',
                       'password': 'pw'},
    }, defaults={'backend': 'fake', 'probe_timeout': 4})

    assert found.errors == {}
    web, bigip = found.clusters['web'], found.clusters['bigip']
    assert web.options['read_timeout'] == 15.0
    assert bigip.options['read_timeout'] == 60.0
    assert web.options['probe_timeout'] == bigip.options['probe_timeout'] == 4
    assert bigip.options['endpoints'] == ['https://192.0.2.10']
    assert found.clusters['bigip-fast'].options['endpoints'] == [
        'https://192.0.2.20']


def test_two_clusters_on_one_appliance_is_an_error_for_the_second(
        tmp_path, caplog):
    found = load(tmp_path, {
        'bigip': {'backend': 'f5', 'endpoints': 'https://192.0.2.10',
                  'password': 'pw'},
        'bigip-too': {'backend': 'f5',
                      'endpoints': 'https://192.0.2.11, https://192.0.2.10',
                      'password': 'pw'},
        'other': {'backend': 'f5', 'endpoints': 'https://192.0.2.10:8443',
                  'password': 'pw'},
    })
    assert set(found.clusters) == {'bigip', 'other'}
    assert found.errors['bigip-too'] == (
        "[cluster:bigip-too] endpoints: the appliance at 192.0.2.10:443 is "
        "cluster bigip's too; an appliance belongs to one cluster (each "
        "would remove the other's load balancers as orphans)")
