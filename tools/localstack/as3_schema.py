"""Validate AS3 declarations as a BIG-IP's AS3 3.56 would, without a device.

:func:`validate` returns AS3-style error strings (``"<path>: <message>"``,
empty list = valid) for the emulator (422 answers) and the F5 backend's
contract tests. It uses F5's published JSON schema (``as3/``, see the
README there) and, as AS3 does beyond plain JSON Schema:

* fills schema ``default`` values first (AS3 validates with ajv's
  ``useDefaults``; three of the published examples only validate then);
* checks the custom formats ``f5ip`` (IPv4 or IPv6, optional
  ``%<route domain>`` and ``/<mask length>``; also ``any``, ``any6`` and
  ``""``, which the schema itself uses as a default),
  ``f5bigip`` (``/Partition/path``, no whitespace) and ``f5pointer``
  (an AS3 or JSON pointer string);
* resolves the ``f5PostProcess`` ``pointer`` keyword: a reference (a
  string, or ``{"use": ...}``) must name an object of the declaration
  (relative names are looked up in the same Application, then the
  Tenant's ``Shared`` application, then ``/Common/Shared``) and that
  object must match the class the schema asks for (a Service's ``pool``
  must be a Pool, ``serverTLS`` a TLS_Server). A reference into
  ``/Common`` outside ``/Common/Shared`` is refused: there is no device
  configuration to look it up in, and the emulator must not be more
  forgiving than a device that lacks the object.

Error paths are relative to the ADC declaration, also when it comes
wrapped in an ``{"class": "AS3", "declaration": ...}`` request.

Deliberately not implemented (they need a device or are irrelevant to
the declarations multilb writes): the ``bigComponent`` existence checks
of ``{"bigip": ...}`` paths (only their format is checked), ``modules``
(AFM/ASM/APM provisioning), ``minVersion``, ``fetch`` (URL fetching),
``secret``/``longSecret`` encryption, ``expand`` (backquote
expansion), ``aliases``, ``checkResource`` and the per-class semantic
checks AS3 does in its JavaScript (e.g. duplicate virtual addresses).
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import os
import re

import jsonschema
from jsonschema import validators

SCHEMA_VERSION = '3.56.0'
SCHEMA_PATH = os.path.join(os.path.dirname(__file__), 'as3',
                           'as3-schema-%s.json' % SCHEMA_VERSION)

_BIGIP = re.compile(r'/[A-Za-z][0-9A-Za-z_.-]*(/[^/\s]+)+')
_POINTER = re.compile(r'(/?[^/\s]+)(/[^/\s]*)*|#?(/[^/\s]*)+')
_IP = re.compile(r'(?P<addr>[^%/]+)(%(?P<rd>\d{1,5}))?(/(?P<mask>\d{1,3}))?')


@functools.lru_cache(maxsize=1)
def schema():
    with open(SCHEMA_PATH, encoding='utf-8') as f:
        return json.load(f)


def is_f5ip(value):
    """AS3's ``f5ip``: address[%route-domain][/masklen]."""
    if not isinstance(value, str):
        return True
    if value in ('', 'any', 'any6'):     # '' is the schema's own default
        return True
    m = _IP.fullmatch(value)
    if not m:
        return False
    try:
        addr = ipaddress.ip_address(m.group('addr'))
    except ValueError:
        return False
    if m.group('rd') is not None and int(m.group('rd')) > 65534:
        return False
    mask = m.group('mask')
    return mask is None or int(mask) <= (32 if addr.version == 4 else 128)


def is_f5bigip(value):
    return not isinstance(value, str) or bool(_BIGIP.fullmatch(value))


def is_f5pointer(value):
    return not isinstance(value, str) or bool(_POINTER.fullmatch(value))


_FORMATS = jsonschema.FormatChecker()
_FORMATS.checks('f5ip')(is_f5ip)
_FORMATS.checks('f5bigip')(is_f5bigip)
_FORMATS.checks('f5pointer')(is_f5pointer)


