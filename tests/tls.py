"""Throwaway TLS material for tests: a self-signed certificate in the shape
Octavia hands a provider (``*_tls_container_data``)."""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
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
