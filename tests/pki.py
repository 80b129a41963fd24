"""A certificate authority of the tests' own: a CA, a certificate for a server on
127.0.0.1 and one for a client, as PEM files (what a deployment with an internal CA
hands its services and users)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca: str  # the CA's certificate: what a client trusts
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: str, stem: str, cert: x509.Certificate, key=None) -> tuple[str, str]:
    cert_path = os.path.join(directory, f"{stem}.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    key_path = os.path.join(directory, f"{stem}.key")
    if key is not None:
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ))
    return cert_path, key_path


def make_pki(directory: str) -> Pki:
    """Create the CA and its two certificates under ``directory``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, public_key, issuer_key, *extensions) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(_name("ngshare-gql test CA"))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    ca = certificate(
        "ngshare-gql test CA", ca_key.public_key(), ca_key,
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
    )
    ca_public = ca_key.public_key()
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = certificate(
        "exchange", server_key.public_key(), ca_key,
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), False),
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = certificate(
        "a notebook server", client_key.public_key(), ca_key,
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), False),
    )
    ca_path, _ = _write(directory, "ca", ca)
    server_cert, server_key_path = _write(directory, "server", server, server_key)
    client_cert, client_key_path = _write(directory, "client", client, client_key)
    return Pki(ca_path, server_cert, server_key_path, client_cert, client_key_path)
