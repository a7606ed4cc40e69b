"""``multilb-status upgrade check``: each configuration mistake an operator
makes is named by the check that finds it, with oslo.upgradecheck's exit
codes (0 passed, 1 warnings only, 2 a failure).

Real configuration files in tmp_path, a sqlite store and file locks: the
store and coordination checks really connect.
"""

import json

import pytest

from multilb.cmd import status
from multilb import keys
from multilb import store
from tests.unit import fixtures


def check(capsys, path):
    code = status.main(['--config-file', str(path), 'upgrade', 'check'])
    out, _err = capsys.readouterr()
    # oslo.upgradecheck prints a table; keep the text, not the frame
    text = ' '.join(line.strip('|+- ').strip() for line in out.splitlines())
    return code, ' '.join(text.split())


def results(text):
    """``{check title: Success | Warning | Failure}``."""
    found = {}
    for part in text.split('Check: ')[1:]:
        title, rest = part.split(' Result: ', 1)
        found[title] = rest.split()[0]
    return found


def test_a_good_configuration_passes_every_check(tmp_path, capsys):
    code, text = check(capsys, fixtures.write_conf(tmp_path))
    assert code == 0
    assert set(results(text).values()) == {'Success'}
    assert len(results(text)) == 6


@pytest.mark.parametrize('options, extra, check_title, words', [
    ({'poll_interval': 'fast'}, '', 'Option values',
     "[multilb] poll_interval: invalid value (could not convert string to "
     "float: 'fast')"),
    ({'workers_per_cluster': '0'}, '', 'Option values',
     '[multilb] workers_per_cluster:'),
    ({}, '[multilb_scheduler]\nshard_size = x\n', 'Option values',
     '[multilb_scheduler] shard_size: invalid value'),
    ({}, '[multilb_scheduler]\nenabled_filters = CapacityFilter, '
     'NoSuchFilter\n', 'Scheduler filters and weighers',
     '[multilb_scheduler] enabled_filters: unknown name(s) NoSuchFilter; '
     'installed in multilb.scheduler.filters: AvailabilityZoneFilter'),
    ({'enabled_clusters': 'alpha, ghost'}, '',
     'Cluster and VIP pool sections',
     "[multilb] enabled_clusters lists 'ghost' but the configuration has "
     "no [cluster:ghost] section"),
    ({}, '[cluster:alpha]\nbackend = nosuch\n',
     'Cluster and VIP pool sections', '[cluster:alpha] backend'),
    ({'coordination_url': 'nosuch://here'}, '', 'Coordination backend',
     '[multilb] coordination_url nosuch://here:'),
], ids=['bad-float', 'zero-workers', 'bad-shard-size', 'unknown-filter',
        'cluster-without-section', 'unknown-backend', 'bad-coordination'])
def test_a_broken_value_fails_its_check_by_name(
        tmp_path, capsys, options, extra, check_title, words):
    enabled = options.pop('enabled_clusters', None)
    path = fixtures.write_conf(tmp_path, extra=extra, options=options,
                               enabled=enabled)
    code, text = check(capsys, path)
    assert code == 2
    assert results(text)[check_title] == 'Failure'
    assert words in text


def _store_url(path, tmp_path, url):
    path.write_text(path.read_text().replace(
        'store_url = sqlite:///%s' % (tmp_path / 'state.db'),
        'store_url = %s' % url))


def test_an_unreachable_store_fails_its_check(tmp_path, capsys):
    path = fixtures.write_conf(tmp_path)
    _store_url(path, tmp_path, 'etcd3+http://127.0.0.1:9?timeout=1')
    code, text = check(capsys, path)
    assert code == 2
    assert results(text)['State store'] == 'Failure'
    assert ('[multilb] store_url etcd3+http://127.0.0.1:9?timeout=1: cannot '
            'reach the state store') in text


def test_a_store_url_with_a_password_is_never_shown(tmp_path, capsys):
    path = fixtures.write_conf(tmp_path)
    _store_url(path, tmp_path, 'etcd3+http://multilb:s3cret@127.0.0.1:9')
    code, text = check(capsys, path)
    assert code == 2
    assert results(text)['State store'] == 'Failure'
    assert 'etcd member 127.0.0.1:9: connection refused' in text
    assert 's3cret' not in text


def test_a_misspelt_option_is_a_warning_with_the_likely_name(tmp_path,
                                                             capsys):
    path = fixtures.write_conf(tmp_path, {'alpha': {'max_loadbalancer': 5}},
                               options={'helth_interval': '5'})
    code, text = check(capsys, path)
    assert code == 1
    assert results(text)['Unknown options and ignored sections'] == 'Warning'
    assert ('[cluster:alpha] max_loadbalancer is not an option of this '
            'section and is ignored; did you mean max_loadbalancers?') in text
    assert 'did you mean health_interval?' in text
    # the other checks are not fooled by what oslo.config ignores
    assert results(text)['Option values'] == 'Success'


def test_a_backend_option_is_known_in_its_cluster_section_only(tmp_path,
                                                               capsys):
    """``fake_latency`` belongs to the fake backend: fine under a fake
    cluster; under [multilb] it is reported with the options allowed."""
    path = fixtures.write_conf(tmp_path, {'alpha': {'fake_latency': '0.1'}},
                               options={'fake_latency': '0.1'})
    code, text = check(capsys, path)
    assert code == 1
    assert '[multilb] fake_latency is not an option of this section' in text
    assert '[cluster:alpha] fake_latency' not in text


def test_a_section_of_a_cluster_not_enabled_is_a_warning(tmp_path, capsys):
    path = fixtures.write_conf(tmp_path, {'alpha': {}, 'retired': {}},
                               enabled='alpha')
    code, text = check(capsys, path)
    assert code == 1
    assert ("[cluster:retired] is ignored: 'retired' is not in [multilb] "
            "enabled_clusters") in text


def test_files_of_a_config_dir_are_checked_too(tmp_path, capsys):
    path = fixtures.write_conf(tmp_path)
    confd = tmp_path / 'conf.d'
    confd.mkdir()
    (confd / '50-multilb.conf').write_text('[multilb]\nstore_uri = x\n')
    code = status.main(['--config-file', str(path), '--config-dir',
                        str(confd), 'upgrade', 'check'])
    text = ' '.join(capsys.readouterr()[0].replace('|', ' ').split())
    assert code == 1
    assert ('[multilb] store_uri is not an option of this section and is '
            'ignored; did you mean store_url?') in text


def test_a_store_of_a_newer_key_layout_fails_the_store_check(tmp_path,
                                                             capsys):
    path = fixtures.write_conf(tmp_path)
    kv = store.get_kv_store('sqlite:///%s' % (tmp_path / 'state.db'))
    kv.commit(puts={keys.schema_key(): json.dumps(
        {'version': keys.SCHEMA_VERSION + 1})})
    code, text = check(capsys, path)
    assert code == 2
    assert results(text)['State store'] == 'Failure'
    assert 'newer than this multilb reads' in text
