"""The portal as a relying party of the region's identity provider (OpenID Connect).

Authorization code flow with PKCE (S256), ``state`` and ``nonce``; the client authenticates with
``client_secret_basic`` or ``private_key_jwt`` (the Swedish OIDC profile's default). Authlib makes
the requests (authorization URL, token exchange, client authentication), joserfc verifies the
tokens: no JWT or JWKS code of our own. The id token's signature (keys from the issuer's JWKS,
fetched again when a token names a key not seen yet), ``iss``, ``aud``, ``exp``, ``iat``,
``nonce`` and ``acr`` are checked; the userinfo response is read beside the id token (its ``sub``
must be the same). A back-channel logout token is verified the same way (its ``events``, ``jti``,
no ``nonce``).

Everything here is protocol; what a person may do with the claims is ``vardfil.rights``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import httpx
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from vardfil.errors import Refused

with warnings.catch_warnings():
    # Authlib 1.9 says at import that its httpx client moves to the httpx2 package one day: a
    # note to its users' next upgrade, printed on stderr by every server process, outside the
    # JSON log lines. The pinned Authlib and httpx work together (tests/test_identity*.py).
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

LOA3 = "http://id.sambi.se/loa/loa3"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ALGORITHMS = ["RS256", "PS256", "ES256"]
LEEWAY = 60  # seconds of clock difference between the IdP and vardfil
MAX_TOKEN_AGE = 600  # an id token (≤ 5 minutes at the IdP) older than this is not taken
DISCOVERY_TTL = 3600

# The claims vardfil reads, by the name Inera's IdP gives them; a region whose IdP names them
# differently maps them with VARDFIL_OIDC_CLAIMS ("employeeHsaId=hsaPersonId,…").
CLAIMS = (
    "employeeHsaId",
    "given_name",
    "family_name",
    "email",
    "commissionHsaId",
    "commissionName",
    "commissionPurpose",
    "commissionRight",
    "healthCareUnitHsaId",
    "healthCareProviderHsaId",
    "allCommissions",
)


class OidcError(Refused):
    """A sign-in or logout the IdP's answer does not support (a bad token, a used state …); its
    text is for the person (Swedish), its ``reason`` for the log and the tests."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def is_allowed_issuer(issuer: str) -> bool:
    """``https://``, or ``http://`` on a loopback address (tests, a local IdP)."""
    u = urlparse(issuer)
    if u.scheme == "https":
        return bool(u.hostname)
    return u.scheme == "http" and u.hostname in ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, kw_only=True)
class OidcSettings:
    """What the portal needs to know of its IdP (``vardfil.settings``)."""

    issuer: str
    client_id: str
    client_secret: str | None = None
    private_key: str | None = None  # PEM or JWK text: private_key_jwt
    acr_values: tuple[str, ...] = (LOA3,)
    purposes: tuple[str, ...] = ("Vård och behandling", "Administration")
    claim_names: dict[str, str] = field(default_factory=dict)  # ours -> the IdP's
    redirect_uri: str = ""
    post_logout_redirect_uri: str = ""
    scope: str = "openid profile"

    def claim(self, name: str) -> str:
        """The IdP's name of one of ``CLAIMS``."""
        return self.claim_names.get(name, name)


def load_private_key(value: str) -> RSAKey:
    """The client's private key from PEM or JWK text, or a path to a file holding either."""
    text = value
    if not value.lstrip().startswith(("-----BEGIN", "{")):
        text = Path(value).read_text(encoding="utf-8")
    key = json.loads(text) if text.lstrip().startswith("{") else text
    return RSAKey.import_key(key)


@dataclass(frozen=True, kw_only=True)
class Tokens:
    """What the token endpoint answered, verified."""

    id_token: str
    claims: dict[str, Any]  # the id token's, with userinfo's beside them


