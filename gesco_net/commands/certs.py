"""``gesco certs DIR``: a self-signed CA and a server certificate for TLS between the services.

Writes, in ``DIR`` (created; existing files are kept unless ``--force``):

* ``ca.pem``: the CA certificate; give it to clients (``GESCO_SENDER_CHANNEL_TLS_CA``,
  ``GESCO_CHANNEL_RECEIVER_TLS_CA``, ``gesco send --ca``, browsers);
* ``ca-key.pem``: the CA's private key (mode 0600; keep it offline, it signs certificates);
* ``server.pem`` and ``server-key.pem`` (mode 0600): the certificate every service
  presents (``GESCO_*_TLS_CERT`` / ``GESCO_*_TLS_KEY``), signed by the CA, valid for the
  names ``--san`` lists (default: localhost, 127.0.0.1, ::1 and the docker-compose
  service names sender, channel, receiver).

Keys are ECDSA P-256; certificates are valid for ``--days`` (default 365).
``--api-key`` also prints a random API key (32 bytes, URL-safe base64).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gesco.errors import GescoInputError

DEFAULT_SANS = ("localhost", "127.0.0.1", "::1", "sender", "channel", "receiver")
FILES = ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("certs", help="make a self-signed CA and a server certificate for TLS (and API keys)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", nargs="?", default="gesco-certs", help="output directory (default ./gesco-certs)")
    p.add_argument("--san", action="append", help="a DNS name or IP address the server certificate is valid for "
                   "(repeat; default: " + ", ".join(DEFAULT_SANS) + ")")
    p.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("--api-key", action="store_true", help="also print a new random API key")
    p.set_defaults(handler=_certs)


def new_api_key() -> str:
    """A random API key: 32 bytes from the OS's CSPRNG, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def make_certificates(out: Path, sans: list[str], days: int = 365, force: bool = False) -> dict[str, Path]:
    """Write the CA and the server certificate (see the module docstring); return name -> path.

    Raises:
        GescoInputError: a file exists (without ``force``), bad ``days``, or no names.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if days < 1:
        raise GescoInputError(f"--days must be at least 1, got {days}")
    if not sans:
        raise GescoInputError("the server certificate needs at least one name (--san)")
    out = Path(out)
    paths = {name: out / name for name in FILES}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not force:
        raise GescoInputError(f"{', '.join(existing)} exist(s); use --force to replace them")
    out.mkdir(parents=True, exist_ok=True)

    now = datetime.now(UTC)
    not_before, not_after = now - timedelta(minutes=5), now + timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gesco local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = []
    for san in sans:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0])]))
        .issuer_name(ca_name).public_key(server_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def key_bytes(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    _write(paths["ca.pem"], ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(paths["ca-key.pem"], key_bytes(ca_key), 0o600)
    _write(paths["server.pem"], server_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(paths["server-key.pem"], key_bytes(server_key), 0o600)
    return paths


def _write(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (a key is never readable by others, even briefly)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _certs(args: argparse.Namespace) -> int:
    sans = args.san or list(DEFAULT_SANS)
    paths = make_certificates(Path(args.out), sans, args.days, args.force)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    print(f"server certificate valid for {', '.join(sans)} for {args.days} days")
    print("servers: GESCO_<SERVICE>_TLS_CERT=" + str(paths["server.pem"]) + " GESCO_<SERVICE>_TLS_KEY="
          + str(paths["server-key.pem"]))
    print("clients: GESCO_SENDER_CHANNEL_TLS_CA / GESCO_CHANNEL_RECEIVER_TLS_CA / GESCO_CA=" + str(paths["ca.pem"]))
    if args.api_key:
        print(f"API key: {new_api_key()}")
    return 0
