"""``multilb-manage agents list`` (multilb/cmd/agents.py) over a running
agent with real tooz ``file://`` coordination in tmp_path."""

import json

from multilb import agent as agent_mod
from multilb.cmd import manage
from multilb import coordination
from multilb import fencing
from tests.unit import fixtures as fx


def test_agents_list_shows_who_drives_what(tmp_path, monkeypatch, capsys):
    rt = fx.use_runtime(monkeypatch, fx.make_runtime(
        tmp_path, {'alpha': {}, 'beta': {}}, options={'poll_interval': 0.05}))
    url = rt.conf.multilb.coordination_url
    fx.create_agent_group(url)
    agent = agent_mod.Agent(rt, fx.FakeOctavia(), coordination.Coordinator(
        url, member_id=b'agent-a'))
    agent.start()
    try:
        agent.rebalance()
        assert sorted(agent.workers) == ['alpha', 'beta']
        # beta's claim now names an agent that left the group
        fencing.Ownership(rt.state.kv, 'beta', 'agent-gone').claim()
        conf = ['--config-file', str(tmp_path / 'multilb.conf')]

        assert manage.main(conf + ['agents', 'list', '--format',
                                   'json']) == 0
        data = json.loads(capsys.readouterr().out)
        assert [(a['agent'], a['live'], a['clusters'])
                for a in data['agents']] == [
            ('agent-a', True, ['alpha']), ('agent-gone', False, ['beta'])]
        assert data['clusters_without_live_agent'] == ['beta']

        assert manage.main(conf + ['agents', 'list']) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].split() == ['AGENT', 'LIVE', 'CLUSTERS']
        assert out[1].split() == ['agent-a', 'yes', 'alpha']
        assert out[2].startswith('agent-gone  no (its clusters go to')
        assert out[-1] == 'clusters no live agent drives yet: beta'
        # the command did not join the group: no cluster went to it
        assert coordination.live_agents(url) == {'agent-a'}
    finally:
        agent.stop()


def test_agents_list_names_the_agent_whose_cluster_list_differs(
        tmp_path, capsys):
    rt = fx.make_runtime(tmp_path, {'alpha': {}, 'beta': {}})
    rt.state.cluster_runtime()              # the agents' store exists
    conf = tmp_path / 'multilb.conf'
    url = rt.conf.multilb.coordination_url
    fx.create_agent_group(url)
    old = coordination.Coordinator(
        url, member_id=b'agent-old', capabilities=coordination.capabilities(
            ['alpha'], ['alpha'], '1.0'))
    new = coordination.Coordinator(
        url, member_id=b'agent-new', capabilities=coordination.capabilities(
            ['alpha', 'beta'], ['alpha', 'beta'], '1.1'))
    old.start()
    new.start()
    try:
        argv = ['--config-file', str(conf), 'agents', 'list']
        assert manage.main(argv + ['-f', 'json']) == 0
        data = json.loads(capsys.readouterr().out)
        assert manage.main(argv) == 0
        text = capsys.readouterr().out
    finally:
        old.stop()
        new.stop()
    assert {a['agent']: (a['enabled_clusters'], a['version'])
            for a in data['agents']} == {
        'agent-new': (['alpha', 'beta'], '1.1'),
        'agent-old': (['alpha'], '1.0')}
    assert data['enabled_clusters_differ'] is True
    assert ('the live agents have different [multilb] enabled_clusters '
            '(each cluster is driven only by agents that have it):\n'
            '  agent-old: lacks beta\n') in text