def _fill_properties(validate_properties):
    def fill(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if (isinstance(sub, dict) and 'default' in sub
                        and name not in instance):
                    instance[name] = copy.deepcopy(sub['default'])
        yield from validate_properties(validator, properties, instance,
                                       schema_)
    return fill


def _ignore(validator, value, instance, schema_):
    return iter(())


@functools.lru_cache(maxsize=1)
def _validator_classes():
    base = validators.Draft7Validator
    plain = validators.extend(base, {'f5PostProcess': _ignore})
    filling = validators.extend(base, {
        'properties': _fill_properties(base.VALIDATORS['properties']),
        'f5PostProcess': _ignore})
    return plain, filling


def _root(declaration):
    """The schema part a declaration is checked against (as AS3: by class,
    so errors name the real problem, not the root ``oneOf``)."""
    kind = declaration.get('class') if isinstance(declaration, dict) else None
    if kind in ('AS3', 'ADC'):
        root = dict(schema(), **{'$ref': '#/definitions/%s' % kind})
        root.pop('oneOf')
        return root
    return schema()


def _path(parts):
    return '/' + '/'.join(str(p) for p in parts)


_MESSAGES = {
    'additionalProperties': lambda arg: 'should NOT have additional '
                                        'properties',
    'enum': lambda arg: 'should be equal to one of the allowed values',
    'const': lambda arg: 'should be equal to one of the allowed values',
    'type': lambda arg: 'should be %s' % (arg if isinstance(arg, str)
                                          else ','.join(arg)),
    'format': lambda arg: 'should match format "%s"' % arg,
    'pattern': lambda arg: 'should match pattern "%s"' % arg,
    'maxLength': lambda arg: 'should NOT be longer than %s characters' % arg,
    'minLength': lambda arg: 'should NOT be shorter than %s characters'
                             % arg,
    'maximum': lambda arg: 'should be <= %s' % arg,
    'minimum': lambda arg: 'should be >= %s' % arg,
    'anyOf': lambda arg: 'should match some schema in anyOf',
    'oneOf': lambda arg: 'should match exactly one schema in oneOf',
}


def _types(error):
    types = []
    for e in error.context:
        value = e.validator_value
        for t in [value] if isinstance(value, str) else value:
            if t not in types:
                types.append(t)
    return types


def _message(error):
    """ajv's wording; never jsonschema's own messages, which may quote the
    instance (and so a private key)."""
    kind, arg = error.validator, error.validator_value
    if kind == 'required':
        missing = [p for p in arg if p not in (error.instance or {})]
        return "should have required property '%s'" % (missing or arg)[0]
    if kind == 'f5PostProcess':
        return error.message
    if kind in ('oneOf', 'anyOf') and error.context and all(
            e.validator == 'type' for e in error.context):
        return 'should be %s' % ','.join(_types(error))
    if kind in _MESSAGES:
        return _MESSAGES[kind](arg)
    return 'should pass "%s" keyword validation' % kind


def _format(error, wrapped):
    parts = list(error.absolute_path)
    if wrapped and parts[:1] == ['declaration']:
        parts = parts[1:]       # AS3 reports paths within the declaration
    return '%s: %s' % (_path(parts), _message(error))


def _best(error):
    """The most telling error under ``error`` (as ajv's first error)."""
    best = jsonschema.exceptions.best_match([error])
    while best.validator in ('oneOf', 'anyOf') and best.context:
        telling = [e for e in best.context if e.validator != 'type']
        if not telling:
            break
        best = jsonschema.exceptions.best_match(telling)
    return best


def validate(declaration):
    """Errors of ``declaration`` (a dict, or a list of them for BIG-IQ's
    array form, each checked alone) in AS3's style; [] if valid.

    The declaration is not modified (defaults go into a copy).
    """
    if isinstance(declaration, list):       # AS3_Array / ADC_Array
        if not declaration:
            return ['/: should NOT have fewer than 1 items']
        errors = []
        for n, item in enumerate(declaration):
            errors += ['/%d%s' % (n, e) if e.startswith('/') else e
                       for e in validate(item)]
        return errors
    if not isinstance(declaration, dict):
        return ['/: should be object']
    plain, filling = _validator_classes()
    filled = copy.deepcopy(declaration)
    root = _root(filled)
    for _ in filling(root, format_checker=None).iter_errors(filled):
        pass
    wrapped = filled.get('class') == 'AS3'
    errors = [_format(_best(e), wrapped) for e in
              plain(root, format_checker=_FORMATS).iter_errors(filled)]
    errors = list(dict.fromkeys(errors))
    if errors and wrapped and isinstance(filled.get('declaration'), dict):
        # as AS3: the request, then the ADC declaration on its own
        inner = validate(filled['declaration'])
        return inner or errors
    if errors:
        return errors
    return _pointers(filled)


# -- f5PostProcess pointer ----------------------------------------------------


def _adc(declaration):
    if declaration.get('class') == 'AS3':
        return declaration.get('declaration') or {}
    return declaration


def _find(adc, parts):
    node = adc
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None


def _lookup(adc, tenant, app, ref):
    """(object, absolute path) the AS3 reference ``ref`` names, or None."""
    if ref.startswith('/'):
        parts = ref.strip('/').split('/')
        if parts[0] == 'Common' and parts[1:2] != ['Shared']:
            return None, ref
        return _find(adc, parts), ref
    parts = ref.split('/')
    if len(parts) == 2:
        candidates = [[tenant] + parts]
    elif len(parts) == 1:
        candidates = [[tenant, app, ref], [tenant, 'Shared', ref],
                      ['Common', 'Shared', ref]]
    else:
        candidates = [parts]
    for c in candidates:
        found = _find(adc, c)
        if found is not None:
            return found, _path(c)
    return None, _path(candidates[0])


def _pointer_keyword(adc, context):
    def keyword(validator, value, instance, schema_):
        if not isinstance(value, dict) or value.get('tag') != 'pointer':
            return
        if not isinstance(instance, str):
            return
        target, where = _lookup(adc, context['tenant'], context['app'],
                                instance)
        if target is None:
            yield jsonschema.ValidationError(
                'Unable to find %s' % where, validator='f5PostProcess')
            return
        want = value.get('data') or {}
        if not validators.Draft7Validator(want).is_valid(target):
            kind = (want.get('properties', {}).get('class', {}))
            kinds = kind.get('enum') or [kind.get('const')]
            yield jsonschema.ValidationError(
                '%s is not of class %s' % (where, ' or '.join(
                    str(k) for k in kinds)), validator='f5PostProcess')
    return keyword


def _deepest_pointer_error(error):
    if error.validator == 'f5PostProcess':
        return error
    for sub in error.context or ():
        found = _deepest_pointer_error(sub)
        if found is not None:
            return found
    return None


def _pointers(declaration):
    adc = _adc(declaration)
    context = {}
    cls = validators.extend(validators.Draft7Validator, {
        'f5PostProcess': _pointer_keyword(adc, context)})
    defs = schema()['definitions']
    errors = []
    for tenant, tbody in adc.items():
        if not isinstance(tbody, dict) or tbody.get('class') != 'Tenant':
            continue
        for app, abody in tbody.items():
            if not isinstance(abody, dict) or \
                    abody.get('class') != 'Application':
                continue
            context.update(tenant=tenant, app=app)
            for item, body in abody.items():
                if not isinstance(body, dict) or \
                        body.get('class') not in defs:
                    continue
                sub = dict(schema(), **{'$ref': '#/definitions/%s'
                                        % body['class']})
                sub.pop('oneOf', None)
                for error in cls(sub).iter_errors(body):
                    found = _deepest_pointer_error(error)
                    if found is None:
                        continue
                    path = [tenant, app, item] + list(found.absolute_path)
                    errors.append('%s: %s' % (_path(path), found.message))
    return errors
