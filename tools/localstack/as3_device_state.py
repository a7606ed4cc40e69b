"""What the F5 BIG-IP AS3 *emulator* (:mod:`tools.localstack.as3_device`)
remembers and how it processes declarations: tokens, tenants, the device
lock, tasks, statistics and the knobs tests turn.  No HTTP here; every
public method answers ``(status, body)`` as the device would.  See the
docstring of :mod:`tools.localstack.as3_device` for what is emulated and
the F5 behaviour each rule follows.
"""

import copy
import datetime
import secrets
import threading
import time
import uuid

from . import as3_device_stats

AS3_VERSION = '3.56.0'
AS3_RELEASE = '10'
BIGIP_VERSION = '17.1.1.3'
BIGIP_BUILD = '0.0.5'
HOST = 'localhost'
DEFAULT_TOKEN_TIMEOUT = 1200
MAX_TOKEN_TIMEOUT = 36000
MAX_TOKENS = 100
SYNC_TIMEOUT = 45.0
LOCK_MESSAGE = (f'Configuration operation in progress on device {HOST}, '
                f'please try again in 2 minutes')


def result(code, message, tenant='', run_time=0, **extra):
    return dict(code=code, message=message, tenant=tenant, host=HOST,
                runTime=run_time, **extra)


def tenants_of(adc):
    return {k: v for k, v in adc.items()
            if isinstance(v, dict) and v.get('class') == 'Tenant'}


def apps_of(tenant):
    return {k: v for k, v in tenant.items()
            if isinstance(v, dict) and v.get('class') == 'Application'}


def _has_children(tenant):
    """AS3 (checkForTenantDelete): a Tenant without any property that has
    a ``class`` is deleted."""
    return any(isinstance(v, dict) and 'class' in v
               for v in tenant.values())


def _default_validator(declaration):
    from . import as3_schema   # written by another change; imported late
    return as3_schema.validate(declaration)


class ConnectionDropped(Exception):
    """The device restarted under a synchronous request: no answer, the
    connection closes (restnoded went away)."""


class _Task:
    def __init__(self, generation, declaration):
        self.id = str(uuid.uuid4())
        self.generation = generation
        self.declaration = declaration
        self.results = [dict(code=0, message='in progress')]
        self.status = None
        self.error = None
        self.done = threading.Event()

    def body(self, declaration=True):
        body = {'id': self.id, 'results': self.results,
                'declaration': self.declaration if declaration else {},
                'selfLink': f'https://{HOST}/mgmt/shared/appsvcs/task/'
                            f'{self.id}'}
        return body

    def submitted(self):
        return {'id': self.id, 'results': [result(
            0, 'Declaration successfully submitted')], 'declaration': {},
            'selfLink': f'https://{HOST}/mgmt/shared/appsvcs/task/'
                        f'{self.id}'}


class Op:
    """One lock-holding operation: ``apply(state)`` answers ``(status,
    results, declaration)`` and changes ``state.tenants``."""

    def __init__(self, tenants, apply, declaration=None):
        self.tenants = tenants
        self.apply = apply
        self.declaration = declaration or {}


