"""The AS3 operations of the F5 BIG-IP AS3 *emulator*
(:mod:`tools.localstack.as3_device`): each function answers ``(status,
body)`` for one request, validating first and then running the change
under the device lock (:meth:`DeviceState.submit`).

Rules taken from F5's AS3 (f5-appsvcs-extension, declarationHandler):
tenants named in the URL that the body lacks answer 404 "specified
Tenant(s) '...' not found in declaration" before the lock is taken; a
Tenant without any property that has a ``class`` is deleted;
``updateMode: complete`` removes the tenants the declaration does not
name; per-application declarations are always ``selective``.
"""

import copy
import uuid

from .as3_device_state import (AS3_VERSION, Op, apps_of, result,
                               tenants_of)

META = ('schemaVersion', 'id', 'label', 'remark', 'controls',
        'updateMode')


def _not_found(message):
    return 404, {'code': 404, 'message': message, 'errorStack': []}


def _bad(message):
    return 400, {'code': 400, 'message': message, 'errorStack': []}


def _validate(state, declaration):
    errors = list(state.validator(declaration) or [])
    return errors


def declare(state, body, url_tenants, asynchronous):
    """``POST /mgmt/shared/appsvcs/declare[/T1,T2]``."""
    if isinstance(body, list):
        return _bad('emulator: arrays of declarations are not emulated')
    if not isinstance(body, dict):
        return 422, {'code': 422, 'message': 'declaration is invalid',
                     'errors': ['body is not a JSON object']}
    errors = _validate(state, body)
    if errors:
        return state.submit(Op([], None, body), asynchronous, errors)
    is_as3 = body.get('class') == 'AS3'
    adc = body.get('declaration') if is_as3 else body
    action = body.get('action', 'deploy') if is_as3 else 'deploy'
    if action not in ('deploy', 'dry-run'):
        return _bad(f'emulator: action {action!r} is not emulated')
    if not isinstance(adc, dict):
        return state.submit(Op([], None, body), asynchronous,
                            ['/declaration: not an ADC declaration'])
    body_tenants = tenants_of(adc)
    missing = [t for t in url_tenants or () if t not in body_tenants]
    if missing:
        return _not_found(f"specified Tenant(s) '{','.join(missing)}' "
                          f"not found in declaration")
    for name in url_tenants or ():
        if name in adc and name not in body_tenants:
            return 409, {'code': 409, 'message': f"specified Tenant name "
                         f"'{name}' matches non-Tenant property"}
    selected = list(url_tenants or body_tenants)
    echo = _filled(state, adc)
    complete = adc.get('updateMode') == 'complete' and not url_tenants

    def apply(st):
        results = []
        for name in selected:
            if action == 'dry-run':
                results.append(result(200, 'success', name, dryRun=True))
                continue
            tenant = _filled(st, body_tenants[name], name)
            results.append(result(200, st.set_tenant(name, tenant), name))
        if complete and action == 'deploy':
            for name in [n for n in st.tenants if n not in body_tenants]:
                results.append(result(200, st.set_tenant(name, None), name))
        if action == 'deploy':
            st.meta = {k: copy.deepcopy(adc[k]) for k in META if k in adc}
        # AS3 answers the stored declaration, cut to the tenants affected
        answer = st.declaration([r['tenant'] for r in results], empty=True)
        return 200, results or [result(200, 'no change')], answer

    return state.submit(Op(selected, apply, echo), asynchronous)


def _filled(state, obj, tenant=None):
    """``obj`` with AS3's defaults when the schema helper fills them
    (``fill_defaults(declaration)``), else as posted."""
    fill = getattr(state, 'fill_defaults', None)
    if fill is None:
        return copy.deepcopy(obj)
    if tenant is None:
        return fill(copy.deepcopy(obj))
    adc = {'class': 'ADC', 'schemaVersion': AS3_VERSION,
           tenant: copy.deepcopy(obj)}
    return fill(adc)[tenant]


def delete(state, url_tenants, asynchronous):
    """``DELETE /mgmt/shared/appsvcs/declare[/T1,T2]``; without tenants
    every tenant goes (recorded in ``counters['delete_all']``)."""
    if not url_tenants:
        with state.lock:
            state.counters['delete_all'] += 1

    def apply(st):
        names = list(url_tenants or st.tenants)
        results = [result(200, st.set_tenant(n, None), n) for n in names]
        return 200, results or [result(200, 'no change')], {}

    return state.submit(Op(list(url_tenants or ()), apply), asynchronous)


