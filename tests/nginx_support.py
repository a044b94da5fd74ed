"""nginx in front of ``vardfil serve`` with the repository's configuration (deploy/nginx), and a
test CA made here with ``cryptography``: SITHS-like function certificates for journal systems.

``scripts/ensure-daemons.sh`` installs nginx (Debian); without it the tests are skipped, except
when ``VARDFIL_REQUIRE_NGINX`` is set (CI).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from string import Template

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from optional import NGINX, missing
from server_support import free_port

ROOT = Path(__file__).resolve().parent.parent
NGINX_BIN = Path("/usr/sbin/nginx")


def need_nginx() -> Path:
    if not NGINX_BIN.exists():
        missing(NGINX, "nginx is not installed (scripts/ensure-daemons.sh installs it)")
    return NGINX_BIN


@dataclass
class Issued:
    cert: Path
    key: Path


class TestCA:
    """A CA that issues server and function certificates into a folder."""

    def __init__(self, folder: Path, name: str):
        self.folder, self.name = folder, name
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.COUNTRY_NAME, "SE")]
        )
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.pem = folder / f"{name}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        label: str,
        *,
        common_name: str,
        serial_number: str | None = None,
        server_ip: str | None = None,
        valid: tuple[dt.timedelta, dt.timedelta] = (dt.timedelta(days=-1), dt.timedelta(days=10)),
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if serial_number:
            attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number))
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + valid[0])
            .not_valid_after(now + valid[1])
        )
        if server_ip:
            import ipaddress

            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(server_ip))]), critical=False
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        issued = Issued(cert=self.folder / f"{label}.crt", key=self.folder / f"{label}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return issued


@contextmanager
def running_nginx(
    folder: Path, *, upstream: str, server: Issued, client_ca: Path, bind: str | None = None
) -> Iterator[str]:
    """nginx with ``deploy/nginx/vardfil.conf`` filled in, until the block ends; its https base URL.

    ``bind``: the address nginx connects to vardfil from (``proxy_bind``), so that a test's own
    client and nginx are different peers on the one loopback. Run as root, the workers stay root
    (``user root``): the test's folder is readable by root only."""
    nginx = need_nginx()
    port = free_port()
    prefix = folder / "nginx"
    for sub in ("", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    # safe_substitute: nginx's own $variables ($host, $ssl_client_verify …) stay as they are.
    text = Template((ROOT / "deploy" / "nginx" / "vardfil.conf").read_text()).safe_substitute(
        LISTEN=f"127.0.0.1:{port}",
        SERVER_CERT=server.cert,
        SERVER_KEY=server.key,
        CLIENT_CA=client_ca,
        UPSTREAM=upstream,
        PREFIX=prefix,
    )
    unfilled = [line for line in text.splitlines() if "${" in line and not line.lstrip().startswith("#")]
    assert not unfilled, unfilled
    if bind:
        text = text.replace("proxy_http_version 1.1;", f"proxy_http_version 1.1;\n            proxy_bind {bind};")
    if os.geteuid() == 0:
        text = "user root;\n" + text
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    test = subprocess.run([str(nginx), "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen(
        [str(nginx), "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"https://127.0.0.1:{port}"
    try:
        for _ in range(80):
            try:
                httpx.get(
                    base + "/healthz", verify=False, timeout=1
                )  # only waiting for the port: no certificate to check yet
                break
            except httpx.HTTPError:
                time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
