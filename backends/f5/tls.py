"""TERMINATED_HTTPS listeners -> AS3 TLS_Server + Certificate objects. Pure.

The default certificate (``default_tls_container_data``) comes first in
the TLS_Server's ``certificates`` (BIG-IP's default for clients without
a matching SNI name); each SNI certificate follows with ``matchToSNI``
set to its ``primary_cn``. ``tls_versions`` switch ``tls1_*Enabled``.
Private keys and passphrases go into the returned objects and nowhere
else; nothing here logs. Refused: client_authentication (mutual TLS),
cipher strings outside ``[A-Za-z0-9:+!_.-]``.
"""

from __future__ import annotations

import base64
import re

from backends.f5 import names
from backends.f5 import safe

# AS3's encoding of a clear-text secret: JOSE header {"alg":"dir","enc":"none"}
_CLEAR = 'eyJhbGciOiJkaXIiLCJlbmMiOiJub25lIn0'
_VERSIONS = {'TLSv1': 'tls1_0Enabled', 'TLSv1.1': 'tls1_1Enabled',
             'TLSv1.2': 'tls1_2Enabled', 'TLSv1.3': 'tls1_3Enabled'}
_CIPHERS = re.compile(r'[A-Za-z0-9:+!_.-]{1,2048}')


def check(listener):
    if listener.get('client_authentication') not in (None, 'NONE'):
        safe.reject('listener client_authentication (mutual TLS) is not '
                    'supported')
    tls = listener.get('default_tls_container_data') or {}
    if not (tls.get('certificate') and tls.get('private_key')):
        safe.reject('TERMINATED_HTTPS listener %s has no certificate and '
                    'key', listener.get('listener_id'))
    for sni in listener.get('sni_container_data') or []:
        if not (sni.get('certificate') and sni.get('private_key')):
            safe.reject('SNI certificate of listener %s lacks certificate '
                        'or key', listener.get('listener_id'))
        if sni.get('primary_cn'):
            cn = sni['primary_cn']
            safe.host(cn[2:] if cn.startswith('*.') else cn,
                      'SNI primary_cn')
    versions = listener.get('tls_versions') or []
    unknown = [v for v in versions if v not in _VERSIONS]
    if unknown:
        safe.reject('tls_versions %s not supported; supported: %s',
                    ', '.join(map(str, unknown)), ', '.join(_VERSIONS))
    ciphers = listener.get('tls_ciphers')
    if ciphers and not _CIPHERS.fullmatch(ciphers):
        safe.reject('tls_ciphers holds characters outside [A-Za-z0-9:+!_.-]')


def _certificate(data):
    cert = {'class': 'Certificate', 'certificate': data['certificate'],
            'privateKey': data['private_key']}
    chain = data.get('intermediates') or []
    if chain:
        cert['chainCA'] = '\n'.join(p.strip('\n') for p in chain) + '\n'
    if data.get('passphrase'):
        cert['passphrase'] = {
            'ciphertext': base64.b64encode(
                data['passphrase'].encode()).decode(),
            'protected': _CLEAR}
    return cert


def objects(listener):
    """``{name: object}``: the TLS_Server and its Certificates."""
    lid = listener['listener_id']
    default = names.obj('cert', lid, 'listener')
    out = {default: _certificate(listener['default_tls_container_data'])}
    entries = [{'certificate': default}]
    for n, sni in enumerate(listener.get('sni_container_data') or []):
        name = '%s_sni%d' % (default, n)
        out[name] = _certificate(sni)
        entry = {'certificate': name}
        if sni.get('primary_cn'):
            entry['matchToSNI'] = sni['primary_cn']
        entries.append(entry)
    server = {'class': 'TLS_Server', 'certificates': entries}
    versions = listener.get('tls_versions') or []
    if versions:
        for version, flag in _VERSIONS.items():
            server[flag] = version in versions
    if listener.get('tls_ciphers'):
        server['ciphers'] = listener['tls_ciphers']
    out[names.obj('tls', lid, 'listener')] = server
    return out
