"""The region's catalogue for the tests: Debian's slapd as a real process in a temporary folder,
on a free port, StartTLS with a certificate from a test CA, loaded from LDIF.

HSA's own schema is not public in machine-readable form here, so the schema below is the tests'
stand-in: HSA's attribute names (``hsaIdentity`` …) under private test OIDs, the object classes
``vardfil.directory.Mapping`` reads by default. A region's catalogue with other names is a
mapping file (docs/identity.md).

``scripts/ensure-daemons.sh`` installs slapd and ldap-utils; without them the tests are skipped,
except when ``VARDFIL_REQUIRE_SLAPD`` is set (CI).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nginx_support import TestCA
from optional import SLAPD, missing
from server_support import free_port

SLAPD_BIN, SLAPADD = Path("/usr/sbin/slapd"), Path("/usr/sbin/slapadd")
SUFFIX = "dc=vgregion,dc=test"
ADMIN_DN, ADMIN_PW = f"cn=admin,{SUFFIX}", "admin-hemlig"
READER_DN, READER_PW = f"cn=vardfil,ou=Tjanster,{SUFFIX}", "vardfil-las-hemlig"
UNITS, PERSONS, COMMISSIONS = f"ou=Enheter,{SUFFIX}", f"ou=Personer,{SUFFIX}", f"ou=Uppdrag,{SUFFIX}"

SCHEMA = """
attributetype ( 1.3.6.1.4.1.99999.7.1.1 NAME 'hsaIdentity' DESC 'HSA-id' EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.7.1.2 NAME 'hsaCommissionPurpose' DESC 'ändamål' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.99999.7.1.3 NAME 'hsaCommissionUnit' DESC 'the care unit, an HSA-id'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.7.1.4 NAME 'hsaCommissionMember' DESC 'a person, an HSA-id'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.99999.7.1.5 NAME 'hsaEndDate' DESC 'YYYY-MM-DD' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.7.2.1 NAME 'hsaHealthCareUnit' SUP top STRUCTURAL
  MUST ( hsaIdentity $ ou ) MAY ( hsaEndDate $ mail ) )
objectclass ( 1.3.6.1.4.1.99999.7.2.2 NAME 'hsaPerson' SUP top AUXILIARY MUST hsaIdentity )
objectclass ( 1.3.6.1.4.1.99999.7.2.3 NAME 'hsaCommission' SUP top STRUCTURAL
  MUST ( hsaIdentity $ cn ) MAY ( hsaCommissionPurpose $ hsaCommissionUnit $ hsaCommissionMember ) )
"""


def need_slapd() -> None:
    if not SLAPD_BIN.exists() or not SLAPADD.exists():
        missing(SLAPD, "slapd is not installed (scripts/ensure-daemons.sh installs it)")


def unit_ldif(hsa: str, name: str, end: str | None = None) -> str:
    return f"dn: hsaIdentity={hsa},{UNITS}\nobjectClass: hsaHealthCareUnit\nhsaIdentity: {hsa}\nou: {name}\n" + (
        f"hsaEndDate: {end}\n" if end else ""
    )


def person_ldif(hsa: str, given: str, family: str, email: str) -> str:
    return (
        f"dn: hsaIdentity={hsa},{PERSONS}\nobjectClass: inetOrgPerson\nobjectClass: hsaPerson\n"
        f"hsaIdentity: {hsa}\ncn: {given} {family}\ngivenName: {given}\nsn: {family}\nmail: {email}\n"
    )


def commission_ldif(cid: str, unit: str, members: list[str], purpose: str = "Vård och behandling") -> str:
    return (
        f"dn: hsaIdentity={cid},{COMMISSIONS}\nobjectClass: hsaCommission\nhsaIdentity: {cid}\ncn: {cid}\n"
        f"hsaCommissionPurpose: {purpose}\nhsaCommissionUnit: {unit}\n"
        + "".join(f"hsaCommissionMember: {m}\n" for m in members)
    )


@dataclass
class Catalogue:
    url: str
    ca: Path
    process: subprocess.Popen

    def env(self) -> dict[str, str]:
        """vardfil's settings for this catalogue."""
        return {
            "VARDFIL_DIRECTORY_URL": self.url,
            "VARDFIL_DIRECTORY_BIND_DN": READER_DN,
            "VARDFIL_DIRECTORY_PASSWORD": READER_PW,
            "VARDFIL_DIRECTORY_CA": str(self.ca),
            "VARDFIL_DIRECTORY_UNITS_BASE": UNITS,
            "VARDFIL_DIRECTORY_PERSONS_BASE": PERSONS,
            "VARDFIL_DIRECTORY_COMMISSIONS_BASE": COMMISSIONS,
        }

    def admin(self):
        """An ldap3 connection as the catalogue's administrator (to change it during a test)."""
        import ssl

        import ldap3

        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.ca))
        host, port = self.url.removeprefix("ldap://").split(":")
        server = ldap3.Server(host, port=int(port), tls=tls)
        conn = ldap3.Connection(server, user=ADMIN_DN, password=ADMIN_PW, raise_exceptions=True)
        conn.open()
        conn.start_tls()
        conn.bind()
        return conn


