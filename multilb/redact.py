"""Credentials out of everything multilb shows: one helper for URLs.

A URL in the configuration (an appliance endpoint, the state store) may
carry credentials: user info (``http://user:pw@node:2019``, or a token as
the user name) and password-like query values (``?token=...``). Whatever
multilb writes (logs, exception texts, state store records, multilb-manage
output) names such a URL through

* :func:`url`: the URL with its user info and password-like query values
  replaced by ``***`` (everything else kept, for diagnosis);
* :func:`endpoint`: ``scheme://host:port`` only (how nodes are named);
* :func:`location`: ``scheme://host:port/path`` of a URL someone else
  wrote (a redirect target);

and removes the secrets of a URL from text it did not build (an error of a
library or an appliance that echoes the request) with :func:`scrub` over
:func:`secrets_of`. :class:`LogScrubber` does the same for the records of
a library's logger (urllib3 logs request paths, query strings included).
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import typing
import urllib.parse

MASK = '***'

# Query (or fragment) parameter names whose value is a credential: any
# name with one of these words (split at non-alphanumerics), or one of the
# names below.
SECRET_WORDS = frozenset((
    'token', 'password', 'passwd', 'pass', 'pwd', 'secret', 'apikey',
    'auth', 'authorization', 'signature', 'sig', 'credential',
    'credentials', 'jwt', 'bearer', 'session', 'sessionid'))
SECRET_NAMES = frozenset(('key', 'api_key', 'x_api_key', 'access_key',
                          'private_key'))

# scheme://USERINFO@ (user info ends at the last "@" of the authority)
_USERINFO = re.compile(r'^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#]*)@')
_PARAM = re.compile(r'([?&;#])([^=&;#]*)=([^&;#]*)')


def secret_name(name: str) -> bool:
    """True if a query parameter called ``name`` holds a credential."""
    low = urllib.parse.unquote_plus(name).strip().lower()
    if low.replace('-', '_') in SECRET_NAMES:
        return True
    return any(word in SECRET_WORDS for word in re.split(r'[^a-z0-9]+', low))


def url(value: typing.Any) -> str:
    """``value`` with user info and password-like query values as ``***``.

    ``http://u:pw@h:1/p?token=t&a=b`` becomes
    ``http://***@h:1/p?token=***&a=b``; a URL without secrets is returned
    unchanged.
    """
    text = _USERINFO.sub(r'\1' + MASK + '@', str(value), count=1)

    def hide(match):
        if not secret_name(match.group(2)):
            return match.group(0)
        return '%s%s=%s' % (match.group(1), match.group(2), MASK)

    cut = _parameters(text)
    return text[:cut] + _PARAM.sub(hide, text[cut:])


def _parameters(text):
    """Where the query (or, without one, the fragment) of ``text``
    starts: its "?" or "#" (``len(text)`` if it has neither)."""
    found = [i for i in (text.find('?'), text.find('#')) if i >= 0]
    return min(found) if found else len(text)


def endpoint(value: typing.Any) -> str:
    """``scheme://host[:port]`` of a URL: no user info, path or query."""
    try:
        parts = urllib.parse.urlsplit(str(value))
    except ValueError:
        return '<unparsable URL>'
    try:
        host = parts.hostname or ''
        port = parts.port
    except ValueError:   # a port that is not a number: keep it as written
        hostport = parts.netloc.rpartition('@')[2]
        return '%s://%s' % (parts.scheme, hostport)
    if ':' in host:
        host = '[%s]' % host
    return '%s://%s%s' % (parts.scheme, host, ':%d' % port if port else '')


def location(value: typing.Any) -> str:
    """``scheme://host[:port]/path`` of a URL someone else wrote (a
    redirect target): no user info, query or fragment, whatever they
    hold."""
    text = str(value)
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        return '<unparsable URL>'
    if parts.scheme and parts.netloc:
        return endpoint(text) + parts.path
    return parts.path or '?'


def secrets_of(value: typing.Any) -> list[str]:
    """The strings of URL ``value`` that must never be shown, longest
    first: its user info (as written, decoded, and as the Basic
    authorization a client sends for it), password (or user name, when
    it has no password) and password-like query values."""
    value = str(value)
    found = set()
    match = _USERINFO.match(value)
    if match:
        userinfo = match.group(2)
        user, colon, password = userinfo.partition(':')
        found |= {userinfo, urllib.parse.unquote(userinfo)}
        found |= {password, urllib.parse.unquote(password)} if password \
            else {user, urllib.parse.unquote(user)}
        plain = '%s:%s' % (urllib.parse.unquote(user),
                           urllib.parse.unquote(password))
        found.add(base64.b64encode(plain.encode('latin1', 'replace'))
                  .decode())
    for match in _PARAM.finditer(value[_parameters(value):]):
        if secret_name(match.group(2)):
            raw = match.group(3)
            found |= {raw, urllib.parse.unquote_plus(raw),
                      urllib.parse.unquote(raw)}
    return sorted((s for s in found if s), key=len, reverse=True)


def scrub(text: typing.Any, secrets: typing.Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***``."""
    text = str(text)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class LogScrubber(logging.Filter):
    """A filter for a library's logger that scrubs the secrets of every
    URL :meth:`protect` was given from its records' messages."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def protect(self, value: typing.Any) -> list[str]:
        """Scrub the secrets of URL ``value`` from now on; returns them."""
        secrets = secrets_of(value)
        if secrets:
            with self._lock:
                merged = set(self._secrets) | set(secrets)
                self._secrets = tuple(sorted(merged, key=len, reverse=True))
        return secrets

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        if secrets:
            try:
                message = record.getMessage()
            except Exception:  # noqa: B902 - logging reports it later
                return True
            clean = scrub(message, secrets)
            if clean != message:
                record.msg, record.args = clean, None
        return True

    def install(self, *logger_names: str) -> LogScrubber:
        for name in logger_names:
            logging.getLogger(name).addFilter(self)
        return self
