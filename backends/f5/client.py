"""The REST API of ONE F5 BIG-IP device with AS3; knows nothing of Octavia.

Facts of BIG-IP / AS3 this relies on (F5's AS3 docs and
f5-appsvcs-extension ``src/lib``; SAP's octavia-f5-provider-driver):

* ``POST /mgmt/shared/authn/login`` (``loginProviderName: tmos``) gives a
  token (``X-F5-Auth-Token``) valid 1200 s; ``PATCH
  /mgmt/shared/authz/tokens/<token>`` ``{"timeout": N}`` extends it up to
  36000 s. A user holds at most 100 live tokens (the 101st login answers
  400), so one token is kept and reused; it is renewed before it expires
  and after any 401. The password is sent in the login body only.
* AS3 holds **one lock for the whole device**: a declaration sent while
  another runs answers HTTP 503 "Configuration operation in progress on
  device ..., please try again in 2 minutes" without ``Retry-After`` (an
  async one: a task whose result has code 503). :func:`classify` marks
  that *busy*: it never counts against the cluster's circuit breaker.
* Any POST/DELETE of a declaration may answer 202 (``?async=true``
  always does; a synchronous one after 45 s): the outcome is polled at
  ``GET /mgmt/shared/appsvcs/task/<id>``, whose HTTP status is 200 while
  ``results[].code`` says: 0 running (and, after an AS3 restart, "task
  cancelled" with code 0 for ever: final), 200 done, 422 invalid, 503
  busy, anything else failed.
* Per-application API (AS3 3.50+): ``POST
  /mgmt/shared/appsvcs/declare/<tenant>/applications`` adds or replaces
  the Applications in the body and leaves the tenant's others alone (the
  tenant is created when missing); ``DELETE
  .../declare/<tenant>/applications/<app>`` removes one (the tenant goes
  with its last). ``DELETE /mgmt/shared/appsvcs/declare`` without a
  tenant removes **every** tenant: this client cannot send it.
* iControl REST (``/mgmt/tm``) may answer 503 while a declaration runs.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse

from backends import exceptions

LOG = logging.getLogger(__name__)

LOGIN = '/mgmt/shared/authn/login'
TOKENS = '/mgmt/shared/authz/tokens/'
DECLARE = '/mgmt/shared/appsvcs/declare'
TASK = '/mgmt/shared/appsvcs/task/'
INFO = '/mgmt/shared/appsvcs/info'
SYS_VERSION = '/mgmt/tm/sys/version'
DEVICES = '/mgmt/tm/cm/device'
LTM = '/mgmt/tm/ltm'

TOKEN_TIMEOUT = 36000          # the longest BIG-IP grants
TOKEN_MARGIN = 60              # renew that many seconds before expiry
BUSY_TEXT = 'Configuration operation in progress'
CANCELLED = 'task cancelled'
_NAME = re.compile(r'[A-Za-z][0-9A-Za-z_.-]*')


def classify(error):
    """What a device's error answer means (a transport ``classify``).

    AS3's device lock (503 ``Configuration operation in progress``) and
    an iControl REST 503 while a declaration runs are *busy*: still
    :class:`BackendUnavailable` (retried), marked ``busy = True`` and
    ``cluster_failure = False`` (the device answered). Every other error
    is returned unchanged.
    """
    if (isinstance(error, exceptions.BackendUnavailable)
            and getattr(error, 'status', None) == 503
            and _is_busy(error)):
        error.busy = True
        error.cluster_failure = False
    return error


def _is_busy(error):
    body = getattr(error, 'body', None)
    text = body.get('message', '') if isinstance(body, dict) else str(body)
    return BUSY_TEXT in (text or '') or '/mgmt/tm/' in str(error)


def busy_error(where, text):
    error = exceptions.BackendUnavailable('%s: device busy: %s' % (
        where, text))
    error.status, error.body, error.retry_after = 503, None, None
    error.busy = True
    error.cluster_failure = False
    return error


def _check_name(kind, name):
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError('invalid AS3 %s name %r' % (kind, name))
    return name


def _first_error(results, body):
    """The most telling text of a failed task or answer."""
    for result in results:
        errors = result.get('errors') or []
        if errors:
            return '%s: %s' % (result.get('message', ''), errors[0])
        if result.get('code') not in (0, 200, None):
            return str(result.get('message', ''))
    if isinstance(body, dict):
        errors = body.get('errors') or []
        return '%s%s' % (body.get('message', ''),
                         ': %s' % errors[0] if errors else '')
    return str(body)


class AS3Client:
    """One device, through a :class:`backends.transport.Transport` whose
    endpoint is ``https://HOST[:PORT]`` (the breaker and ``classify`` are
    the transport's).

    :param username, password: a BIG-IP user with the Administrator role
        (AS3 needs it); never logged.
    :param task_timeout: seconds a declaration may run before
        :meth:`declare_applications` / :meth:`delete_application` give up
        waiting (the device carries on; a later change catches up).
    :param poll_interval: seconds between two reads of a task.
    """

    def __init__(self, transport, username, password, task_timeout=600.0,
                 poll_interval=1.0, sleep=time.sleep, clock=time.monotonic):
        self.transport = transport
        self._username = username
        self._password = password
        self.task_timeout = task_timeout
        self.poll_interval = poll_interval
        self._sleep = sleep
        self._clock = clock
        self._token = None
        self._expires = 0.0
        # one token for every thread of the backend (a user holds 100)
        self._login_lock = threading.Lock()

    @property
    def name(self):
        return self.transport.name

    def __repr__(self):
        return '<AS3Client %s>' % self.transport.name

    # -- authentication ----------------------------------------------------

    def _login(self):
        _status, body = self.transport.request('POST', LOGIN, json={
            'username': self._username, 'password': self._password,
            'loginProviderName': 'tmos'})
        token = ((body or {}).get('token') or {}) if isinstance(
            body, dict) else {}
        value = token.get('token')
        if not value:
            raise exceptions.BackendUnavailable(
                '%s: login answered no token' % self.name)
        timeout = int(token.get('timeout') or 1200)
        try:
            self.transport.request(
                'PATCH', TOKENS + urllib.parse.quote(value, safe=''),
                json={'timeout': TOKEN_TIMEOUT},
                headers={'X-F5-Auth-Token': value})
            timeout = TOKEN_TIMEOUT
        except exceptions.BackendRejected as exc:
            LOG.debug('%s: token not extended: %s', self.name, exc)
        self._token = value
        self._expires = self._clock() + timeout - TOKEN_MARGIN
        LOG.debug('%s: logged in (token valid %d s)', self.name, timeout)

    def logout(self):
        """Delete this client's token on the device (a user holds at most
        100: an agent that restarts must not leave its own behind).
        Never raises."""
        with self._login_lock:
            token, self._token = self._token, None
        if token is None:
            return
        try:
            self.transport.request(
                'DELETE', TOKENS + urllib.parse.quote(token, safe=''),
                headers={'X-F5-Auth-Token': token})
        except exceptions.BackendError as exc:
            LOG.debug('%s: token not deleted: %s', self.name, exc)

    def _headers(self):
        with self._login_lock:
            if self._token is None or self._clock() >= self._expires:
                self._login()
            return {'X-F5-Auth-Token': self._token}

    def request(self, method, path, json=None):
        """One authenticated request; logs in again once on a 401."""
        for attempt in (1, 2):
            headers = self._headers()
            try:
                return self.transport.request(method, path, json=json,
                                              headers=headers)
            except exceptions.BackendRejected as exc:
                if getattr(exc, 'status', None) != 401 or attempt == 2:
                    raise
                with self._login_lock:
                    if self._token == headers['X-F5-Auth-Token']:
                        self._token = None
        raise AssertionError('unreachable')  # pragma: no cover

    # -- reads ---------------------------------------------------------------

    def as3_info(self):
        """``{'version': '3.56.0', ...}`` of the AS3 package."""
        return self.request('GET', INFO)[1] or {}

    def bigip_version(self):
        """The BIG-IP release (``'17.1.1.3'``), or None if unreadable."""
        body = self.request('GET', SYS_VERSION)[1] or {}
        for entry in (body.get('entries') or {}).values():
            found = ((entry.get('nestedStats') or {}).get('entries') or {})
            version = (found.get('Version') or {}).get('description')
            if version:
                return version
        return None

    def failover_state(self):
        """This device's ``failoverState`` (``active``, ``standby``...)
        from ``/mgmt/tm/cm/device``; None when it does not say."""
        body = self.request('GET', DEVICES)[1] or {}
        for item in body.get('items') or []:
            if str(item.get('selfDevice')).lower() == 'true':
                return item.get('failoverState')
        return None

    def declared(self):
        """``{tenant: {application name: Application}}`` of every tenant
        the device holds (``GET /declare``; 204 when it holds none)."""
        status, body = self.request('GET', DECLARE)
        if status == 204 or not isinstance(body, dict):
            return {}
        found = {}
        for tenant, value in body.items():
            if isinstance(value, dict) and value.get('class') == 'Tenant':
                found[tenant] = {
                    app: obj for app, obj in value.items()
                    if isinstance(obj, dict)
                    and obj.get('class') == 'Application'}
        return found

    def stats(self, kind, name=None, members=False):
        """``{full path: {stat: value}}`` of ``GET /mgmt/tm/ltm/<kind>
        [/<~T~A~name>][/members]/stats`` (counters ``value``, states
        ``description``)."""
        path = '%s/%s' % (LTM, kind)
        if name:
            path += '/' + name.replace('/', '~')
        if members:
            path += '/members'
        body = self.request('GET', path + '/stats')[1] or {}
        found = {}
        for url, entry in (body.get('entries') or {}).items():
            fields = {}
            for key, value in ((entry.get('nestedStats') or {}).get(
                    'entries') or {}).items():
                if isinstance(value, dict):
                    fields[key] = value.get('value',
                                            value.get('description'))
            found[fields.get('tmName') or url] = fields
        return found

    # -- declarations --------------------------------------------------------

    def declare_applications(self, tenant, applications, schema_version):
        """Add or replace ``applications`` ({name: Application}) in
        ``tenant``, leaving its other applications alone.

        :raises BackendRejected: AS3 refused the declaration (422 and
            other 4xx); the text carries AS3's first error.
        :raises BackendUnavailable: busy (``busy = True``), failed, or
            still running after ``task_timeout``.
        """
        body = {'schemaVersion': schema_version}
        for name, application in applications.items():
            body[_check_name('application', name)] = application
        self._run('POST', '%s/%s/applications?async=true' % (
            DECLARE, _check_name('tenant', tenant)), body)

    def applications(self, tenant):
        """Names of the applications ``tenant`` holds (none if it does
        not exist)."""
        try:
            body = self.request('GET', '%s/%s/applications' % (
                DECLARE, _check_name('tenant', tenant)))[1]
        except exceptions.BackendRejected as exc:
            if getattr(exc, 'status', None) == 404:
                return set()
            raise
        return {name for name, value in (body or {}).items()
                if isinstance(value, dict)
                and value.get('class') == 'Application'}

    def delete_tenant(self, tenant):
        """Remove one tenant and everything in it (one declaration); one
        that is not there is a success. Never every tenant: the name is
        required."""
        path = '%s/%s?async=true' % (DECLARE, _check_name('tenant', tenant))
        try:
            self._run('DELETE', path, None)
        except exceptions.BackendRejected as exc:
            if getattr(exc, 'status', None) != 404:
                raise

    def delete_application(self, tenant, application):
        """Remove one application (the tenant goes with its last); one
        that is not there is a success."""
        path = '%s/%s/applications/%s?async=true' % (
            DECLARE, _check_name('tenant', tenant),
            _check_name('application', application))
        try:
            self._run('DELETE', path, None)
        except exceptions.BackendRejected as exc:
            if getattr(exc, 'status', None) != 404:
                raise

    def _run(self, method, path, body):
        where = '%s %s %s' % (self.name, method, path.split('?')[0])
        status, answer = self.request(method, path, json=body)
        if status != 202:
            self._outcome(where, (answer or {}).get('results') or [],
                          answer)
            return
        task = (answer or {}).get('id')
        if not task:
            raise exceptions.BackendUnavailable(
                '%s: HTTP 202 without a task id' % where)
        deadline = self._clock() + self.task_timeout
        while True:
            results = self._task(task)
            if results is not None:
                self._outcome(where, results, None)
                return
            if self._clock() >= deadline:
                raise exceptions.BackendUnavailable(
                    '%s: task %s still running after %.0f s' % (
                        where, task, self.task_timeout))
            self._sleep(self.poll_interval)

    def _task(self, task):
        """The results of a finished task, None while it runs."""
        _status, body = self.request('GET', TASK + urllib.parse.quote(
            task, safe=''))
        results = (body or {}).get('results') or []
        messages = [str(r.get('message', '')) for r in results]
        if any(CANCELLED in m for m in messages):
            return [{'code': 500, 'message': CANCELLED}]
        if not results or any(r.get('code') in (0, None) for r in results):
            return None
        return results

    def _outcome(self, where, results, body):
        codes = {r.get('code') for r in results}
        if codes <= {200}:
            return
        text = _first_error(results, body)
        if 503 in codes or BUSY_TEXT in text:
            raise busy_error(where, text)
        if codes & {400, 404, 409, 422}:
            error = exceptions.BackendRejected('%s: %s' % (where, text))
            error.status = 422 if 422 in codes else min(
                codes & {400, 404, 409})
            raise error
        raise exceptions.BackendUnavailable('%s: %s' % (where, text))
