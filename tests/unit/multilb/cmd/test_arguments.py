"""The command line every multilb-manage command shares
(multilb/cmd/arguments.py, multilb/cmd/who.py, manage.load_config): global
options before or after the command, --version, ids and cluster names
checked before anything is read, who a change is recorded as, and where
to look when no [multilb] section is found."""

import getpass
import json
import os
import socket

import pytest

from multilb.cmd import arguments
from multilb.cmd import manage
from multilb.cmd import who
from multilb import moves
from tests.unit import fixtures
from tests.unit.multilb.cmd import common

CLUSTERS = common.CLUSTERS
conf_path, state = common.conf_path, common.state
run, run_json, place = common.run, common.run_json, common.place
LB1 = common.LB1


# -- global options before or after the command ------------------------------

@pytest.fixture
def two_files(tmp_path, state):
    """``base.conf`` (the fleet of common.conf_path) and ``over.conf``,
    which gives alpha another description: the file read last wins."""
    over = tmp_path / 'over.conf'
    over.write_text('[cluster:alpha]\ndescription = from over.conf\n')
    return tmp_path / 'multilb.conf', over


def _description(capsys, *argv):
    code, out, err = run(capsys, *argv, '--format', 'json')
    assert (code, err) == (0, ''), err
    return json.loads(out)['description']


@pytest.mark.parametrize('where', ['before', 'object', 'after'])
def test_config_file_before_or_after_the_command(capsys, two_files, where):
    base, _over = two_files
    command = ['cluster', 'show', 'alpha']
    at = {'before': 0, 'object': 1, 'after': len(command)}[where]
    argv = command[:at] + ['--config-file', str(base)] + command[at:]
    assert _description(capsys, *argv) == 'DC1 rack 4'


def test_repeated_config_files_are_read_in_command_line_order(
        capsys, two_files):
    base, over = two_files
    show = ['cluster', 'show', 'alpha']
    for argv, expected in [
            (['--config-file', str(base), *show, '--config-file', str(over)],
             'from over.conf'),
            (['--config-file', str(over), *show, '--config-file', str(base)],
             'DC1 rack 4'),
            (['--config-file', str(base), 'cluster', '--config-file',
              str(over), 'show', 'alpha'], 'from over.conf'),
            ([*show, '--config-file', str(base), '--config-file',
              str(over)], 'from over.conf')]:
        assert _description(capsys, *argv) == expected, argv


def test_global_options_merge_in_command_line_order():
    args = arguments.merge_global_options(manage.build_parser().parse_args([
        '--config-file', 'a', '--config-dir', 'd1', 'cluster',
        '--config-file', 'b', 'list', '--config-file', 'c', '--config-dir',
        'd2', '--debug']))
    assert args.config_file == ['a', 'b', 'c']
    assert args.config_dir == ['d1', 'd2']
    assert args.debug is True
    assert not [key for key in vars(args) if '_after_' in key]
    plain = arguments.merge_global_options(
        manage.build_parser().parse_args(['cluster', 'list']))
    assert (plain.config_file, plain.config_dir, plain.debug) == (
        [], [], False)


def test_config_dir_after_the_command(capsys, tmp_path, state):
    main = tmp_path / 'octavia.conf'
    main.write_text('[DEFAULT]\n')
    confd = tmp_path / 'conf.d'
    confd.mkdir()
    fixtures.write_conf(tmp_path, CLUSTERS, name='conf.d/50-multilb.conf')
    common.healthy(state, 'alpha', 'beta')
    code, out, err = run(capsys, 'cluster', 'list', '--config-file',
                         str(main), '--config-dir', str(confd))
    assert (code, err) == (0, '')
    assert [line.split()[0] for line in out.splitlines()] == [
        'NAME', 'alpha', 'beta']


def test_debug_after_the_command_shows_the_traceback(
        capsys, conf_path, state, monkeypatch):
    def broken(self):
        raise RuntimeError('disk on fire')
    monkeypatch.setattr(type(state), 'cluster_runtime', broken)
    code, _out, err = run(capsys, 'cluster', 'list', '--debug',
                          conf=conf_path)
    assert code == 1
    assert 'Traceback (most recent call last)' in err


def test_global_options_are_in_every_command_s_help(capsys):
    code, out, err = run(capsys, 'lb', 'move', '--help')
    assert (code, err) == (0, '')
    assert 'global options (also accepted before the command):' in out
    for flag in ('--config-file PATH', '--config-dir DIR', '--debug'):
        assert flag in out.split('global options')[1]
    code, out, err = run(capsys, '--help')
    out = ' '.join(out.split())
    assert 'The global options may also follow the command' in out
    assert '3 (cluster list) some cluster needs attention' in out


