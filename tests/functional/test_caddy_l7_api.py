"""L7 policies end to end: created and changed one API call at a time
through the real Octavia API, applied by multilb's caddy backend to a
cluster of two real Caddy nodes, and checked with real HTTP requests on
real member servers (which member answered, redirects, refusals).
"""

import http.client

import pytest

from tests.functional import caddy_lab as lab
from tests.functional import fleet as fleet_mod
from tests.functional.helpers import api_put, prov, wait_lb
from tools.localstack import ports

TRIES = 6       # requests per check: connections spread over both nodes


@pytest.fixture(scope='module')
def l7_fleet(tmp_path_factory, member_lab):
    workdir = tmp_path_factory.mktemp('caddyl7', numbered=True)
    with lab.caddy_fleet(workdir, {'l7': 2}, members=('a', 'b'),
                         lab=member_lab) as (
            fleet, _nodes, (member_a, member_b)):
        yield fleet, member_a, member_b


class Site:
    """One load balancer under test and how to reach it."""

    def __init__(self, fleet, lb, listener, pool_b, port, members):
        self.fleet, self.lb, self.listener = fleet, lb, listener
        self.pool_b, self.port, self.members = pool_b, port, members

    @property
    def lbc(self):
        return self.fleet.connection().load_balancer

    def settle(self):
        """Wait until the load balancer is ACTIVE again after a change."""
        wait_lb(self.fleet.connection(), self.lb.id)

    def get(self, path, headers=None):
        """(status, Location, body) of one GET sent with the raw ``path``."""
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=5)
        try:
            conn.request('GET', path, headers=headers or {})
            response = conn.getresponse()
            return (response.status, response.getheader('Location'),
                    response.read().decode())
        finally:
            conn.close()

    def answered_by(self, path, headers=None):
        """The member names that answered TRIES GETs of ``path``, checked
        against the members' own counters."""
        for member in self.members:
            member.reset_counts()
        names = set()
        for _ in range(TRIES):
            status, _location, body = self.get(path, headers)
            assert status == 200, (path, status, body)
            names.add(body.strip().split('=', 1)[1])
        assert {m.name for m in self.members if m.hits} == names
        assert sum(m.hits for m in self.members) == TRIES
        return names


@pytest.fixture(scope='module')
def site(l7_fleet):
    """LB + HTTP listener whose default pool holds member a, a second pool
    holding member b, and a REDIRECT_TO_POOL policy: PATH STARTS_WITH /api
    -> the second pool. Built one API call at a time."""
    fleet, member_a, member_b = l7_fleet
    conn = fleet.connection()
    lbc = conn.load_balancer
    port = ports.free_port()
    lb = lbc.create_load_balancer(
        name='l7-lb', project_id='proj-l7',
        vip_subnet_id=fleet_mod.VIP_SUBNET,
        listeners=[{
            'name': 'web', 'protocol': 'HTTP', 'protocol_port': port,
            'default_pool': {
                'name': 'pool-a', 'protocol': 'HTTP',
                'lb_algorithm': 'ROUND_ROBIN',
                'members': [{'address': member_a.address,
                             'protocol_port': member_a.port}]}}])
    lb = wait_lb(conn, lb.id)
    listener = lbc.get_listener(lb.listeners[0]['id'])
    site = Site(fleet, lb, listener, None, port, (member_a, member_b))
    try:
        site.pool_b = lbc.create_pool(
            loadbalancer_id=lb.id, name='pool-b', protocol='HTTP',
            lb_algorithm='ROUND_ROBIN')
        site.settle()
        lbc.create_member(site.pool_b, address=member_b.address,
                          protocol_port=member_b.port)
        site.settle()
        policy = lbc.create_l7_policy(
            listener_id=listener.id, name='api-to-b',
            action='REDIRECT_TO_POOL', redirect_pool_id=site.pool_b.id)
        site.settle()
        # A policy without rules matches nothing (as in Octavia).
        assert site.answered_by('/api/x') == {'a'}
        lbc.create_l7_rule(policy, type='PATH', compare_type='STARTS_WITH',
                           value='/api')
        site.settle()
        yield site
    finally:
        lbc.delete_load_balancer(lb.id, cascade=True)
        fleet_mod.wait_for(
            lambda: lb.id not in {x.id for x in lbc.load_balancers()},
            what='l7 LB deleted')


def test_path_prefix_sends_requests_to_the_second_pool_only(site):
    assert site.answered_by('/api/x') == {'b'}
    assert site.answered_by('/api') == {'b'}
    assert site.answered_by('/api/x?debug=1') == {'b'}
    assert site.answered_by('/other') == {'a'}
    assert site.answered_by('/') == {'a'}
    assert site.answered_by('/v1/api') == {'a'}     # a prefix, not a search
    assert site.answered_by('/API/x') == {'a'}      # case-sensitive
    # Member b gets the path as the client sent it (no rewriting).
    assert site.answered_by('/api/deep/path') == {'b'}
    assert site.members[1].paths == ['/api/deep/path'] * TRIES


