"""Octavia L7 policies -> one AS3 Endpoint_Policy per listener. Pure.

Octavia evaluates a listener's enabled policies by position and applies
the first whose enabled rules all match; a policy without enabled rules
never matches. AS3's ``first-match`` strategy with one rule per policy,
its conditions ANDed, is the same. Mapping::

  REJECT              action drop (request)   ~ resets instead of 403
  REDIRECT_TO_URL     action httpRedirect location (+ code)
  REDIRECT_TO_POOL    action forward select pool {use: pool_<id>}
  HOST_NAME           condition httpHost host
  PATH                condition httpUri path
  FILE_TYPE           condition httpUri extension
  HEADER              condition httpHeader name + all
  COOKIE              condition httpCookie name + all
  EQUAL_TO/STARTS_WITH/ENDS_WITH/CONTAINS -> equals/starts-with/
  ends-with/contains; invert -> does-not-...

Refused: REGEX (BIG-IP policies have no regular expressions),
REDIRECT_PREFIX (needs a Tcl expression in the location), SSL_* rule
types. Rule values stay plain strings in a ``values`` list: AS3 reads
no pointer there, so ``/Common/...`` in a value is just text.
"""

from __future__ import annotations

from octavia_lib.common import constants as c

from backends.f5 import names
from backends.f5 import safe

ACTIONS = frozenset((c.L7POLICY_ACTION_REJECT,
                     c.L7POLICY_ACTION_REDIRECT_TO_URL,
                     c.L7POLICY_ACTION_REDIRECT_TO_POOL))
RULE_TYPES = frozenset((c.L7RULE_TYPE_HOST_NAME, c.L7RULE_TYPE_PATH,
                        c.L7RULE_TYPE_FILE_TYPE, c.L7RULE_TYPE_HEADER,
                        c.L7RULE_TYPE_COOKIE))
_OPERAND = {
    c.L7RULE_COMPARE_TYPE_EQUAL_TO: 'equals',
    c.L7RULE_COMPARE_TYPE_STARTS_WITH: 'starts-with',
    c.L7RULE_COMPARE_TYPE_ENDS_WITH: 'ends-with',
    c.L7RULE_COMPARE_TYPE_CONTAINS: 'contains',
}
_NEGATED = {'equals': 'does-not-equal', 'starts-with': 'does-not-start-with',
            'ends-with': 'does-not-end-with', 'contains': 'does-not-contain'}
_REDIRECT_CODES = frozenset((301, 302, 303, 307, 308))


def _enabled(obj):
    return obj.get('admin_state_up', True) is not False


def check_policy(policy, pool_ids):
    action = policy.get('action')
    if action not in ACTIONS:
        safe.reject('L7 policy action %s is not supported; supported: %s',
                    action, ', '.join(sorted(ACTIONS)))
    if action == c.L7POLICY_ACTION_REDIRECT_TO_URL:
        safe.url(policy.get('redirect_url'), 'redirect_url')
    if action == c.L7POLICY_ACTION_REDIRECT_TO_POOL and \
            policy.get('redirect_pool_id') not in pool_ids:
        safe.reject('L7 policy %s redirects to unknown pool %s',
                    policy.get('l7policy_id'), policy.get('redirect_pool_id'))
    code = policy.get('redirect_http_code')
    if code is not None and code not in _REDIRECT_CODES:
        safe.reject('redirect_http_code %r is not a redirect code', code)
    for rule in policy.get('rules') or []:
        with safe.about(rule.get('l7rule_id')):
            check_rule(rule)


def check_rule(rule):
    kind, compare = rule.get('type'), rule.get('compare_type')
    if kind not in RULE_TYPES:
        safe.reject('L7 rule type %s is not supported; supported: %s',
                    kind, ', '.join(sorted(RULE_TYPES)))
    if compare not in _OPERAND:
        safe.reject('L7 rule compare_type %s is not supported (BIG-IP '
                    'policies have no regular expressions); supported: %s',
                    compare, ', '.join(sorted(_OPERAND)))
    safe.text(rule.get('value'), 'L7 rule value')
    if kind == c.L7RULE_TYPE_HEADER:
        safe.token(rule.get('key'), 'L7 rule header name')
    if kind == c.L7RULE_TYPE_COOKIE:
        safe.token(rule.get('key'), 'L7 rule cookie name')


def _condition(rule):
    operand = _OPERAND[rule['compare_type']]
    if rule.get('invert'):
        operand = _NEGATED[operand]
    match = {'operand': operand, 'values': [rule['value']]}
    kind = rule['type']
    if kind == c.L7RULE_TYPE_HOST_NAME:
        return {'type': 'httpHost', 'event': 'request', 'host': match}
    if kind == c.L7RULE_TYPE_PATH:
        return {'type': 'httpUri', 'event': 'request', 'path': match}
    if kind == c.L7RULE_TYPE_FILE_TYPE:
        return {'type': 'httpUri', 'event': 'request', 'extension': match}
    if kind == c.L7RULE_TYPE_HEADER:
        return {'type': 'httpHeader', 'event': 'request',
                'name': rule['key'], 'all': match}
    return {'type': 'httpCookie', 'event': 'request', 'name': rule['key'],
            'all': match}


def _action(policy):
    action = policy['action']
    if action == c.L7POLICY_ACTION_REJECT:
        return {'type': 'drop', 'event': 'request'}
    if action == c.L7POLICY_ACTION_REDIRECT_TO_URL:
        out = {'type': 'httpRedirect', 'event': 'request',
               'location': policy['redirect_url']}
        if policy.get('redirect_http_code'):
            out['code'] = policy['redirect_http_code']
        return out
    return {'type': 'forward', 'event': 'request', 'select': {
        'pool': {'use': names.obj('pool', policy['redirect_pool_id'],
                                  'pool')}}}


def endpoint_policy(listener):
    """The Endpoint_Policy of ``listener``, or None if no policy applies."""
    rules = []
    for policy in sorted(listener.get('l7policies') or [],
                         key=lambda p: p.get('position') or 0):
        if not _enabled(policy):
            continue
        conditions = [_condition(r) for r in policy.get('rules') or []
                      if _enabled(r)]
        if not conditions:
            continue
        rules.append({'name': names.obj('rule', policy['l7policy_id'],
                                        'l7policy'),
                      'conditions': conditions,
                      'actions': [_action(policy)]})
    if not rules:
        return None
    return {'class': 'Endpoint_Policy', 'strategy': 'first-match',
            'rules': rules}
