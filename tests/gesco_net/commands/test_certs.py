"""``gesco certs``: a CA and a server certificate that verify, keys private, no overwrite."""

from __future__ import annotations

import ipaddress
import stat
import subprocess
import sys

import pytest


def test_certs_command(tmp_path, capsys):
    from cryptography import x509

    from gesco_net.cli import main

    out = tmp_path / "c"
    assert main(["certs", str(out), "--san", "localhost", "--san", "10.1.2.3", "--api-key"]) == 0
    stdout = capsys.readouterr().out
    key_line = [line for line in stdout.splitlines() if line.startswith("API key: ")]
    assert len(key_line) == 1 and len(key_line[0].split(": ")[1]) == 43
    for name in ("ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    ca_bytes = (out / "ca.pem").read_bytes()
    ca = x509.load_pem_x509_certificate(ca_bytes)
    server = x509.load_pem_x509_certificate((out / "server.pem").read_bytes())
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert main(["certs", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "ca.pem").read_bytes() == ca_bytes  # nothing was replaced


def test_bad_arguments(tmp_path):
    from gesco.errors import GescoInputError
    from gesco_net.commands.certs import make_certificates

    with pytest.raises(GescoInputError):
        make_certificates(tmp_path, ["localhost"], days=0)
    with pytest.raises(GescoInputError):
        make_certificates(tmp_path, [], days=1)


def test_cli_does_not_import_cryptography_or_prometheus():
    code = ("import sys, gesco_net.cli; gesco_net.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cryptography', 'prometheus_client')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stdout + run.stderr