@contextmanager
def running_slapd(folder: Path, entries: list[str]) -> Iterator[Catalogue]:
    """slapd with the stand-in schema and ``entries`` (LDIF blocks), until the block ends."""
    need_slapd()
    folder.mkdir(parents=True, exist_ok=True)
    ca = TestCA(folder / "pki", "Katalog-CA")
    cert = ca.issue("slapd", common_name="katalog.test", server_ip="127.0.0.1")
    (folder / "db").mkdir(exist_ok=True)
    (folder / "hsa-test.schema").write_text(SCHEMA)
    conf = folder / "slapd.conf"
    conf.write_text(
        "\n".join(
            [
                "include /etc/ldap/schema/core.schema",
                "include /etc/ldap/schema/cosine.schema",
                "include /etc/ldap/schema/inetorgperson.schema",
                f"include {folder / 'hsa-test.schema'}",
                f"pidfile {folder / 'slapd.pid'}",
                "modulepath /usr/lib/ldap",
                "moduleload back_mdb",
                f"TLSCACertificateFile {ca.pem}",
                f"TLSCertificateFile {cert.cert}",
                f"TLSCertificateKeyFile {cert.key}",
                "security tls=1",  # nothing in clear: a bind or a search needs StartTLS first
                "database mdb",
                f'suffix "{SUFFIX}"',
                f'rootdn "{ADMIN_DN}"',
                f"rootpw {ADMIN_PW}",
                f"directory {folder / 'db'}",
                "maxsize 104857600",
                f'access to * by dn.exact="{READER_DN}" read by anonymous auth by * none',
                "",
            ]
        )
    )
    base = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: vgregion\no: VGR (test)\n",
        f"dn: ou=Tjanster,{SUFFIX}\nobjectClass: organizationalUnit\nou: Tjanster\n",
        f"dn: {READER_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: vardfil\nsn: vardfil\nuserPassword: {READER_PW}\n",
        *(
            f"dn: {ou}\nobjectClass: organizationalUnit\nou: {ou.split(',')[0][3:]}\n"
            for ou in (UNITS, PERSONS, COMMISSIONS)
        ),
    ]
    ldif = folder / "data.ldif"
    ldif.write_text("\n".join(base + entries), encoding="utf-8")
    added = subprocess.run([str(SLAPADD), "-f", str(conf), "-l", str(ldif)], capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(SLAPD_BIN), "-f", str(conf), "-h", f"{url}/", "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    catalogue = Catalogue(url=url, ca=ca.pem, process=proc)
    try:
        import socket

        for _ in range(80):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield catalogue
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