def get_declaration(state, url_tenants):
    """``GET /mgmt/shared/appsvcs/declare[/T1,T2]``."""
    with state.lock:
        stored = set(state.tenants)
    if not url_tenants:
        adc = state.declaration()
        return (204, None) if adc is None else (200, adc)
    if not stored:
        return _not_found('declaration in specified path not found')
    missing = [t for t in url_tenants if t not in stored]
    if missing:
        return _not_found(f"specified Tenant(s) '{','.join(missing)}' "
                          f"not found in declaration")
    return 200, state.declaration(url_tenants)


def _per_tenant(tenant, body, apps):
    """AS3's convertToPerTenant: what a per-application body is
    validated as (the tenant's other applications are not part of it)."""
    adc = {'class': 'ADC', 'id': f'autogen_{uuid.uuid4()}',
           tenant: {'class': 'Tenant', **copy.deepcopy(apps)}}
    if 'schemaVersion' in body:
        adc['schemaVersion'] = body['schemaVersion']
    if isinstance(body.get('controls'), dict):
        adc[tenant]['controls'] = copy.deepcopy(body['controls'])
    return adc


def _per_app(state, tenant, names):
    """AS3's convertToPerApp: ``{schemaVersion, <app>: {...}}``."""
    apps = apps_of(state.tenants.get(tenant) or {})
    answer = {'schemaVersion': state.meta.get('schemaVersion',
                                              AS3_VERSION)}
    answer.update({n: copy.deepcopy(apps[n]) for n in names if n in apps})
    return answer


def app_post(state, tenant, body, asynchronous):
    """``POST /mgmt/shared/appsvcs/declare/<tenant>/applications``: the
    body holds Applications (and schemaVersion, controls), no Tenant; the
    tenant is created if missing, its other applications stay."""
    if not isinstance(body, dict) or body.get('class') in ('ADC', 'AS3'):
        return 422, {'code': 422, 'message': 'declaration is invalid',
                     'errors': ['a per-application declaration holds '
                                'Applications, no ADC']}
    apps = apps_of(body)
    full = _per_tenant(tenant, body, apps)
    errors = _validate(state, full) or ([] if apps else [
        '/: a per-application declaration needs an Application'])
    if errors:
        return state.submit(Op([tenant], None, body), asynchronous, errors)

    def apply(st):
        merged = copy.deepcopy(st.tenants.get(tenant)
                               or {'class': 'Tenant'})
        merged.update(_filled(st, {'class': 'Tenant', **apps}, tenant))
        message = st.set_tenant(tenant, merged)
        return 200, [result(200, message, tenant)], \
            _per_app(st, tenant, list(apps))

    return state.submit(Op([tenant], apply, copy.deepcopy(body)),
                        asynchronous)


def _app_missing(tenant, app):
    """AS3's verifyResourcesExist answers."""
    return _not_found(f"specified Application '{app}' not found in "
                      f"'{tenant}'" if app else
                      f"specified tenant '{tenant}' not found in "
                      f"declaration")


def app_get(state, tenant, app=None):
    """``GET .../declare/<tenant>/applications[/<app>]``:
    ``{schemaVersion, <app>: {...}}``."""
    with state.lock:
        if tenant not in state.tenants:
            return _app_missing(tenant, None)
        apps = apps_of(state.tenants[tenant])
        if app is not None and app not in apps:
            return _app_missing(tenant, app)
        return 200, _per_app(state, tenant, [app] if app else list(apps))


def app_delete(state, tenant, app, asynchronous):
    """``DELETE .../declare/<tenant>/applications/<app>``; the tenant
    goes with its last application (checkForTenantDelete)."""
    with state.lock:
        if tenant not in state.tenants:
            return _app_missing(tenant, None)
        if app not in apps_of(state.tenants[tenant]):
            return _app_missing(tenant, app)

    def apply(st):
        current = copy.deepcopy(st.tenants.get(tenant) or {})
        if app not in apps_of(current):
            status, body = _app_missing(tenant, app)
            return status, [result(404, body['message'], tenant)], {}
        del current[app]
        return 200, [result(200, st.set_tenant(tenant, current),
                            tenant)], {}

    return state.submit(Op([tenant], apply), asynchronous)