# -- --version ----------------------------------------------------------------

def test_version(capsys):
    code, out, err = run(capsys, '--version')
    assert (code, err) == (0, '')
    assert out == 'multilb-manage %s\n' % arguments.version()
    assert arguments.version() not in ('', 'unknown')   # installed (pbr)


# -- load balancer ids and cluster names -------------------------------------

def _usage_error(capsys, *argv, conf):
    """Exit 2 from argparse, before the configuration or the store is
    read (the store file of ``conf`` does not exist: reading it would
    fail with exit 1)."""
    code, out, err = run(capsys, *argv, conf=conf)
    assert (code, out) == (2, ''), err
    assert err.startswith('usage: multilb-manage '), err
    return err.splitlines()[-1]


@pytest.mark.parametrize('argv', [
    ['lb', 'show', 'nope'], ['lb', 'sync', 'lb-1'],
    ['lb', 'move', '6a83798d-75fa-43f0-9ad7'],
    ['lb', 'show', LB1 + '0'], ['lb', 'show', ' ' + LB1],
    ['lb', 'show', LB1.replace('-', '')],
    ['store', 'rebuild', '--id', 'listener-1'],
    ['store', 'rebuild', '--assign', 'lb-1=alpha']])
def test_a_malformed_load_balancer_id_is_a_usage_error(capsys, tmp_path,
                                                       argv):
    conf = fixtures.write_conf(tmp_path, CLUSTERS)
    line = _usage_error(capsys, *argv, conf=conf)
    assert argv[-2] in ('--id', '--assign') and (
        'argument %s: ' % argv[-2]) in line or (
            'argument LOADBALANCER_ID: ' in line), line
    assert ('is not a load balancer id: expected the UUID Octavia gave it '
            '(8-4-4-4-12 hexadecimal digits, e.g. '
            '6a83798d-75fa-43f0-9ad7-52b3f155a4a6; openstack loadbalancer '
            'list shows them)') in line
    assert not (tmp_path / 'state.db').exists()


def test_the_message_names_the_argument_and_the_value(capsys, tmp_path):
    conf = fixtures.write_conf(tmp_path, CLUSTERS)
    line = _usage_error(capsys, 'lb', 'show', 'nope', conf=conf)
    assert line == (
        "multilb-manage lb show: error: argument LOADBALANCER_ID: 'nope' is "
        'not a load balancer id: expected the UUID Octavia gave it '
        '(8-4-4-4-12 hexadecimal digits, e.g. '
        '6a83798d-75fa-43f0-9ad7-52b3f155a4a6; openstack loadbalancer list '
        'shows them)')


@pytest.mark.parametrize('argv', [
    ['cluster', 'show', 'a b'], ['cluster', 'drain', '*'],
    ['cluster', 'undrain', '.hidden'], ['cluster', 'sync', 'a/b'],
    ['cluster', 'evacuate', 'x' * 64], ['cluster', 'retire', ''],
    ['cluster', 'evacuate', 'alpha', '--to', 'be ta'],
    ['lb', 'move', LB1, '--to', 'beta!'],
    ['outbox', 'list', '--cluster', 'al*'],
    ['store', 'rebuild', '--assign', LB1 + '=no such']])
def test_a_malformed_cluster_name_is_a_usage_error(capsys, tmp_path, argv):
    conf = fixtures.write_conf(tmp_path, CLUSTERS)
    line = _usage_error(capsys, *argv, conf=conf)
    assert 'is not a cluster name: names have 1 to 63 letters, digits, ' \
        '"_", "-" and ".", starting with a letter or digit, as in ' \
        '[multilb] enabled_clusters' in line, line
    assert not (tmp_path / 'state.db').exists()


def test_assign_without_a_cluster_is_a_usage_error(capsys, tmp_path):
    conf = fixtures.write_conf(tmp_path, CLUSTERS)
    line = _usage_error(capsys, 'store', 'rebuild', '--assign', LB1,
                        conf=conf)
    assert line.endswith("argument --assign: %r: expected "
                         "LOADBALANCER_ID=CLUSTER" % LB1)


def test_well_formed_names_and_ids_reach_the_command(capsys, conf_path,
                                                     state):
    """A valid name that is not configured, an id the store lacks: the
    command's own answer (exit 2, one line), not argparse's."""
    for argv, expected in [
            (['cluster', 'show', 'x' * 63], 'no cluster %s' % ('x' * 63)),
            (['cluster', 'show', 'a_b.c-d'], 'no cluster a_b.c-d'),
            (['lb', 'sync', LB1], 'no load balancer %s' % LB1)]:
        code, out, err = run(capsys, *argv, conf=conf_path)
        assert (code, out) == (2, '')
        assert err.startswith('multilb-manage: error: %s' % expected), err


