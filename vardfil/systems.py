"""Journal systems identified by their SITHS function certificate (mutual TLS).

Between systems in Swedish healthcare a system proves who it is with a SITHS function
certificate, not with a shared secret. TLS ends at the region's reverse proxy (nginx,
``deploy/nginx/``), which verifies the client certificate against the SITHS CA bundle and forwards
it as ``X-Client-Cert`` (``$ssl_client_escaped_cert``, the PEM URL-encoded) with
``X-Client-Verify`` (``$ssl_client_verify``). vardfil believes those two headers only when the
request's own peer is one of ``VARDFIL_TRUSTED_PROXIES``; from anyone else they are ignored, as if
absent. The system's HSA-id is the certificate subject's ``serialNumber`` (where SITHS puts it);
the certificate must be within its validity period; the system must be registered
(``vardfil system add``), and may send only for the units registered to it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID

from vardfil.rights import HSAID

if TYPE_CHECKING:
    from vardfil.app import App


@dataclass(frozen=True, kw_only=True)
class ClientCertificate:
    """What the proxy verified: the system's HSA-id and the certificate's validity period."""

    hsa_id: str
    not_before: dt.datetime
    not_after: dt.datetime
    subject: str

    def valid_at(self, at: dt.datetime) -> bool:
        """Whether ``at`` is inside the validity period."""
        return self.not_before <= at <= self.not_after


def trusted_peer(peer: str | None, proxies: Iterable[str]) -> bool:
    """Whether the request's own peer (before any X-Forwarded-For) is one of the operator's proxies
    (addresses or networks, ``VARDFIL_TRUSTED_PROXIES``)."""
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    for entry in proxies:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def certificate_of(verify: str | None, escaped_pem: str | None) -> ClientCertificate | None:
    """The certificate the proxy verified (``X-Client-Verify: SUCCESS``), or None: no certificate,
    one the proxy did not verify, or one without an HSA-id in its subject's ``serialNumber``."""
    if verify != "SUCCESS" or not escaped_pem:
        return None
    try:
        cert = x509.load_pem_x509_certificate(unquote(escaped_pem).encode("ascii"))
    except ValueError:
        return None
    serials = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    hsa_id = str(serials[0].value).strip() if serials else ""
    if not HSAID.fullmatch(hsa_id):
        return None
    return ClientCertificate(
        hsa_id=hsa_id,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        subject=cert.subject.rfc4514_string(),
    )


def register_system(app: App, *, hsa_id: str, units: list[str], name: str | None, actor: str) -> None:
    """``vardfil system add``: a journal system by its certificate's HSA-id, for units of the register."""
    from vardfil.errors import AccountRefused
    from vardfil.ledger import utcnow

    if not HSAID.fullmatch(hsa_id):
        raise AccountRefused(f"inte ett HSA-id: {hsa_id}")
    unknown = [u for u in units if u not in app.reference.units]
    if not units or unknown:
        raise AccountRefused(
            "ett journalsystem skickar för vårdenheter i enhetsregistret: "
            + (f"okänd {', '.join(unknown)}" if unknown else "ange minst en --unit")
        )
    app.ledger.systems.add(hsa_id=hsa_id, units=units, name=name, actor=actor, now=utcnow())


def revoke_system(app: App, *, hsa_id: str, actor: str) -> None:
    """``vardfil system revoke``: the certificate sends nothing from now."""
    from vardfil.errors import AccountRefused
    from vardfil.ledger import utcnow

    if not app.ledger.systems.revoke(hsa_id, actor=actor, now=utcnow()):
        raise AccountRefused(f"inget registrerat journalsystem {hsa_id}")
