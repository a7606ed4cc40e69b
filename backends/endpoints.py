"""Appliance endpoint URLs in cluster options: checks and the addresses
they name. Pure, no I/O (the API process calls these)."""

from __future__ import annotations

import ipaddress
import urllib.parse

from multilb import exceptions
from multilb import redact


def require(endpoints, example):
    """:raises ConfigError: ``endpoints`` is empty (``example`` says what
    to list)."""
    if not endpoints:
        raise exceptions.ConfigError('endpoints: missing; list %s' % example)


def check_http(endpoint, schemes='an https:// or http://'):
    """:raises ConfigError: ``endpoint`` is not an http(s) URL with a host
    (the message shows it without credentials)."""
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.scheme not in ('http', 'https') or not parsed.hostname:
        raise exceptions.ConfigError('endpoints: %r is not %s URL' % (
            redact.url(endpoint), schemes))
    return parsed


def ip_ports(endpoints):
    """``{(ip, port)}`` of the endpoints given as IP literals (default
    ports 443 / 80); host names and unix sockets are left out (host
    names are ``[multilb] management_cidrs``' business)."""
    found = set()
    for endpoint in endpoints or ():
        parsed = urllib.parse.urlsplit(endpoint)
        try:
            ip = ipaddress.ip_address(parsed.hostname or '')
        except ValueError:
            continue
        found.add((str(ip),
                   parsed.port or (443 if parsed.scheme == 'https' else 80)))
    return found
