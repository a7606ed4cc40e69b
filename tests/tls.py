"""Throwaway TLS material for tests: a self-signed certificate in the shape
Octavia hands a provider (``*_tls_container_data``)."""

import base64
import datetime
import ipaddress
import os
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID


def self_signed(common_name):
    """``{certificate, private_key, intermediates, primary_cn, passphrase}``
    for a fresh EC key and a one-day certificate naming ``common_name``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(common_name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return {
        'certificate': cert.public_bytes(serialization.Encoding.PEM).decode(),
        'private_key': key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode(),
        'intermediates': [], 'primary_cn': common_name, 'passphrase': None}


def store_local(storage_path, tls):
    """Write ``tls`` where Octavia's ``local_cert_manager`` reads it
    (``<storage_path>/<ref>.crt`` and ``.key``, mode 0600, plus ``.int``
    for intermediates); returns the new ``<ref>``."""
    ref = str(uuid.uuid4())
    parts = {'crt': tls['certificate'], 'key': tls['private_key']}
    if tls.get('intermediates'):
        parts['int'] = ''.join(tls['intermediates'])
    for suffix, text in parts.items():
        path = os.path.join(storage_path, '%s.%s' % (ref, suffix))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(text)
    return ref


def key_markers(tls):
    """Texts that betray ``tls``'s private key wherever it is written: each
    base64 line of its PKCS#8 and of its traditional PEM encoding (Octavia
    re-encodes keys to the latter before handing them to a provider), the
    DER of both in one base64 run, and the private value in hex."""
    key = serialization.load_pem_private_key(
        tls['private_key'].encode(), password=None)
    markers = set()
    for fmt in (serialization.PrivateFormat.PKCS8,
                serialization.PrivateFormat.TraditionalOpenSSL):
        pem = key.private_bytes(serialization.Encoding.PEM, fmt,
                                serialization.NoEncryption()).decode()
        markers.update(line for line in pem.splitlines()
                       if line and not line.startswith('-----'))
        der = key.private_bytes(serialization.Encoding.DER, fmt,
                                serialization.NoEncryption())
        markers.add(base64.b64encode(der).decode())
    markers.add('%x' % key.private_numbers().private_value)
    # A last base64 line can be a few characters only: too common a text.
    return sorted(m for m in markers if len(m) >= 32)


def _signed(common_name, key, issuer=None, issuer_key=None, ca=False,
            usage=None, ip=None):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                              critical=True))
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]),
                                        critical=False)
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def write_pki(directory, server_ip='127.0.0.1'):
    """A private CA and, signed by it, a server certificate for
    ``server_ip`` and a client certificate; plus a client certificate of
    another CA (``rogue``). Written as PEM files into ``directory``;
    returns ``{'ca': path, 'server': (cert, key), 'client': (cert, key),
    'rogue': (cert, key)}``."""
    def write(name, cert, key):
        paths = (os.path.join(directory, name + '.pem'),
                 os.path.join(directory, name + '.key'))
        with open(paths[0], 'wb') as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(paths[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as f:
            f.write(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        return paths

    found = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _signed('multilb test admin CA', ca_key, ca=True)
    found['ca'] = write('ca', ca, ca_key)[0]
    key = ec.generate_private_key(ec.SECP256R1())
    found['server'] = write('server', _signed(
        'caddy admin', key, ca, ca_key,
        usage=ExtendedKeyUsageOID.SERVER_AUTH, ip=server_ip), key)
    key = ec.generate_private_key(ec.SECP256R1())
    found['client'] = write('client', _signed(
        'multilb', key, ca, ca_key,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH), key)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _signed('another CA', other_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    found['rogue'] = write('rogue', _signed(
        'multilb', key, other, other_key,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH), key)
    return found
