"""A throw-away self-signed certificate for the emulator's ``--tls`` mode.

The unmodified ``eocanvas`` client retries every request, POST included, on HTTP 5xx, but only for
``https://`` URLs (it mounts its retrying adapter on ``https://`` alone). Serving https locally is
therefore the only way a test can see what the client really does in production. The certificate is
made at start with the ``cryptography`` package when it is installed, else with the ``openssl``
command; it is valid for ``localhost`` and the host's IP address, and is its own CA, so clients trust
it through ``REQUESTS_CA_BUNDLE=<cert>`` (honoured by ``requests``, hence by both WEkEO clients).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path


def make_self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` for ``host`` under ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        _with_cryptography(cert, key, host)
    except ImportError:
        _with_openssl(cert, key, host)
    return cert, key


def _san(host: str) -> list[str]:
    names = ["DNS:localhost", "IP:127.0.0.1"]
    try:
        ipaddress.ip_address(host)
        names.append(f"IP:{host}")
    except ValueError:
        names.append(f"DNS:{host}")
    return sorted(set(names))


def _with_cryptography(cert: Path, key: Path, host: str) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    pkey = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seasonal-c2rcc emulator")])
    alt: list[x509.GeneralName] = []
    for entry in _san(host):
        kind, _, value = entry.partition(":")
        alt.append(
            x509.IPAddress(ipaddress.ip_address(value)) if kind == "IP" else x509.DNSName(value)
        )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pkey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(pkey, hashes.SHA256())
    )
    key.write_bytes(
        pkey.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _with_openssl(cert: Path, key: Path, host: str) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError(
            "--tls needs the 'cryptography' package or the 'openssl' command; install one of them"
        )
    subprocess.run(
        [exe, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "30", "-subj", "/CN=seasonal-c2rcc emulator",
         "-addext", "subjectAltName=" + ",".join(_san(host)),
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
