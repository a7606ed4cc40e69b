"""``multilb-manage agents list``: which provider agent drives which cluster.

::

    multilb-manage ... agents list

Live agents come from the agents' group (read without joining it); what
each drives comes from the clusters' ownership claims in the state store
(``owner/<cluster>``, :mod:`multilb.fencing`). A claim by an agent that is
no longer in the group is shown as such: its clusters get a new owner
once its lock expires. Each live agent also shows the ``enabled_clusters``
and version it joined with; when they differ (a rolling configuration
change, a forgotten host) the text says which agent lacks which
cluster the others have.
"""

from __future__ import annotations

from multilb.cmd import format as fmt
from multilb import fencing


def agents_list(ctx, args):
    # tooz (and eventlet, through futurist) only for this command: imported
    # here, after manage.main silenced libraries' deprecation notices
    from multilb import coordination
    view = coordination.live_agents(ctx.rt.conf.multilb.coordination_url,
                                    with_capabilities=True)
    live = set(view)
    owners = fencing.owners(ctx.state.kv)
    driving = {}
    for cluster, claim in owners.items():
        driving.setdefault(claim.get('agent'), []).append((cluster, claim))
    rows = []
    for agent in sorted(live | set(driving)):
        claims = sorted(driving.get(agent, []))
        caps = view.get(agent) or {}
        rows.append({
            'agent': agent, 'live': agent in live,
            'clusters': [c for c, _claim in claims],
            'since': {c: fmt.iso(claim.get('at')) for c, claim in claims},
            'enabled_clusters': caps.get('enabled'),
            'version': caps.get('version')})
    wanted = set(ctx.rt.clusters.clusters)
    undriven = sorted(wanted - {c for c, claim in owners.items()
                                if claim.get('agent') in live})
    differ = _differences(view)
    data = {'agents': rows, 'clusters_without_live_agent': undriven,
            'enabled_clusters_differ': bool(differ)}
    text = fmt.table(['agent', 'live', 'clusters'], [
        (r['agent'], 'yes' if r['live'] else 'no (its clusters go to '
         'another agent once its lock expires)',
         ', '.join(r['clusters']) or '-') for r in rows])
    if undriven:
        text += '\nclusters no live agent drives yet: %s\n' % ', '.join(
            undriven)
    if differ:
        text += ('\nthe live agents have different [multilb] '
                 'enabled_clusters (each cluster is driven only by agents '
                 'that have it):\n' + ''.join(
                     '  %s: %s\n' % item for item in differ))
    return data, text


def _differences(view):
    """``[(agent, text)]``: what each live agent lacks compared with the
    union of the live agents' ``enabled_clusters``; empty when
    they all agree (or none announced a list)."""
    lists = {agent: set(caps.get('enabled') or ())
             for agent, caps in view.items() if caps}
    if len(set(map(frozenset, lists.values()))) <= 1:
        return []
    every = set().union(*lists.values())
    return [(agent, 'lacks %s' % ', '.join(sorted(every - have)))
            for agent, have in sorted(lists.items()) if every - have]


def add_parsers(objects, add_format):
    """Register ``agents list`` (manage.build_parser)."""
    agents = objects.add_parser('agents', help='provider agents')
    actions = agents.add_subparsers(dest='action', required=True,
                                    metavar='{list}')
    sub = actions.add_parser('list', help='live provider agents and the '
                             'clusters each drives')
    add_format(sub)
    sub.set_defaults(func=agents_list)