class DeviceState:
    """The device's memory and the test knobs (all thread-safe):

    * ``delay``: seconds every declaration/delete takes (device lock held);
    * ``sync_timeout``: seconds after which a synchronous POST answers
      202 and carries on in the background (AS3: 45);
    * ``tm_busy_503``: ``/mgmt/tm/...`` answers 503 while the lock is held;
    * :meth:`fail_next`, :meth:`restart_empty`, :meth:`advance_clock`,
      :meth:`set_stats`;
    * read-only: ``counters``, ``requests`` (dicts of method, path, query,
      status), :meth:`requested`.
    """

    def __init__(self, users=None, max_tokens=MAX_TOKENS, delay=0.0,
                 sync_timeout=SYNC_TIMEOUT, validator=None,
                 basic_auth=True, tm_busy_503=False, fill_defaults=None):
        self.users = dict(users or {'admin': 'admin'})
        self.max_tokens = max_tokens
        self.delay = delay
        self.sync_timeout = sync_timeout
        self.validator = validator or _default_validator
        self.fill_defaults = fill_defaults
        self.basic_auth = basic_auth
        self.tm_busy_503 = tm_busy_503
        self.failover_state = 'active'     # /mgmt/tm/cm/device
        self.device_name = 'bigip-emulator.localdomain'
        self.lock = threading.RLock()
        self.clock_offset = 0.0
        self.tokens = {}         # token -> {'user', 'start', 'timeout'}
        self.tenants = {}
        self.meta = {}           # top-level properties of the last ADC
        self.tasks = {}
        self.stats = {}          # full path -> overrides (set_stats)
        self.requests = []
        self.counters = dict(declarations_processed=0,
                             concurrent_attempts=0, lock_503=0,
                             served_503=0, delete_all=0, restarts=0,
                             logins=0)
        self.generation = 0
        self._busy = False
        self._cancel = threading.Event()
        self._fail = None

    # -- knobs ---------------------------------------------------------

    def now(self):
        return time.time() + self.clock_offset

    def advance_clock(self, seconds):
        """Move the device clock on (tokens expire without waiting)."""
        with self.lock:
            self.clock_offset += seconds

    def fail_next(self, code, message='emulated failure'):
        """The next declaration processed ends with ``code`` for every
        tenant and changes nothing (HTTP ``code`` when synchronous)."""
        with self.lock:
            self._fail = (code, message)

    def restart_empty(self):
        """An AS3 (restnoded) restart on a device that lost its config:
        every tenant gone, the lock free, a running task stays
        ``{"code": 0, "message": "task cancelled"}`` for ever.  Tokens
        (restjavad) survive."""
        with self.lock:
            self.generation += 1
            self.counters['restarts'] += 1
            self.tenants.clear()
            self.meta = {}
            self._busy = False
            self._cancel.set()
            self._cancel = threading.Event()
            for task in self.tasks.values():
                if not task.done.is_set():
                    task.results = [dict(code=0, message='task cancelled')]
                    task.done.set()   # a synchronous caller: dropped

    def set_stats(self, path, member=None, **fields):
        """Counters/state of the virtual or pool ``path`` (``/T/App/vs``,
        ``/T/App/pool``), or of the pool's ``member`` (``'ADDR:PORT'``,
        IPv6 too): bits_in, bits_out (bits), pkts_in, pkts_out,
        cur_conns, tot_conns, max_conns, availability
        ('available'|'offline'|'unknown'), enabled ('enabled'|'disabled'),
        monitor ('up'|'down'|'unchecked'; members), status_reason."""
        key = path if member is None else (path, member)
        with self.lock:
            self.stats.setdefault(key, {}).update(fields)

    def requested(self, method, path):
        """How many requests ``method path`` (no query) were received."""
        with self.lock:
            return sum(1 for r in self.requests
                       if r['method'] == method and r['path'] == path)

    @property
    def busy(self):
        return self._busy

    def log_request(self, method, path, query, status):
        with self.lock:
            self.requests.append(dict(method=method, path=path,
                                      query=query, status=status))
            if status == 503:
                self.counters['served_503'] += 1

    # -- authentication --------------------------------------------------

    def _active_tokens(self, user):
        now = self.now()
        return [t for t, v in self.tokens.items()
                if v['user'] == user and v['start'] + v['timeout'] > now]

    def login(self, body):
        body = body if isinstance(body, dict) else {}
        user, password = body.get('username'), body.get('password')
        provider = body.get('loginProviderName', 'tmos')
        if provider != 'tmos' or self.users.get(user) != password \
                or user is None:
            return 401, {'code': 401, 'message': 'Authentication failed.',
                         'errorStack': [], 'apiError': 1}
        with self.lock:
            if len(self._active_tokens(user)) >= self.max_tokens:
                uid = uuid.uuid5(uuid.NAMESPACE_OID, user)
                return 400, {'code': 400, 'message': f'user {uid} has '
                             f'reached maximum active login tokens',
                             'errorStack': [], 'apiError': 1}
            token = secrets.token_hex(13).upper()
            self.tokens[token] = dict(user=user, start=self.now(),
                                      timeout=DEFAULT_TOKEN_TIMEOUT)
            self.counters['logins'] += 1
            return 200, {'username': user, 'loginProviderName': provider,
                         'token': self._token_body(token),
                         'generation': 0, 'lastUpdateMicros': 0}

    def _token_body(self, token):
        item = self.tokens[token]
        return {'token': token, 'name': token, 'userName': item['user'],
                'timeout': item['timeout'],
                'startTime': _iso(item['start']),
                'expirationMicros': int((item['start'] + item['timeout'])
                                        * 1e6),
                'kind': 'shared:authz:tokens:authtokenitemstate',
                'selfLink': f'https://{HOST}/mgmt/shared/authz/tokens/'
                            f'{token}'}

    def user_of(self, token=None, basic=None):
        """The user a request acts as, or None (401)."""
        with self.lock:
            if token is not None:
                item = self.tokens.get(token)
                if item and item['start'] + item['timeout'] > self.now():
                    return item['user']
                return None
            if basic is not None and self.basic_auth:
                user, password = basic
                if self.users.get(user) == password:
                    return user
            return None

    def token_op(self, method, token, body):
        with self.lock:
            if token not in self.tokens:
                return 404, {'code': 404, 'message': f'Object with '
                             f'ID {token} not found', 'errorStack': []}
            if method == 'DELETE':
                answer = self._token_body(token)
                del self.tokens[token]
                return 200, answer
            if method == 'PATCH':
                timeout = (body or {}).get('timeout')
                if not isinstance(timeout, int) or isinstance(
                        timeout, bool) or not 0 < timeout <= \
                        MAX_TOKEN_TIMEOUT:
                    return 400, {'code': 400, 'message': f'timeout must be '
                                 f'an integer between 1 and '
                                 f'{MAX_TOKEN_TIMEOUT}', 'errorStack': []}
                self.tokens[token]['timeout'] = timeout
            return 200, self._token_body(token)

    # -- declarations ----------------------------------------------------

    def submit(self, op, asynchronous, invalid=None):
        """Run ``op`` under the device lock; ``invalid``: the validator's
        errors (the op is not run)."""
        with self.lock:
            task = _Task(self.generation, op.declaration)
            self.tasks[task.id] = task
            if invalid:
                body = {'code': 422, 'message': 'declaration is invalid',
                        'errors': invalid[:1], 'declarationFullId': ''}
                self._finish(task, 422, [result(**body)])
                return (202, task.submitted()) if asynchronous \
                    else (422, body)
            if self._busy:
                self.counters['concurrent_attempts'] += 1
                if not asynchronous:
                    del self.tasks[task.id]
                    self.counters['lock_503'] += 1
                    return 503, _error_body(503, LOCK_MESSAGE, op)
                # F5's mutex test: the async task reports 'Error: ...'
                self._finish(task, 503, [result(503, 'Error: ' +
                                                LOCK_MESSAGE)])
                return 202, task.submitted()
            self._busy = True
            cancel = self._cancel
        threading.Thread(target=self._run, args=(task, op, cancel),
                         name=f'as3-task-{task.id[:8]}', daemon=True).start()
        if asynchronous or not task.done.wait(self.sync_timeout):
            return 202, task.submitted()
        if task.status is None:     # restart_empty() while we waited
            raise ConnectionDropped(task.id)
        if task.error is not None:
            return task.status, task.error
        return task.status, {'results': task.results,
                             'declaration': task.declaration}

    def _finish(self, task, status, results, declaration=None, error=None):
        task.results = results
        task.status = status
        task.error = error
        if declaration is not None:
            task.declaration = declaration
        task.done.set()

    def _failed(self, task, op, run_time):
        """A :meth:`fail_next` failure: 422 as AS3 reports a tenant it
        could not deploy (in ``results``); any other code as AS3 reports
        an exception (``{code, message, host, tenant}``)."""
        (code, message), self._fail = self._fail, None
        if code == 422:
            self._finish(task, 422, [result(422, message, t, run_time)
                                     for t in (op.tenants or [''])], {})
            return
        body = _error_body(code, message, op)
        self._finish(task, code, [body], {}, error=body)

    def _run(self, task, op, cancel):
        started = time.monotonic()
        try:
            if self.delay:
                cancel.wait(self.delay)
            with self.lock:
                if task.generation != self.generation:
                    return       # restart_empty(): cancelled for ever
                run_time = int((time.monotonic() - started) * 1000)
                if self._fail is not None:
                    self._failed(task, op, run_time)
                else:
                    status, results, declaration = op.apply(self)
                    for item in results:
                        item['runTime'] = run_time
                    self._finish(task, status, results, declaration)
                self.counters['declarations_processed'] += 1
                self._busy = False   # AS3 frees the lock, then answers
        finally:
            with self.lock:
                if task.generation == self.generation:
                    self._busy = False

    def set_tenant(self, name, tenant):
        """``(result message)`` of storing (or removing: None) a tenant."""
        old = self.tenants.get(name)
        if tenant is None or not _has_children(tenant):
            if old is None:
                return 'no change'
            del self.tenants[name]
            return 'success'
        if old == tenant:
            return 'no change'
        self.tenants[name] = copy.deepcopy(tenant)
        return 'success'

    def declaration(self, names=None, empty=False):
        """The stored declaration (all tenants or ``names``); None when
        it has no tenant, unless ``empty``."""
        with self.lock:
            tenants = {n: copy.deepcopy(t) for n, t in self.tenants.items()
                       if names is None or n in names}
            if not tenants and not empty:
                return None
            adc = {'class': 'ADC', 'schemaVersion': AS3_VERSION,
                   'updateMode': 'selective'}
            adc.update(copy.deepcopy(self.meta))
            adc.setdefault('controls', {})['archiveTimestamp'] = \
                _iso(self.now())
            adc.update(tenants)
            return adc

    def task_list(self):
        with self.lock:
            return {'items': [t.body() for t in self.tasks.values()]}

    def task(self, task_id):
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                return 404, {'code': 404, 'message': f'No record found with '
                             f'ID {task_id}', 'errorStack': []}
            return 200, task.body()

    # -- iControl REST statistics -----------------------------------------

    def tm_stats(self, kind, name=None, members=False):
        with self.lock:
            return as3_device_stats.answer(self.tenants, self.stats, kind,
                                           name, members)


def _error_body(code, message, op):
    """AS3's answer to an exception in a declaration (declarationHandler):
    ``tenant`` is a list, and only there when the request named one."""
    body = {'code': code, 'message': message, 'host': HOST}
    if len(op.tenants) == 1:
        body['tenant'] = list(op.tenants)
    if isinstance(op.declaration, dict) and op.declaration.get('id'):
        body['declarationId'] = op.declaration['id']
    return body


def _iso(seconds):
    return datetime.datetime.fromtimestamp(
        seconds, datetime.timezone.utc).isoformat(timespec='milliseconds')
