"""``multilb-status upgrade check``: OpenStack's upgrade check for multilb.

    multilb-status --config-file /etc/octavia/octavia.conf upgrade check

Reads the configuration Octavia reads (``octavia.conf`` and its
``--config-dir``, found as oslo.config finds Octavia's when no file is
given) and runs the checks of :mod:`multilb.checks`. oslo.upgradecheck
prints a table, one row per check with one line per problem, and exits
0 (every check passed), 1 (warnings only) or 2 (a failure); 255 if the
checks themselves crashed. Run it after changing the configuration and
before restarting ``octavia-api`` and ``octavia-driver-agent``.
"""

from __future__ import annotations

import inspect
import logging
import sys
import warnings

from oslo_config import cfg
from oslo_upgradecheck import upgradecheck

from multilb.conf import clusters as cluster_conf
from multilb import exceptions
from multilb import runtime


def _result(findings, checks):
    if not findings:
        return upgradecheck.Result(upgradecheck.Code.SUCCESS)
    codes = {checks.FAILURE: upgradecheck.Code.FAILURE,
             checks.WARNING: upgradecheck.Code.WARNING}
    # oslo.upgradecheck wraps the details into one paragraph: number them
    return upgradecheck.Result(
        max(codes[f.severity] for f in findings), ' '.join(
            '(%d) %s: %s' % (i, f.severity.upper(), f.text)
            for i, f in enumerate(findings, 1)))


class Checks(upgradecheck.UpgradeCommands):
    """multilb's checks (:data:`multilb.checks.CHECKS`), over the
    ConfigOpts oslo.upgradecheck parses."""

    def __init__(self, conf, checks):
        self.conf = conf
        self.checks = checks
        self._upgrade_checks = tuple(
            (title, (Checks._run, {'check': check}))
            for title, check in checks.CHECKS)

    def _run(self, check):
        if 'rt' not in inspect.signature(check).parameters:
            return _result(check(self.conf), self.checks)
        try:
            rt = runtime.Runtime(self.conf)
        except exceptions.ConfigError as exc:
            return _result([self.checks.Finding(self.checks.FAILURE,
                                                str(exc))], self.checks)
        return _result(check(rt), self.checks)


def main(argv=None):
    # What the checks find is in the table; the services' own log lines
    # (a cluster section not used, ...) and libraries' deprecation notices
    # (eventlet, imported by tooz) would repeat it out of order on stderr.
    logging.getLogger().addHandler(logging.NullHandler())
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        from multilb import checks
        conf = cfg.ConfigOpts()
        cluster_conf.register_defaults(conf)
        return upgradecheck.main(
            conf, project='octavia', upgrade_command=Checks(conf, checks),
            argv=sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