def test_redirect_at_position_1_wins_while_its_header_rule_matches(site):
    lbc = site.lbc
    policy = lbc.create_l7_policy(
        listener_id=site.listener.id, name='maintenance', position=1,
        action='REDIRECT_PREFIX',
        redirect_prefix='https://maintenance.example.test')
    site.settle()
    try:
        lbc.create_l7_rule(policy, type='HEADER', key='X-Maintenance',
                           compare_type='EQUAL_TO', value='on')
        site.settle()
        for member in site.members:
            member.reset_counts()
        on = {'X-Maintenance': 'on'}
        for _ in range(TRIES):
            assert site.get('/api/x?q=1', on) == (
                302, 'https://maintenance.example.test/api/x?q=1', '')
            assert site.get('/other', on)[:2] == (
                302, 'https://maintenance.example.test/other')
        assert [m.hits for m in site.members] == [0, 0]
        # The rule compares the whole value; without it the pools serve.
        assert site.answered_by('/api/x', {'X-Maintenance': 'only'}) == {'b'}
        assert site.answered_by('/api/x', {'X-Maintenance': 'onx'}) == {'b'}
        assert site.answered_by('/api/x') == {'b'}
        assert site.answered_by('/other') == {'a'}

        # Changed in place into a REDIRECT_TO_URL with another code
        # (plain REST: openstacksdk's L7Policy has no redirect_http_code).
        api_put(site.fleet.connection(), site.fleet,
                'l7policies/%s' % policy.id, {'l7policy': {
                    'action': 'REDIRECT_TO_URL',
                    'redirect_url': 'https://status.example.test/',
                    'redirect_http_code': 301}})
        site.settle()
        for _ in range(TRIES):
            assert site.get('/api/x', on)[:2] == (
                301, 'https://status.example.test/')
        assert site.answered_by('/api/x') == {'b'}
    finally:
        lbc.delete_l7_policy(policy)
        site.settle()
    assert site.answered_by('/api/x', {'X-Maintenance': 'on'}) == {'b'}


@pytest.mark.parametrize('value,matching,others', [
    ('/a.*|^/', ['/a.*|^/'],
     ['/', '/a', '/abc', '/a.*', '/a.x|^/', '/aZZ|^/', '/x/a.*|^/']),
    # ('?' would end the path: it starts the query string)
    ('/(x)+$[y]{2}\\d+', ['/(x)+$[y]{2}\\d+'],
     ['/x', '/xx$yy', '/xx$yy7', '/(x)+$[y]{2}', '/(x)+$[y]{2}\\d',
      '/(x)+$[y]{2}\\dd', '/(x)+$[y]{2}\\d+x']),
])
def test_rule_values_full_of_regex_metacharacters_match_only_themselves(
        site, value, matching, others):
    lbc = site.lbc
    policy = lbc.create_l7_policy(
        listener_id=site.listener.id, name='hostile', position=1,
        action='REJECT')
    site.settle()
    try:
        lbc.create_l7_rule(policy, type='PATH', compare_type='EQUAL_TO',
                           value=value)
        site.settle()
        for path in matching:
            assert [site.get(path)[0] for _ in range(TRIES)] == \
                [403] * TRIES, path
        for path in others:
            assert site.answered_by(path) == {'a'}, path
    finally:
        lbc.delete_l7_policy(policy)
        site.settle()
    for path in matching:
        assert site.answered_by(path) == {'a'}


def test_a_rule_caddy_refuses_is_error_alone_and_later_changes_apply(site):
    """Caddy compiles regexes with RE2, which has no look-ahead: the node
    refuses the rule. That rule goes to ERROR, the load balancer stays
    ACTIVE without it, later changes apply, and fixing it brings it in."""
    lbc = site.lbc
    blocked = lbc.create_l7_policy(
        listener_id=site.listener.id, name='block', position=1,
        action='REJECT')
    site.settle()
    moved = None
    try:
        rule = lbc.create_l7_rule(blocked, type='PATH', compare_type='REGEX',
                                  value='^/(?!api)blocked')
        site.settle()
        assert prov(lbc.get_l7_rule, rule, blocked) == 'ERROR'
        assert prov(lbc.get_l7_policy, blocked) == 'ACTIVE'
        # a policy without its rule matches nothing (as in Octavia)
        assert site.answered_by('/blocked') == {'a'}

        # Before, every later change sent the refused rule again and
        # failed with it.
        moved = lbc.create_l7_policy(
            listener_id=site.listener.id, name='moved', position=2,
            action='REDIRECT_TO_URL', redirect_url='https://new.example.test/')
        site.settle()
        lbc.create_l7_rule(moved, type='PATH', compare_type='EQUAL_TO',
                           value='/moved')
        site.settle()
        assert prov(lbc.get_l7_policy, moved) == 'ACTIVE'
        assert site.get('/moved')[:2] == (302, 'https://new.example.test/')
        assert prov(lbc.get_l7_rule, rule, blocked) == 'ERROR'
        assert site.answered_by('/api/x') == {'b'}

        # (plain REST: openstacksdk's update_l7_rule cannot pass 'value')
        api_put(site.fleet.connection(), site.fleet,
                'l7policies/%s/rules/%s' % (blocked.id, rule.id),
                {'rule': {'value': '^/blocked'}})
        site.settle()
        assert prov(lbc.get_l7_rule, rule, blocked) == 'ACTIVE'
        assert [site.get('/blocked/x')[0] for _ in range(TRIES)] == \
            [403] * TRIES
        assert site.answered_by('/other') == {'a'}
    finally:
        for policy in (blocked, moved):
            if policy is not None:
                lbc.delete_l7_policy(policy)
                site.settle()
    assert site.answered_by('/blocked/x') == {'a'}