class RelyingParty:
    """The portal's side of the protocol against one issuer. Thread-safe: discovery and keys are
    cached (an hour; keys again on an unknown ``kid``)."""

    def __init__(self, settings: OidcSettings, *, http: httpx.Client | None = None):
        if not is_allowed_issuer(settings.issuer):
            raise ValueError(f"VARDFIL_OIDC_ISSUER must be https:// (http:// only on loopback): {settings.issuer}")
        if not (settings.client_secret or settings.private_key):
            raise ValueError("VARDFIL_OIDC_CLIENT_SECRET or VARDFIL_OIDC_PRIVATE_KEY is needed")
        self.settings = settings
        self._http = http or httpx.Client(timeout=10)
        self._lock = threading.Lock()
        self._meta: tuple[float, dict[str, Any]] | None = None
        self._keys: KeySet | None = None
        self._private_key = load_private_key(settings.private_key) if settings.private_key else None

    # --- discovery and keys ---------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (``/.well-known/openid-configuration``)."""
        with self._lock:
            if self._meta is not None and time.monotonic() - self._meta[0] < DISCOVERY_TTL:
                return self._meta[1]
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            resp = self._http.get(url)
            resp.raise_for_status()
            meta: dict[str, Any] = resp.json()
        except (httpx.HTTPError, ValueError) as e:
            raise OidcError("discovery", "Inloggningstjänsten svarar inte just nu. Försök igen om en stund.") from e
        if meta.get("issuer") != self.settings.issuer:
            raise OidcError("discovery", "Inloggningstjänsten är felaktigt inställd (issuer stämmer inte).")
        with self._lock:
            self._meta = (time.monotonic(), meta)
        return meta

    def _keyset(self, refresh: bool = False) -> KeySet:
        with self._lock:
            if self._keys is not None and not refresh:
                return self._keys
        try:
            resp = self._http.get(self.metadata()["jwks_uri"])
            resp.raise_for_status()
            keys = KeySet.import_key_set(resp.json())
        except (httpx.HTTPError, ValueError, KeyError, JoseError) as e:
            raise OidcError("jwks", "Inloggningstjänstens nycklar kunde inte hämtas. Försök igen om en stund.") from e
        with self._lock:
            self._keys = keys
        return keys

    def _decode(self, token: str) -> jwt.Token:
        """A signed JWT of the issuer, signature verified. A token that does not verify against the
        cached keys is tried once more against keys fetched anew (the IdP rotates its keys)."""
        for refresh in (False, True):
            try:
                return jwt.decode(token, self._keyset(refresh), algorithms=ALGORITHMS)
            except (JoseError, ValueError) as e:
                if refresh:
                    raise OidcError("signature", _BAD_TOKEN) from e
        raise OidcError("signature", _BAD_TOKEN)  # not reached

    # --- the flow -------------------------------------------------------------------------------

    def _client(self) -> OAuth2Client:
        s = self.settings
        if self._private_key is not None:
            client = OAuth2Client(
                s.client_id,
                self._private_key,
                token_endpoint_auth_method="private_key_jwt",
                code_challenge_method="S256",
                redirect_uri=s.redirect_uri,
                scope=s.scope,
                timeout=10,
            )
            kid = self._private_key.kid
            client.register_client_auth_method(
                PrivateKeyJWT(self.metadata()["token_endpoint"], headers={"kid": kid} if kid else None)
            )
            return client
        return OAuth2Client(
            s.client_id,
            s.client_secret,
            token_endpoint_auth_method="client_secret_basic",
            code_challenge_method="S256",
            redirect_uri=s.redirect_uri,
            scope=s.scope,
            timeout=10,
        )

    def requested_claims(self) -> dict[str, Any]:
        """The ``claims`` parameter: every claim vardfil reads, in the id token and in userinfo,
        and the accepted levels of assurance (voluntary: the IdP matches them, vardfil checks)."""
        names = {self.settings.claim(c): None for c in CLAIMS}
        return {
            "id_token": {**names, "acr": {"values": list(self.settings.acr_values)}, "amr": None, "sid": None},
            "userinfo": names,
        }

    def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        """Where the browser goes to sign in."""
        with self._client() as client:
            url, _ = client.create_authorization_url(
                self.metadata()["authorization_endpoint"],
                state=state,
                code_verifier=code_verifier,
                nonce=nonce,
                acr_values=" ".join(self.settings.acr_values),
                claims=json.dumps(self.requested_claims(), separators=(",", ":")),
            )
        return str(url)

    def exchange(self, *, code: str, code_verifier: str, nonce: str, now: Callable[[], float] = time.time) -> Tokens:
        """The code for tokens; the id token verified, userinfo read beside it."""
        meta = self.metadata()
        try:
            with self._client() as client:
                token = client.fetch_token(
                    meta["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                    redirect_uri=self.settings.redirect_uri,
                )
        except Exception as e:  # Authlib raises its own errors and httpx's: each is the same refusal
            raise OidcError("token", "Inloggningen kunde inte slutföras hos inloggningstjänsten. Försök igen.") from e
        id_token = token.get("id_token")
        if not id_token:
            raise OidcError("token", _BAD_TOKEN)
        claims = self.verify_id_token(id_token, nonce=nonce, now=now)
        if token.get("access_token") and meta.get("userinfo_endpoint"):
            claims = {**claims, **self._userinfo(meta["userinfo_endpoint"], token["access_token"], claims["sub"])}
        return Tokens(id_token=id_token, claims=claims)

    def verify_id_token(self, id_token: str, *, nonce: str, now: Callable[[], float] = time.time) -> dict[str, Any]:
        """The id token's claims, once its signature, issuer, audience, times and nonce hold."""
        claims = dict(self._decode(id_token).claims)
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(now()),
            leeway=LEEWAY,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as e:
            reason = "expired" if "expired" in type(e).__name__.lower() else f"claim:{getattr(e, 'claim', '?')}"
            raise OidcError(reason, _BAD_TOKEN) from e
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.settings.client_id:
            raise OidcError("claim:azp", _BAD_TOKEN)
        if int(claims["iat"]) < now() - MAX_TOKEN_AGE:
            raise OidcError("expired", _BAD_TOKEN)
        return claims

    def _userinfo(self, endpoint: str, access_token: str, sub: str) -> dict[str, Any]:
        try:
            resp = self._http.get(endpoint, headers={"Authorization": f"Bearer {access_token}"})
            resp.raise_for_status()
            info: dict[str, Any] = resp.json()
        except (httpx.HTTPError, ValueError) as e:
            raise OidcError("userinfo", "Inloggningstjänsten lämnade inte ut dina uppgifter. Försök igen.") from e
        if info.get("sub") != sub:  # OIDC Core 5.3.2: userinfo of another subject is not taken
            raise OidcError("userinfo", _BAD_TOKEN)
        return {k: v for k, v in info.items() if k not in ("iss", "aud", "exp", "iat", "nonce")}

    def verify_logout_token(self, token: str, *, now: Callable[[], float] = time.time) -> dict[str, Any]:
        """A back-channel logout token's claims (OIDC Back-Channel Logout 1.0, section 2.6)."""
        claims = dict(self._decode(token).claims)
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(now()),
            leeway=LEEWAY,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.client_id},
            iat={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as e:
            raise OidcError("logout_token", "ogiltig utloggningstoken") from e
        events = claims.get("events")
        if not isinstance(events, dict) or BACKCHANNEL_EVENT not in events or "nonce" in claims:
            raise OidcError("logout_token", "ogiltig utloggningstoken")
        if not (claims.get("sid") or claims.get("sub")):
            raise OidcError("logout_token", "ogiltig utloggningstoken")
        if int(claims["iat"]) < now() - MAX_TOKEN_AGE:
            raise OidcError("logout_token", "ogiltig utloggningstoken")
        return claims

    def end_session_url(self, *, id_token: str | None, state: str) -> str | None:
        """Where the browser goes to sign out at the IdP too (RP-initiated logout), if it has one."""
        endpoint = self.metadata().get("end_session_endpoint")
        if not endpoint:
            return None
        params = {"post_logout_redirect_uri": self.settings.post_logout_redirect_uri, "state": state}
        if id_token:
            params["id_token_hint"] = id_token
        else:
            params["client_id"] = self.settings.client_id
        return f"{endpoint}?{urlencode(params)}"


_BAD_TOKEN = "Inloggningen kunde inte verifieras (intyget från inloggningstjänsten godtogs inte). Försök logga in igen."


def utc(ts: float) -> dt.datetime:
    """A Unix time as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)
