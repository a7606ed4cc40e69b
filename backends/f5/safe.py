"""Checks on tenant-supplied strings before they enter an AS3 declaration.

Declarations are built as dicts with fixed keys and serialised by
``json``, so no string can change the JSON structure. What remains
dangerous is what AS3 or the BIG-IP interprets inside a string:

* backquotes: AS3 expands `` `...` `` sequences in monitor send/receive
  strings (``expand``), including `` `=/Tenant/App/obj/prop` `` pointers;
  refused in every tenant string, wherever it goes;
* ``tcl:`` and ``[...]``/``$``: an ``httpRedirect`` location is a Tcl
  expression when it starts with ``tcl:``; redirect URLs are refused if
  they carry Tcl syntax;
* control characters (CR/LF would split a monitor request into headers).

Everything raises :class:`BackendRejected` naming the field.
"""

from __future__ import annotations

import re

from backends import exceptions

_CONTROL = re.compile(r'[\x00-\x1f\x7f]')
TOKEN = re.compile(r"[!#$%&'*+.^_|~0-9A-Za-z-]+")     # RFC 7230, no backquote
COOKIE_NAME = re.compile(r'[0-9A-Za-z.~#$%^&*_-]{1,64}')  # AS3 cookieName
_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#@!&'()*+,;=%-]+")
_PATH = re.compile(r"/[A-Za-z0-9._~:/?#@!&'()*+,;=%-]*")
_HOST = re.compile(r'[A-Za-z0-9.-]{1,253}')
_METHOD = re.compile(r'[A-Z]{1,16}')


def reject(message, *args):
    raise exceptions.BackendRejected('f5: ' + message % args)


def text(value, what):
    """A free-text value (an L7 rule value): no backquote, no control
    characters, at most 4096 characters."""
    if not isinstance(value, str) or not value:
        reject('%s is missing', what)
    if '`' in value or _CONTROL.search(value) or len(value) > 4096:
        reject('%s holds a backquote or control characters (not allowed)',
               what)
    return value


def token(value, what):
    if not isinstance(value, str) or not TOKEN.fullmatch(value):
        reject('%s %r is not an HTTP token', what, value)
    return value


def cookie_name(value, what):
    if not isinstance(value, str) or not COOKIE_NAME.fullmatch(value):
        reject('%s %r: AS3 cookie names are 1-64 of [0-9A-Za-z.~#$%%^&*_-]',
               what, value)
    return value


def url(value, what):
    """An absolute http(s) URL without Tcl or AS3 syntax."""
    if not isinstance(value, str) or not _URL.fullmatch(value):
        reject('%s %r is not an http(s) URL of plain characters', what,
               value)
    return value


def path(value, what):
    if not isinstance(value, str) or not _PATH.fullmatch(value):
        reject('%s %r is not a URL path of plain characters', what, value)
    return value


def host(value, what):
    if not isinstance(value, str) or not _HOST.fullmatch(value):
        reject('%s %r is not a host name', what, value)
    return value


def method(value, what):
    if not isinstance(value, str) or not _METHOD.fullmatch(value):
        reject('%s %r is not an HTTP method', what, value)
    return value


class about:
    """Context manager: a BackendRejected raised inside names
    ``object_id`` as the refused object (the innermost one wins), so
    multilb applies the rest of the load balancer without it."""

    def __init__(self, object_id):
        self.object_id = object_id

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, exceptions.BackendRejected) and \
                not exc.object_ids and self.object_id:
            exc.object_ids = (self.object_id,)
        return False