# -- who made a change --------------------------------------------------------

def test_changed_by_names_the_os_user_and_host():
    assert who.changed_by() == 'multilb-manage (%s@%s)' % (
        getpass.getuser(), socket.gethostname())


def test_changed_by_without_a_login_name(monkeypatch):
    def no_name():
        raise OSError('No username set in the environment')
    monkeypatch.setattr(who.getpass, 'getuser', no_name)
    monkeypatch.setattr(who.socket, 'gethostname', lambda: 'ctl-1')
    assert who.changed_by() == 'multilb-manage (uid-%d@ctl-1)' % (
        os.getuid())


def test_drain_and_moves_record_who(capsys, conf_path, state, monkeypatch):
    monkeypatch.setattr(who.getpass, 'getuser', lambda: 'alice')
    monkeypatch.setattr(who.socket, 'gethostname', lambda: 'ctl-2')
    by = 'multilb-manage (alice@ctl-2)'
    row = run_json(capsys, conf_path, 'cluster', 'drain', 'alpha',
                   '--reason', 'RMA')
    assert row['admin']['changed_by'] == by
    code, out, _err = run(capsys, 'cluster', 'show', 'alpha',
                          conf=conf_path)
    assert ' by multilb-manage (alice@ctl-2)\n' in out
    run_json(capsys, conf_path, 'cluster', 'undrain', 'alpha')
    assert state.cluster_runtime()['alpha']['admin']['by'] == by
    common.healthy(state, 'alpha', 'beta')
    place(state, LB1, 'alpha', project='proj-b', applied=True)
    run_json(capsys, conf_path, 'lb', 'move', LB1, '--no-wait')
    assert moves.Moves(state).get(LB1)['by'] == by


# -- no [multilb] section: where else to look ---------------------------------

@pytest.fixture
def no_multilb(tmp_path, monkeypatch):
    """An octavia.conf without [multilb], and no system directory to
    suggest (CONF_DIRS: tests choose theirs)."""
    monkeypatch.setattr(manage, 'CONF_DIRS', ())
    path = tmp_path / 'etc' / 'octavia.conf'
    path.parent.mkdir()
    path.write_text('[DEFAULT]\ndebug = true\n')
    return path


def test_a_conf_d_next_to_the_file_is_suggested(capsys, no_multilb):
    confd = no_multilb.parent / 'conf.d'
    confd.mkdir()
    code, out, err = run(capsys, 'cluster', 'list', conf=no_multilb)
    assert (code, out) == (2, '')
    assert err == (
        "multilb-manage: error: no [multilb] section in %s; multilb's "
        'options may live in the configuration directory %s: pass '
        '--config-dir %s (else pass the octavia.conf that octavia-api uses '
        'with --config-file)\n' % (no_multilb, confd, confd))


def test_several_directories_are_listed(capsys, no_multilb, tmp_path,
                                        monkeypatch):
    confd = no_multilb.parent / 'octavia.conf.d'
    confd.mkdir()
    system = tmp_path / 'system-conf.d'
    system.mkdir()
    monkeypatch.setattr(manage, 'CONF_DIRS', (str(system),
                                              str(tmp_path / 'absent')))
    code, _out, err = run(capsys, 'cluster', 'list', conf=no_multilb)
    assert code == 2
    assert ("multilb's options may live in a configuration directory "
            '(%s, %s): pass --config-dir DIR' % (confd, system)) in err


def test_a_directory_already_read_is_not_suggested(capsys, no_multilb):
    confd = no_multilb.parent / 'conf.d'
    confd.mkdir()
    (confd / '10-api.conf').write_text('[api_settings]\nbind_port = 1\n')
    code, _out, err = run(capsys, 'cluster', 'list', '--config-dir',
                          str(confd), conf=no_multilb)
    assert code == 2
    assert err == ('multilb-manage: error: no [multilb] section in %s, %s; '
                   'pass the octavia.conf that octavia-api uses with '
                   '--config-file\n' % (no_multilb, confd))


def test_the_suggested_directory_works(capsys, no_multilb, tmp_path):
    confd = no_multilb.parent / 'conf.d'
    confd.mkdir()
    fixtures.write_conf(tmp_path, CLUSTERS, name='etc/conf.d/multilb.conf')
    code, _out, err = run(capsys, 'cluster', 'list', conf=no_multilb)
    assert 'pass --config-dir %s ' % confd in err
    (tmp_path / 'state.db').touch()
    code, out, err = run(capsys, 'cluster', 'list', '--config-dir',
                         str(confd), conf=no_multilb)
    assert code == manage.EXIT_ATTENTION     # (never probed)
    assert out.splitlines()[0].split()[0] == 'NAME'
