#!/usr/bin/env python3
"""One multilb provider agent process, for the agent benchmarks.

Not a benchmark itself: ``agent_takeover.py`` starts two of these and
signals one; ``idle_store_load.py`` runs :func:`run_agent` in a process of
its own to count its store calls. By hand, from the repository root::

    python benchmarks/agent_process.py --config-file multilb.conf

It runs ``multilb.agent.run(exit_event)``, the function that
octavia-driver-agent calls in the provider agent process it forks, with
the ``[multilb]`` and ``[cluster:*]`` sections of ``--config-file``.
SIGTERM sets ``exit_event``, as octavia-driver-agent's SIGTERM handler
does, so the agent stops as it does when octavia-driver-agent is stopped
(workers stopped, locks released, agent group left). SIGKILL is a crash.

No octavia-driver-agent runs, so the agent's line to Octavia is
:class:`NullOctavia` instead of ``multilb.octavia.OctaviaClient``: it knows
no load balancer and takes every status and statistics update. An agent
over idle ``fake`` clusters has nothing to report anyway.

The log (INFO, on stderr) has multilb's lines, among them ``multilb agent
<id> started`` and ``Cluster <name> is now served by agent <id>``.
"""

import argparse
import logging
import os
import signal
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from oslo_config import cfg  # noqa: E402

from multilb import agent as agent_mod  # noqa: E402
from multilb import octavia as octavia_mod  # noqa: E402


class NullOctavia:
    """Stands in for ``multilb.octavia.OctaviaClient``: no load balancer
    exists, every update is taken."""

    def get_loadbalancer(self, lb_id):
        return None

    def update_status(self, status):
        return None

    def update_statistics(self, statistics):
        return None


def write_config(path, store_url, coord_url, clusters):
    """A multilb configuration of ``fake`` clusters (names) over the
    given store and coordination URLs, written to ``path``."""
    lines = ['[multilb]',
             'enabled_clusters = %s' % ', '.join(clusters),
             'store_url = %s' % store_url,
             'coordination_url = %s' % coord_url]
    for name in clusters:
        lines += ['[cluster:%s]' % name, 'backend = fake']
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def setup_logging():
    """INFO and above on stderr, with millisecond timestamps."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format='%(asctime)s.%(msecs)03d %(process)d %(levelname)s '
               '%(name)s %(message)s', datefmt='%Y-%m-%d %H:%M:%S')


def load_config(config_file):
    """Load ``config_file`` into ``cfg.CONF``, where ``multilb.agent.run``
    reads its configuration (once per process)."""
    cfg.CONF(['--config-file', config_file], project='multilb-bench')


def run_agent(exit_event):
    """Run the provider agent until ``exit_event`` is set."""
    octavia_mod.OctaviaClient = NullOctavia
    agent_mod.run(exit_event)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config-file', required=True,
                        help='file with [multilb] and [cluster:*] sections')
    args = parser.parse_args(argv)
    setup_logging()
    exit_event = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: exit_event.set())
    load_config(args.config_file)
    run_agent(exit_event)
    logging.getLogger(__name__).info('agent process %d exits', os.getpid())
    return 0


if __name__ == '__main__':
    sys.exit(main())
