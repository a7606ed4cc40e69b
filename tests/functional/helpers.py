"""openstacksdk helpers shared by the functional tests."""

import json
import os
import subprocess
import sys

from openstack import exceptions as sdk_exc

from tests.functional import fleet as fleet_mod

ACTIVE = 'ACTIVE'


def wait_lb(conn, lb_id, status=ACTIVE, wait=60):
    return conn.load_balancer.wait_for_load_balancer(
        lb_id, status=status, failures=[], interval=0.1, wait=wait)


def make_lb(conn, name='lb', **kwargs):
    lb = conn.load_balancer.create_load_balancer(
        name=name, project_id='proj-e2e', vip_subnet_id=fleet_mod.VIP_SUBNET,
        **kwargs)
    return wait_lb(conn, lb.id)


def listeners_of(conn, lb_id):
    lbc = conn.load_balancer
    return [lbc.get_listener(li['id'])
            for li in lbc.get_load_balancer(lb_id).listeners]


def pools_of(conn, lb_id):
    lbc = conn.load_balancer
    return [lbc.get_pool(p['id'])
            for p in lbc.get_load_balancer(lb_id).pools]


def api_put(conn, fleet, path, body):
    response = conn.session.put(
        '%s/v2/lbaas/%s' % (fleet.octavia.api_url, path), json=body,
        headers={'X-Project-Id': 'proj-e2e'})
    assert response.status_code in (200, 202), response.text
    return response


def prov(getter, object_id, *args):
    return getter(object_id, *args).provisioning_status


def gone(getter, *args):
    try:
        getter(*args)
    except sdk_exc.NotFoundException:
        return True
    return False


MANAGE_ATTENTION = 3    # cluster list: some cluster needs attention


def check_manage_exit(done, code=0):
    """Assert that a finished ``multilb-manage`` exited ``code`` (a tuple:
    any of them) and wrote on stderr what that code writes: nothing for
    0, one line naming the clusters that need attention for 3."""
    codes = code if isinstance(code, tuple) else (code,)
    assert done.returncode in codes, (done.returncode, done.stderr)
    if done.returncode == MANAGE_ATTENTION:
        assert done.stderr.startswith('multilb-manage: ') and (
            'need attention: ' in done.stderr), done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr
    else:
        assert done.stderr == '', done.stderr
    return done


def manage_json(fleet, *argv, code=0):
    """Run ``multilb-manage <argv> --format json`` as an operator would,
    against the stack's octavia.conf, and return the parsed output.
    ``code``: the exit code expected (see :func:`check_manage_exit`)."""
    script = os.path.join(os.path.dirname(sys.executable), 'multilb-manage')
    command = [script] if os.path.exists(script) else [
        sys.executable, '-m', 'multilb.cmd.manage']
    done = subprocess.run(
        command + ['--config-file', fleet.octavia.conf_path] + list(argv) +
        ['--format', 'json'], capture_output=True, text=True, timeout=60)
    check_manage_exit(done, code)
    return json.loads(done.stdout)


FULL_GRAPH = [{
    'name': 'web', 'protocol': 'HTTP', 'protocol_port': 80,
    'default_pool': {
        'name': 'web-pool', 'protocol': 'HTTP',
        'lb_algorithm': 'ROUND_ROBIN',
        'members': [{'address': '192.0.2.10', 'protocol_port': 8080},
                    {'address': '192.0.2.11', 'protocol_port': 8080}],
        'healthmonitor': {'type': 'HTTP', 'delay': 5, 'timeout': 3,
                          'max_retries': 3, 'url_path': '/healthz'}},
    'l7policies': [{'name': 'no-admin', 'action': 'REJECT',
                    'rules': [{'type': 'PATH', 'compare_type': 'STARTS_WITH',
                               'value': '/admin'}]}]}]
