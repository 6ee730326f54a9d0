"""``clerk-guard doctor``: explain why a token is, or is not, accepted under a configuration.

The diagnosis runs the very code the middleware runs, through the core's public API: the token
is found with :meth:`Guard.extract`, then the stages of :class:`Verifier` run one by one, as
:meth:`Verifier.verify` runs them: :meth:`~Verifier.read` (structure and header), the guard's own
key lookup (:attr:`Guard.key_for`, or the configured PEM key), :meth:`~Verifier.signed_claims`,
and every claim stage of :attr:`Verifier.claim_stages`, so a report shows each failing one.
Finally :meth:`Guard.authenticate` runs on the same input and gives the verdict, so the doctor
can never accept what the middleware would refuse.

The header and claims are also decoded leniently for display, before and whatever the checks
say: they are shown, never trusted.
"""

from __future__ import annotations

import binascii
import dataclasses
import datetime
import json
import re
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeGuard

from ._b64 import peek_json
from ._claims import SessionAuth
from ._config import GuardConfig
from ._errors import (
    AuthenticationError,
    ClerkGuardError,
    ConfigurationError,
    TokenInvalidError,
    TokenMissingError,
)
from ._guard import Guard
from ._http import error_response
from ._tokens import MAX_TOKEN_LENGTH, parse_cookies
from ._verify import (
    ISSUER_AND_PARTIES,
    LIFETIME,
    REQUIRED_CLAIMS,
    SESSION_STATUS,
    fingerprint,
)

__all__ = [
    "Check",
    "Diagnosis",
    "check_names",
    "config_summary",
    "diagnose",
    "diagnose_unconfigured",
    "explain",
    "in_words",
    "relative_time",
    "render_text",
    "split_cookie_lines",
    "split_header_lines",
]

Status = Literal["passed", "failed", "skipped"]
Verdict = Literal["accepted", "rejected", "unverified"]

#: Frontend API hosts of Clerk development instances (``pk_test_…`` keys).
_DEV_HOST_SUFFIXES = (
    ".clerk.accounts.dev",
    ".accounts.dev",
    ".lcl.dev",
    ".lclstage.dev",
    ".clerkstage.dev",
    ".accountsstage.dev",
    ".stgstage.dev",
)
_HEADER_LINE = re.compile(r"([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*:\s*(.*)", re.DOTALL)
_FETCH_HELP = {
    "publishable_key": "the Frontend API host that CLERK_PUBLISHABLE_KEY decodes to",
    "jwks_url": "CLERK_JWKS_URL",
    "secret_key": "the Backend API (CLERK_API_URL, with CLERK_SECRET_KEY)",
    "jwt_key": "CLERK_JWT_KEY",
}
#: How to give ``doctor`` a configuration, when it has none that works.
_CONFIG_HELP = (
    "Give the doctor the configuration your app uses, as the middleware reads it: "
    "CLERK_PUBLISHABLE_KEY (pk_test_… or pk_live_…, from the API keys page of the Clerk "
    "dashboard) in the environment, or --publishable-key PK; to verify with no network, "
    "--jwt-key @public.pem (CLERK_JWT_KEY); for a local issuer, --jwks-url URL. "
    "`clerk-guard doctor --help` lists every flag."
)
# Finding a token and reading its form and header depend on no setting (but the cookie suffix,
# which needs a publishable key): without a configuration they run under this placeholder,
# whose key set is never fetched.
_PLACEHOLDER_JWKS_URL = "http://127.0.0.1/.well-known/jwks.json"
_NO_CONFIGURATION = "not run: no configuration to verify the token against"


# Times in words ------------------------------------------------------------------------------


def in_words(seconds: float) -> str:
    """A duration as its two largest units: ``"3 min 12 s"``, ``"2 h 5 min"``, ``"4 s"``."""
    remaining = round(abs(seconds))
    if remaining < 60:
        return f"{remaining} s"
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    parts: list[str] = []
    for index, (name, size) in enumerate(units):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count} {name}")
            following = units[index + 1] if index + 1 < len(units) else None
            if following is not None:
                extra = remaining // following[1]
                if extra:
                    parts.append(f"{extra} {following[0]}")
            break
    return " ".join(parts)


_PHRASES = {
    "exp": ("expires in {}", "expired {} ago", "expires now"),
    "iat": ("issued in {}", "issued {} ago", "issued now"),
    "nbf": ("becomes valid in {}", "became valid {} ago", "becomes valid now"),
}


def relative_time(claim: str, value: float, now: float) -> str:
    """``exp``, ``iat`` or ``nbf`` relative to ``now``: ``"expired 3 min 12 s ago"``."""
    future, past, present = _PHRASES[claim]
    delta = value - now
    if round(delta) == 0:
        return present
    return (future if delta > 0 else past).format(in_words(delta))


def _utc(value: float) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return "out of range"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Lenient decoding, for display only ----------------------------------------------------------


def _peek(token: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str | None]:
    """Header and payload decoded without any check, for display; plus what went wrong."""
    parts = token.split(".")
    if len(parts) != 3:
        return None, None, f"the token has {len(parts)} dot-separated part(s), not 3"
    decoded: list[dict[str, Any] | None] = []
    problems: list[str] = []
    for name, segment in (("header", parts[0]), ("payload", parts[1])):
        try:
            value = peek_json(segment)
        except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
            decoded.append(None)
            problems.append(f"the {name} is not base64url-encoded JSON")
            continue
        if isinstance(value, dict):
            decoded.append(value)
        else:
            decoded.append(None)
            problems.append(f"the {name} is not a JSON object")
    return decoded[0], decoded[1], "; ".join(problems) or None


# The report ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Check:
    """One step of the verification and how it went.

    ``detail`` says what was found when it passed; ``cause`` and ``fix`` explain a failure.
    """

    name: str
    status: Status
    code: str | None = None
    detail: str = ""
    cause: str = ""
    fix: str = ""

    @property
    def ok(self) -> bool | None:
        """True when passed, False when failed, None when it did not run."""
        return None if self.status == "skipped" else self.status == "passed"

    def to_json(self) -> dict[str, Any]:
        """The check as a JSON-ready mapping (an element of the report's ``checks``)."""
        return {
            "name": self.name,
            "ok": self.ok,
            "status": self.status,
            "code": self.code,
            "detail": self.detail or None,
            "cause": self.cause or None,
            "fix": self.fix or None,
        }


@dataclasses.dataclass
class Diagnosis:
    """Everything ``doctor`` found; :meth:`to_json` is the stable ``--json`` structure.

    Without a working configuration (:func:`diagnose_unconfigured`) the verdict is
    ``"unverified"`` and ``config`` holds ``error``, ``field`` and ``help`` instead of the
    summary of :func:`config_summary`.
    """

    input: dict[str, Any]
    header: dict[str, Any] | None
    claims: dict[str, Any] | None
    decode_error: str | None
    times: dict[str, Any]
    config: dict[str, Any]
    checks: list[Check]
    verdict: Verdict
    code: str | None
    #: The middleware's answer; ``None`` when unverified (without a configuration the app
    #: does not start).
    http_status: int | None
    session: dict[str, Any] | None
    fingerprint: str | None

    @property
    def accepted(self) -> bool:
        """True when the middleware lets this token in."""
        return self.verdict == "accepted"

    @property
    def failure(self) -> Check | None:
        """The check that decided the rejection (the first failure), if any."""
        return next((check for check in self.checks if check.status == "failed"), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping; its keys are stable across releases."""
        return {
            "input": self.input,
            "fingerprint": self.fingerprint,
            "header": self.header,
            "claims": self.claims,
            "decode_error": self.decode_error,
            "times": self.times,
            "config": self.config,
            "checks": [check.to_json() for check in self.checks],
            "verdict": self.verdict,
            "code": self.code,
            "http_status": self.http_status,
            "session": self.session,
        }


# Causes and fixes ----------------------------------------------------------------------------


@dataclasses.dataclass
class _Context:
    config: GuardConfig
    guard: Guard
    header: dict[str, Any] | None
    claims: dict[str, Any] | None
    now: float
    error: ClerkGuardError
    step: str
    #: The token's signature length and the length the key's signatures have, in bytes, when
    #: the signature check ran.
    signature: tuple[int, int] | None = None


def _claim(ctx: _Context, name: str) -> Any:
    return ctx.claims.get(name) if ctx.claims else None


def _host(url: object) -> str:
    if not isinstance(url, str):
        return ""
    return re.sub(r"^https?://", "", url, flags=re.IGNORECASE).split("/")[0].lower()


def _is_dev_host(host: str) -> bool:
    return host.endswith(_DEV_HOST_SUFFIXES)


def _other_instance(ctx: _Context) -> str:
    """A hint when the token's ``iss`` is not the configured instance."""
    iss = _claim(ctx, "iss")
    expected = ctx.config.resolved_issuer
    if isinstance(iss, str) and expected is not None and iss != expected:
        return (
            f"The token says it was issued by {iss}, but this configuration is for {expected}: "
            "it was signed by another Clerk instance."
        )
    return ""


def _dev_against_prod(ctx: _Context) -> str:
    """A hint when a development token meets production keys, or the reverse."""
    iss = _claim(ctx, "iss")
    publishable = ctx.config.publishable_key or ""
    if not isinstance(iss, str) or not publishable:
        return ""
    token_dev = _is_dev_host(_host(iss))
    if publishable.startswith("pk_live_") and token_dev:
        return (
            "The token comes from a development instance, but the configured keys are "
            "production's (pk_live_…): a development token checked against production."
        )
    if (
        publishable.startswith("pk_test_")
        and not token_dev
        and _is_dev_host(_host(ctx.config.resolved_issuer))
    ):
        return (
            "The token looks like a production instance's, but the configured keys are "
            "development's (pk_test_…)."
        )
    return ""


def _instance_hint(ctx: _Context) -> str:
    """Compare the token's ``iss`` with the configured instance, and dev with production."""
    return " ".join(hint for hint in (_other_instance(ctx), _dev_against_prod(ctx)) if hint)


def _key_description(ctx: _Context) -> str:
    if ctx.guard.jwks is None:
        return "the configured PEM public key (CLERK_JWT_KEY)"
    kid = ctx.header.get("kid") if ctx.header else None
    return f"the key {kid!r} from {ctx.guard.jwks.url}"


def _explain_missing(ctx: _Context) -> tuple[str, str]:
    names = " or ".join(ctx.config.session_cookie_names)
    return (
        "The request carries no session token: no usable Authorization header and no session "
        f"cookie ({names}).",
        "Send the token as 'Authorization: Bearer <token>' (in the frontend: await getToken()), "
        "or call from the browser with credentials included so Clerk's __session cookie is sent.",
    )


def _explain_malformed(ctx: _Context) -> tuple[str, str]:
    if ctx.step == REQUIRED_CLAIMS:
        missing_sid = ctx.claims is not None and not _claim(ctx, "sid")
        cause = ctx.error.message
        if missing_sid:
            cause += (
                " A session token always has 'sid': this is a JWT template token "
                "(getToken({ template })) or a token made by hand, not a session token."
            )
        return (
            cause,
            "Send the session token itself: getToken() without a template. Templates are for "
            "third-party services; your own backend verifies the default session token.",
        )
    return (
        f"The token is malformed ({ctx.error.message.rstrip('.')}): it was tampered with, or "
        "truncated or altered when copied (a cut-off end, quotes, spaces or a line break).",
        "Copy the whole token again: three base64url parts separated by dots, for example from "
        "`await window.Clerk.session.getToken()` in the browser console.",
    )


def _explain_algorithm(ctx: _Context) -> tuple[str, str]:
    alg = ctx.header.get("alg") if ctx.header else None
    return (
        f"The header says alg {alg!r}; Clerk signs session tokens with RS256 only.",
        "This token does not come from Clerk's session mechanism (another auth system, or a JWT "
        "template with a custom signing key). Send the Clerk session token.",
    )


def _explain_type(ctx: _Context) -> tuple[str, str]:
    typ = ctx.header.get("typ") if ctx.header else None
    sub = _claim(ctx, "sub")
    if isinstance(typ, str) and typ.endswith("at+jwt"):
        what = f"an OAuth access token (typ {typ!r})"
    elif isinstance(sub, str) and sub.startswith("mch_"):
        what = f"a machine token (sub {sub!r} starts with mch_)"
    else:
        what = "a machine-to-machine token (cat header)"
    return (
        f"This is {what}, signed by the instance but not a session token: a machine or "
        "template token is never accepted as a user's session.",
        "Send a user's session token (getToken() in the frontend). Verify OAuth and machine "
        "tokens with Clerk's machine authentication, not as sessions.",
    )


def _explain_kid(ctx: _Context) -> tuple[str, str]:
    kid = ctx.header.get("kid") if ctx.header else None
    url = _jwks_url(ctx, "the key set")
    if kid is None:
        cause = "The token has no kid header, so no key of the JWKS can be chosen."
    else:
        cause = f"No key in {url} has the token's kid {kid!r}."
    hint = _instance_hint(ctx)
    return (
        f"{cause} {hint}".strip(),
        "Configure the keys of the Clerk instance that issued the token (compare the token's "
        "iss with the configured issuer; pk_test_… for development, pk_live_… for production). "
        "Right after a key rotation, retry in 30 s: new keys are fetched at most once per "
        "cooldown.",
    )


def _jwks_url(ctx: _Context, otherwise: str = "the JWKS URL") -> str:
    return ctx.guard.jwks.url if ctx.guard.jwks is not None else otherwise


def _not_loaded(ctx: _Context, url: str, why: str = "") -> str:
    """The cause line of every key-fetch failure."""
    why = f" {why}" if why else ""
    return (
        f"The keys could not be loaded from {url}: {ctx.error.message}{why} The middleware "
        "answers 503 with Retry-After until they can be."
    )


def _explain_fetch(ctx: _Context) -> tuple[str, str]:
    url = _jwks_url(ctx)
    where = _FETCH_HELP[ctx.config.key_source]
    return (
        _not_loaded(ctx, url),
        f"Check that this machine can reach {url} ({where}): network, firewall, proxy, DNS. "
        "Behind an egress proxy, set HTTPS_PROXY (the key fetch honours HTTPS_PROXY, "
        "HTTP_PROXY, ALL_PROXY and NO_PROXY). "
        "To verify without any network, set CLERK_JWT_KEY to the instance's PEM public key "
        "(Clerk dashboard, API keys).",
    )


def _explain_tls(ctx: _Context) -> tuple[str, str]:
    url = _jwks_url(ctx)
    if "certificate verify failed" in ctx.error.message:
        why = (
            "The certificate it presented failed verification: signed by a CA this process "
            "does not trust (a TLS-inspecting proxy or firewall, or a private CA), issued for "
            "another host name, or expired."
        )
    else:
        why = "The TLS handshake failed: is it https on that port?"
    return (
        _not_loaded(ctx, url, why),
        "Give this process the CA that signs the certificate: SSL_CERT_FILE (a PEM bundle) or "
        "SSL_CERT_DIR (a hashed directory), read as httpx reads them when the guard is built, "
        "or GuardConfig(ssl_context=ssl.create_default_context(cafile=...)), which takes "
        "precedence over both. Never turn certificate verification off: whoever answers the "
        "key fetch could then sign tokens.",
    )


def _explain_proxy(ctx: _Context) -> tuple[str, str]:
    url = _jwks_url(ctx)
    return (
        _not_loaded(
            ctx, url, "The proxy named by the environment is unreachable or refused the request."
        ),
        "Check the proxy in HTTPS_PROXY (or HTTP_PROXY, ALL_PROXY) is up and lets this "
        f"machine reach {_host(url) or url}; if this host should be reached directly, add it "
        "to NO_PROXY; or unset the proxy variables.",
    )


def _explain_not_jwks(ctx: _Context) -> tuple[str, str]:
    url = _jwks_url(ctx)
    return (
        f"{url} answered, but not with a usable key set: {ctx.error.message}",
        "Point CLERK_JWKS_URL at https://<your Frontend API>/.well-known/jwks.json, or unset it: "
        "the publishable key gives the right URL.",
    )


def _explain_secret(ctx: _Context) -> tuple[str, str]:
    return (
        f"{ctx.error.message} The secret key is wrong, revoked, or from another instance.",
        "Copy CLERK_SECRET_KEY again from the API keys page of the same instance, or set only "
        "CLERK_PUBLISHABLE_KEY, which needs no secret.",
    )


def _explain_signature(ctx: _Context) -> tuple[str, str]:
    """Tell a token signed by another key from one altered after signing.

    A signature of the wrong length was cut (or run on) when copied. A key chosen by the
    token's kid from this instance's key set means this instance signed the token, or the
    token was made to look so: either way it changed after signing. With a PEM key (no kid),
    the token's ``iss`` says which instance it claims to come from.
    """
    key = _key_description(ctx)
    copy_again = (
        "Copy the whole token again from where it was issued, unmodified: for example "
        "`await window.Clerk.session.getToken()` in the browser console (the signature is the "
        "part after the last dot)."
    )
    never_edit = (
        "Never edit a token: the signature covers the header and every claim. For a token with "
        "other claims, mint one: `clerk-guard mint`, or LocalIssuer.mint() in tests."
    )
    if ctx.signature is not None and ctx.signature[0] != ctx.signature[1]:
        got, expected = ctx.signature
        return (
            f"The signature is {got} bytes long, but {key} makes signatures of {expected} "
            "bytes: the token was cut short (or run together with other text) when copied.",
            copy_again,
        )
    iss = _claim(ctx, "iss")
    expected_iss = ctx.config.resolved_issuer
    if ctx.guard.jwks is not None:
        changed = ""
        if isinstance(iss, str) and expected_iss is not None and iss != expected_iss:
            changed = f" (its iss {iss!r} is not this instance's, so it was changed too)"
        return (
            f"The signature does not verify with {key}: a key of this instance, named by the "
            "token's kid. So the token was altered after it was signed (tampered: the header "
            f"or a claim edited{changed}), or a character of it changed when copied; it was not "
            "signed by another instance, whose keys have other kids.",
            f"{copy_again} {never_edit}",
        )
    hint = _instance_hint(ctx)
    if hint:
        return (
            f"The signature does not verify with {key}. {hint}",
            "Use the keys of the instance that issued the token: the publishable key (or PEM "
            "key) must come from the same instance as the frontend's, development (pk_test_…) or "
            "production (pk_live_…).",
        )
    if isinstance(iss, str) and iss == expected_iss:
        claim = "The token says it comes from this instance, so"
    else:
        claim = "Either"
    return (
        f"The signature does not verify with {key}. {claim} it was altered after it was "
        "signed (tampered) or when copied, or CLERK_JWT_KEY is not the current key of the "
        "instance that issued it.",
        f"{copy_again} {never_edit} If an untouched token fails too, copy CLERK_JWT_KEY again "
        "from the API keys page of that instance, or set CLERK_PUBLISHABLE_KEY instead to fetch "
        "its keys.",
    )


def _explain_expired(ctx: _Context) -> tuple[str, str]:
    exp = _claim(ctx, "exp")
    ago = f" {in_words(ctx.now - exp)} ago ({_utc(exp)})" if _is_number(exp) else ""
    return (
        f"The token expired{ago}; the leeway is {ctx.config.leeway:g} s. Clerk session tokens "
        "live 60 s and Clerk's frontend refreshes them about every 50 s.",
        "Get a fresh token right before each request (await getToken() in the frontend; never "
        "store tokens). If tokens expire the moment they arrive, this server's clock is ahead: "
        "sync it (NTP).",
    )


def _explain_future(ctx: _Context) -> tuple[str, str]:
    name = "nbf" if ctx.error.code == "token-not-active-yet" else "iat"
    value = _claim(ctx, name)
    when = relative_time(name, value, ctx.now) if _is_number(value) else "in the future"
    return (
        f"The token {when} ({name}), beyond the leeway of {ctx.config.leeway:g} s: this "
        "server's clock is behind the issuer's (clock skew).",
        "Sync this server's clock (NTP). CLERK_LEEWAY tolerates small skews (default 5 s); "
        "raising it far weakens the expiry check.",
    )


def _explain_issuer(ctx: _Context) -> tuple[str, str]:
    iss = _claim(ctx, "iss")
    cause = (
        f"The token's issuer (iss) is {iss!r}, but this configuration expects "
        f"{ctx.config.resolved_issuer!r}: it comes from another Clerk instance, or through a "
        "proxy or satellite domain."
    )
    hint = _dev_against_prod(ctx)
    if hint:
        cause += " " + hint
    return (
        cause,
        "Use the publishable key of the instance that issued the token. Behind a Clerk proxy or "
        "on a satellite domain, set CLERK_ISSUER to the exact iss.",
    )


def _explain_azp(ctx: _Context) -> tuple[str, str]:
    azp = _claim(ctx, "azp")
    parties = ", ".join(ctx.config.authorized_parties)
    if azp is None:
        return (
            f"The token has no azp claim, but authorized parties are configured ({parties}).",
            "Tokens from Clerk's frontend carry azp (the origin of the page that asked for the "
            "token). This one was made elsewhere; send the browser's session token.",
        )
    return (
        f"The token was requested by {azp!r}, which is not among the authorized parties "
        f"({parties}).",
        f"If {azp} is your frontend, add it exactly (scheme, host and port; no path or trailing "
        "slash) to CLERK_AUTHORIZED_PARTIES (comma-separated); otherwise the token was made for "
        "another site and is rightly refused.",
    )


def _explain_audience(ctx: _Context) -> tuple[str, str]:
    return (
        f"The token's aud {_claim(ctx, 'aud')!r} holds none of {', '.join(ctx.config.audience)}.",
        "Session tokens carry no aud unless a JWT template adds one: set the template's aud, or "
        "leave CLERK_AUDIENCE unset.",
    )


def _explain_pending(ctx: _Context) -> tuple[str, str]:
    return (
        "The session is pending (sts: pending): the user signed in but has session tasks left "
        "(such as choosing an organization). Clerk treats a pending session as signed out.",
        "Let the user finish the session tasks in the frontend, or pass accept_pending=True if "
        "this backend serves pending sessions.",
    )


def _explain_claims(ctx: _Context) -> tuple[str, str]:
    return (
        f"{ctx.error.message} The token verifies, but a claim has a shape Clerk never issues.",
        "Check that the custom session token claims (dashboard, Sessions) do not override "
        "org_*, o, fea, pla, act or fva.",
    )


def _explain_duplicated(ctx: _Context) -> tuple[str, str]:
    return (
        "The request has two Authorization header lines; clerk-guard refuses to guess which "
        "one counts.",
        "Send exactly one Authorization header (look for a proxy or client code adding one).",
    )


def _explain_bearer(ctx: _Context) -> tuple[str, str]:
    return (
        "'Authorization: Bearer' is not followed by exactly one token (a missing token, a token "
        "with spaces, or extra words).",
        "Send 'Authorization: Bearer <token>' with the bare token: no quotes, one 'Bearer'.",
    )


def _explain_too_long(ctx: _Context) -> tuple[str, str]:
    return (
        f"The token is longer than {MAX_TOKEN_LENGTH} characters, so it is refused before "
        "decoding: Clerk session tokens are well under 4 KiB.",
        "Send only the session token (not a whole Cookie header, nor several tokens).",
    )


_EXPLAINERS: dict[str, Callable[[_Context], tuple[str, str]]] = {
    "session-token-missing": _explain_missing,
    "authorization-header-duplicated": _explain_duplicated,
    "authorization-header-malformed": _explain_bearer,
    "token-too-long": _explain_too_long,
    "token-invalid": _explain_malformed,
    "token-invalid-algorithm": _explain_algorithm,
    "token-type-mismatch": _explain_type,
    "jwk-kid-mismatch": _explain_kid,
    "jwk-remote-failed-to-load": _explain_fetch,
    "jwk-remote-tls-failed": _explain_tls,
    "jwk-remote-proxy-failed": _explain_proxy,
    "jwk-remote-invalid": _explain_not_jwks,
    "jwk-remote-missing": _explain_not_jwks,
    "secret-key-invalid": _explain_secret,
    "token-invalid-signature": _explain_signature,
    "token-expired": _explain_expired,
    "token-not-active-yet": _explain_future,
    "token-iat-in-the-future": _explain_future,
    "token-invalid-issuer": _explain_issuer,
    "token-invalid-authorized-parties": _explain_azp,
    "token-invalid-audience": _explain_audience,
    "session-token-pending": _explain_pending,
    "token-invalid-claims": _explain_claims,
}


def explain(
    error: ClerkGuardError,
    *,
    guard: Guard,
    header: Mapping[str, Any] | None = None,
    claims: Mapping[str, Any] | None = None,
    now: float | None = None,
    step: str = "",
    signature: tuple[int, int] | None = None,
) -> tuple[str, str]:
    """The cause and the fix of a failure, in words, from its reason code and the token.

    :param signature: for a failed signature, the token's signature length and the length of
        the key's signatures, in bytes: a difference means the token was cut when copied.
    """
    ctx = _Context(
        config=guard.config,
        guard=guard,
        header=dict(header) if header is not None else None,
        claims=dict(claims) if claims is not None else None,
        now=guard.config.clock() if now is None else now,
        error=error,
        step=step,
        signature=signature,
    )
    explainer = _EXPLAINERS.get(error.code)
    if explainer is None:
        return error.message, ""
    return explainer(ctx)


# Input: where the token comes from -----------------------------------------------------------


def split_header_lines(lines: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Sort raw ``Name: value`` lines into Authorization values, Cookie values and notes.

    A line without a header name is taken as an Authorization value (``Bearer …``).
    """
    authorization: list[str] = []
    cookies: list[str] = []
    notes: list[str] = []
    for line in lines:
        match = _HEADER_LINE.fullmatch(line.strip())
        if match is None:
            authorization.append(line.strip())
            continue
        name, value = match.group(1).lower(), match.group(2).strip()
        if name == "authorization":
            authorization.append(value)
        elif name == "cookie":
            cookies.append(value)
        else:
            notes.append(
                f"Header {match.group(1)!r} is ignored: clerk-guard reads the session token from "
                "the Authorization header and the Cookie header only."
            )
    return authorization, cookies, notes


def _cookie_value(line: str) -> str:
    match = _HEADER_LINE.fullmatch(line.strip())
    if match is not None and match.group(1).lower() == "cookie":
        return match.group(2).strip()
    return line.strip()


def split_cookie_lines(lines: Sequence[str]) -> list[str]:
    """Raw ``--cookie`` values, with an optional leading ``Cookie:`` removed."""
    return [_cookie_value(line) for line in lines]


def _extraction_notes(
    config: GuardConfig,
    authorization: Sequence[str],
    cookies: Sequence[str],
    found: tuple[str, str] | None,
) -> tuple[list[str], str | None]:
    """What the middleware's extraction did with this request, in words; and the cookie used."""
    notes: list[str] = []
    header_token = False
    if len(authorization) == 1:
        parts = authorization[0].split()
        if not parts:
            notes.append("The Authorization header is empty: the cookie would be used instead.")
        elif parts[0].lower() == "bearer":
            header_token = True
        elif len(parts) == 1 and parts[0].count(".") == 2:
            header_token = True
            notes.append(
                "The Authorization header has no scheme; a bare JWT is taken as the token (as "
                "@clerk/backend does), but send 'Bearer <token>'."
            )
        else:
            notes.append(
                f"Authorization header uses scheme {parts[0]!r}, which is not Bearer: the cookie "
                "would be used instead."
            )
    jar = parse_cookies(cookies)
    expected = config.session_cookie_names
    cookie_used: str | None = None
    if header_token and cookies:
        notes.append(
            "The Authorization header carries a token, so the cookie is not consulted (even if "
            "the header's token fails)."
        )
    elif found is not None and found[1] == "cookie":
        cookie_used = next((name for name in expected if jar.get(name) == found[0]), None)
    elif not header_token:
        present = [name for name in expected if name in jar]
        if present:
            notes.append(f"The cookie {present[0]} is present but empty.")
        elif jar:
            near = [name for name in jar if "session" in name.lower()]
            listed = ", ".join(sorted(jar))
            notes.append(
                f"No cookie named {' or '.join(expected)}; the request has: {listed}."
                + (f" {near[0]!r} looks like a wrong cookie name." if near else "")
            )
        elif cookies:
            notes.append("The Cookie header holds no name=value pair.")
        else:
            notes.append(f"No Cookie header, so no {' or '.join(expected)} cookie.")
    return notes, cookie_used


# Configuration summary -----------------------------------------------------------------------


def config_summary(config: GuardConfig) -> dict[str, Any]:
    """What the configuration checks, without secrets (the secret key is shown masked)."""
    publishable = config.publishable_key
    instance = None
    if publishable is not None:
        instance = "production" if publishable.startswith("pk_live_") else "development"
    public_bits = config.public_key.key_size if config.public_key is not None else None
    return {
        "key_source": config.key_source,
        "jwks_url": config.resolved_jwks_url,
        "jwt_key_bits": public_bits,
        "publishable_key": publishable,
        "instance": instance,
        "secret_key": (config.secret_key[:8] + "…") if config.secret_key else None,
        "issuer": config.resolved_issuer,
        "authorized_parties": list(config.authorized_parties),
        "audience": list(config.audience),
        "leeway": config.leeway,
        "accept_pending": config.accept_pending,
        "cookie_names": list(config.session_cookie_names),
    }


def _times(claims: Mapping[str, Any] | None, now: float, leeway: float) -> dict[str, Any]:
    times: dict[str, Any] = {"now": {"value": now, "utc": _utc(now)}, "leeway": leeway}
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name) if claims else None
        if _is_number(value):
            times[name] = {
                "value": value,
                "utc": _utc(value),
                "relative": relative_time(name, value, now),
            }
    if claims and _is_number(claims.get("iat")) and _is_number(claims.get("exp")):
        times["lifetime"] = in_words(claims["exp"] - claims["iat"])
    return times


def _session(auth: SessionAuth) -> dict[str, Any]:
    return {
        **auth.summary(),
        "session_status": auth.session_status,
        "authorized_party": auth.authorized_party,
        "token_source": auth.token_source,
    }


# The diagnosis -------------------------------------------------------------------------------


class _Run:
    """Collects the checks of one diagnosis."""

    def __init__(self, guard: Guard, now: float) -> None:
        self.guard = guard
        self.now = now
        self.checks: list[Check] = []
        self.header: dict[str, Any] | None = None
        self.claims: dict[str, Any] | None = None

    def passed(self, name: str, detail: str = "") -> None:
        self.checks.append(Check(name, "passed", detail=detail))

    def failed(
        self,
        name: str,
        error: ClerkGuardError,
        detail: str = "",
        signature: tuple[int, int] | None = None,
    ) -> None:
        cause, fix = explain(
            error,
            guard=self.guard,
            header=self.header,
            claims=self.claims,
            now=self.now,
            step=name,
            signature=signature,
        )
        self.checks.append(
            Check(name, "failed", code=error.code, detail=detail, cause=cause, fix=fix)
        )

    def skipped(self, names: Sequence[str], why: str) -> None:
        self.checks.extend(Check(name, "skipped", detail=why) for name in names)

    def failure(self) -> Check | None:
        return next((check for check in self.checks if check.status == "failed"), None)


_CHECK_EXTRACT = "token found"
_CHECK_FORMAT = "token format and header"
_CHECK_KEY = "signing key"
_CHECK_SIGNATURE = "signature"
_CHECK_SESSION = "session claims"


def check_names(guard: Guard) -> list[str]:
    """Every check ``doctor`` reports, in the order the middleware runs them."""
    claim_names = [name for name, _ in guard.verifier.claim_stages]
    return [
        _CHECK_EXTRACT,
        _CHECK_FORMAT,
        _CHECK_KEY,
        _CHECK_SIGNATURE,
        *claim_names,
        _CHECK_SESSION,
    ]


def _passed_detail(name: str, claims: Mapping[str, Any], config: GuardConfig, now: float) -> str:
    """What a passing claim check saw, in a few words.

    Keyed by the names of :attr:`Verifier.claim_stages`; a stage added there later simply gets
    no detail here until it is described.
    """
    if name == REQUIRED_CLAIMS:
        return f"sub {claims.get('sub')}, sid {claims.get('sid')}: a user's session token"
    if name == LIFETIME:
        nbf = claims.get("nbf")
        times = [relative_time("exp", claims["exp"], now), relative_time("iat", claims["iat"], now)]
        return ", ".join(times + ([relative_time("nbf", nbf, now)] if _is_number(nbf) else []))
    if name == ISSUER_AND_PARTIES:
        if config.resolved_issuer is None:
            issuer = "iss not checked: no issuer configured (set a publishable key or CLERK_ISSUER)"
        else:
            issuer = f"iss {claims.get('iss')} is this instance"
        if not config.authorized_parties:
            party = (
                "azp not checked: no authorized parties configured (set "
                "CLERK_AUTHORIZED_PARTIES in production)"
            )
        else:
            party = f"azp {claims.get('azp')} is allowed"
        audience = "aud matches" if config.audience else "no audience configured"
        return f"{issuer}; {party}; {audience}"
    if name == SESSION_STATUS:
        return f"sts {claims.get('sts')!r}" if "sts" in claims else "no sts claim"
    return ""


def _find_token(
    run: _Run,
    names: Sequence[str],
    token: str | None,
    authorization: Sequence[str],
    cookies: Sequence[str],
    notes: Sequence[str],
) -> tuple[tuple[str, str] | None, list[str], list[str], dict[str, Any]]:
    """The extraction check: the token found (or ``None``), the request's ``Authorization``
    and ``Cookie`` lines as checked, and the report's ``input``."""
    config = run.guard.config
    input_notes = list(notes)
    if token is not None:
        token = token.strip()
        scheme, _, rest = token.partition(" ")
        if scheme.lower() == "bearer" and rest.strip():
            token = rest.strip()
            input_notes.append("Took the token after 'Bearer '; TOKEN is the token alone.")
        if len(token.split()) > 1:
            input_notes.append(
                "The token contains whitespace (a line break or space from copying?): a token "
                "never does."
            )
        authorization, cookies = [f"Bearer {token}"], []
        input_info: dict[str, Any] = {"kind": "token", "source": None, "cookie": None}
    else:
        authorization, cookies = list(authorization), list(cookies)
        input_info = {"kind": "request", "source": None, "cookie": None}

    found: tuple[str, str] | None = None
    extract_error: AuthenticationError | None = None
    try:
        found = run.guard.extract(authorization, cookies)
    except AuthenticationError as exc:
        extract_error = exc
    if found is None and extract_error is None:
        extract_error = _missing_error()
    if token is None:
        extraction, cookie_used = _extraction_notes(config, authorization, cookies, found)
        input_notes.extend(extraction)
        input_info["cookie"] = cookie_used
    if extract_error is not None:
        run.failed(_CHECK_EXTRACT, extract_error, detail=" ".join(input_notes))
        run.skipped(names[1:], "not run: no token")
    else:
        assert found is not None  # noqa: S101 - extract returned a token
        input_info["source"] = found[1]
        if token is not None:
            where = "given directly (checked as 'Authorization: Bearer <token>')"
        elif found[1] == "header":
            where = "from the Authorization header"
        else:
            where = f"from the cookie {input_info['cookie'] or '__session'}"
        run.passed(_CHECK_EXTRACT, f"{where}, {len(found[0])} characters")
    input_info["notes"] = input_notes
    return found, list(authorization), list(cookies), input_info


def diagnose(
    guard: Guard,
    *,
    token: str | None = None,
    authorization: Sequence[str] = (),
    cookies: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> Diagnosis:
    """Run every check of ``guard`` on a token, or on a request's raw header lines, and explain.

    :param token: a bare token, checked as if sent as ``Authorization: Bearer <token>``.
    :param authorization: the request's ``Authorization`` values, when ``token`` is not given.
    :param cookies: the request's ``Cookie`` values, when ``token`` is not given.
    :param notes: remarks about the input to include in the report.
    """
    config = guard.config
    now = config.clock()
    run = _Run(guard, now)
    names = check_names(guard)
    found, authorization, cookies, input_info = _find_token(
        run, names, token, authorization, cookies, notes
    )

    decode_error: str | None = None
    if found is not None:
        run.header, run.claims, decode_error = _peek(found[0])
        _verify_steps(run, found[0], names)

    try:
        auth = guard.authenticate(authorization, cookies)
        actual: ClerkGuardError | None = None
    except ClerkGuardError as exc:
        auth, actual = None, exc
    if actual is not None and run.failure() is None:
        # The middleware refused what every step accepted: report its reason as a step too.
        run.failed("verification (Guard.authenticate)", actual)
    if actual is None and run.failure() is not None:
        input_info["notes"].append(
            "The step-by-step run failed a check but Guard.authenticate accepted the token "
            "(did the clock pass a boundary between the two?)."
        )
    status = error_response(actual, log=False).status if actual is not None else 200
    return Diagnosis(
        input=input_info,
        header=run.header,
        claims=run.claims,
        decode_error=decode_error,
        times=_times(run.claims, now, config.leeway),
        config=config_summary(config),
        checks=run.checks,
        verdict="accepted" if actual is None else "rejected",
        code=actual.code if actual is not None else None,
        http_status=status,
        session=_session(auth) if auth is not None else None,
        fingerprint=fingerprint(found[0]) if found is not None else None,
    )


def diagnose_unconfigured(
    error: ConfigurationError,
    *,
    token: str | None = None,
    authorization: Sequence[str] = (),
    cookies: Sequence[str] = (),
    notes: Sequence[str] = (),
    now: float | None = None,
    leeway: float | None = None,
) -> Diagnosis:
    """What can be said of a token without a working configuration (``error`` says why).

    The token is found and decoded (header, claims, times), and its form and header checked:
    those depend on no setting. Every check that needs the configuration (keys, signature,
    claims) is reported as not run, and the verdict is ``"unverified"``: a token that was not
    verified is neither accepted nor rejected.
    """
    if now is None:
        now = time.time()
    config = GuardConfig(jwks_url=_PLACEHOLDER_JWKS_URL, clock=lambda: now)
    if leeway is not None:
        try:
            config = dataclasses.replace(config, leeway=leeway)
        except ConfigurationError:
            pass  # the leeway may be what is wrong: the times are then shown with the default
    with Guard(config) as guard:
        run = _Run(guard, now)
        names = check_names(guard)
        found, _, _, input_info = _find_token(run, names, token, authorization, cookies, notes)
        decode_error: str | None = None
        if found is not None:
            run.header, run.claims, decode_error = _peek(found[0])
            try:
                parts = guard.verifier.read(found[0])
            except ClerkGuardError as exc:
                run.failed(_CHECK_FORMAT, exc)
            else:
                run.passed(_CHECK_FORMAT, _format_detail(parts.header, parts.kid))
            run.skipped(names[2:], _NO_CONFIGURATION)
    return Diagnosis(
        input=input_info,
        header=run.header,
        claims=run.claims,
        decode_error=decode_error,
        times=_times(run.claims, now, config.leeway),
        config={"error": error.message, "field": error.field, "help": _config_help(error)},
        checks=run.checks,
        verdict="unverified",
        code=error.code,
        http_status=None,
        session=None,
        fingerprint=fingerprint(found[0]) if found is not None else None,
    )


def _config_help(error: ConfigurationError) -> str:
    if error.field in (None, "key_source"):
        return _CONFIG_HELP
    return (
        f"Fix the setting the error names ({error.field}), with its flag or its CLERK_* "
        "environment variable, as your app's configuration needs it too. `clerk-guard doctor "
        "--help` lists every flag."
    )


def _missing_error() -> AuthenticationError:
    return TokenMissingError("No session token in the Authorization header or the cookie.")


def _format_detail(header: Mapping[str, Any], kid: str | None) -> str:
    return f"alg {header.get('alg')}, kid {kid or '(none)'}"


def _key_lookup_detail(guard: Guard, kid: str | None, error: ClerkGuardError) -> str:
    """What the key check looked for and what the key set holds, for a failed lookup."""
    wanted = f"the token's kid {kid!r}" if kid is not None else "no kid in the token's header"
    if guard.jwks is None:
        return wanted
    url = guard.jwks.url
    held = ", ".join(repr(k) for k in sorted(guard.jwks.store.keys))
    if not isinstance(error, TokenInvalidError):  # a 503: no key set, or no fresh one
        if held:
            return f"{wanted}; the key set at {url} holds kid {held} and could not be refreshed"
        return f"{wanted}; the key set at {url} could not be loaded"
    if not held:
        return f"{wanted}; the key set at {url} holds no key"
    return f"{wanted}; the key set at {url} holds kid {held}"


def _verify_steps(run: _Run, token: str, names: Sequence[str]) -> None:
    """The checks after extraction: the verifier's own stages, one by one, as
    :meth:`Verifier.verify` runs them, with the guard's own key lookup. After a failing claim
    stage the next ones still run (a report shows every failing stage; the middleware stops at
    the first, whose code is the verdict's)."""
    guard, verifier, config = run.guard, run.guard.verifier, run.guard.config
    rest = list(names[names.index(_CHECK_FORMAT) :])
    try:
        parts = verifier.read(token)
    except ClerkGuardError as exc:
        run.failed(_CHECK_FORMAT, exc)
        run.skipped(rest[1:], "not run: the token must parse first")
        return
    kid = parts.kid
    run.passed(_CHECK_FORMAT, _format_detail(parts.header, kid))

    try:
        key = config.public_key if guard.key_for is None else guard.key_for(kid)
    except ClerkGuardError as exc:
        run.failed(_CHECK_KEY, exc, detail=_key_lookup_detail(guard, kid, exc))
        run.skipped(rest[2:], "not run: no key to check the signature with")
        return
    assert key is not None  # noqa: S101 - a configuration has a PEM key or a key lookup
    if guard.jwks is None:
        run.passed(_CHECK_KEY, f"the configured PEM key ({key.key_size}-bit RSA; kid not used)")
    else:
        run.passed(_CHECK_KEY, f"kid {kid} from {guard.jwks.url} ({key.key_size}-bit RSA)")

    try:
        claims = run.claims = verifier.signed_claims(parts, key)
    except ClerkGuardError as exc:
        run.failed(_CHECK_SIGNATURE, exc, signature=(len(parts.signature), key.key_size // 8))
        run.skipped(rest[3:], "not run: claims are only read from a verified token")
        return
    run.passed(_CHECK_SIGNATURE, "RS256 signature verifies")

    # Claims are trusted now: every claim stage runs, so one report shows each failing one.
    any_failed = required_failed = False
    for name, check in verifier.claim_stages:
        if name == LIFETIME and required_failed:
            run.skipped([name], "not run: needs the required claims")
            continue
        try:
            check(claims, run.now)
        except ClerkGuardError as exc:
            run.failed(name, exc)
            any_failed = True
            required_failed = name == REQUIRED_CLAIMS
        else:
            run.passed(name, _passed_detail(name, claims, config, run.now))
    if any_failed:
        run.skipped([_CHECK_SESSION], "not run: a claim check failed")
        return
    try:
        auth = SessionAuth.from_claims(claims)
    except AuthenticationError as exc:
        run.failed(_CHECK_SESSION, exc)
        return
    run.passed(_CHECK_SESSION, f"user {auth.user_id}, org {auth.org_id or '(none)'}")


# Text rendering ------------------------------------------------------------------------------

_MARKS = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _wrap(label: str, text: str, width: int = 96, indent: int = 9) -> list[str]:
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=" " * indent + label,
        subsequent_indent=" " * (indent + len(label)),
        break_long_words=False,
        break_on_hyphens=False,
    )


def render_text(diagnosis: Diagnosis) -> str:
    """The human report: decoded parts, times in words, each check, the verdict."""
    lines: list[str] = []
    info = diagnosis.input
    if diagnosis.fingerprint is not None:
        lines.append(
            f"Token: fingerprint {diagnosis.fingerprint} (the token= field of clerk_guard log "
            "lines)"
        )
    for note in info.get("notes", []):
        lines.append(f"Note: {note}")
    if diagnosis.header is not None:
        lines += ["", "Header (decoded, not trusted):", _indent(_pretty(diagnosis.header))]
    if diagnosis.claims is not None:
        lines += ["", "Claims (decoded, not trusted):", _indent(_pretty(diagnosis.claims))]
    if diagnosis.decode_error:
        lines += ["", f"Could not decode: {diagnosis.decode_error}."]
    times = diagnosis.times
    lines += ["", f"Times (now {times['now']['utc']}, leeway {times['leeway']:g} s):"]
    for name in ("iat", "nbf", "exp"):
        if name in times:
            entry = times[name]
            lines.append(f"  {name}  {entry['value']:<12} {entry['utc']}  {entry['relative']}")
    if "lifetime" in times:
        lines.append(f"  lifetime  {times['lifetime']}")
    config = diagnosis.config
    if "error" in config:
        lines += ["", "Configuration: none that works, so the token cannot be verified."]
        lines += _wrap("error: ", config["error"], indent=2)
        lines += _wrap("how:   ", config["help"], indent=2)
    else:
        lines += ["", "Configuration:"]
        source = config["key_source"]
        where = config["jwks_url"] or f"PEM public key, {config['jwt_key_bits']}-bit RSA"
        lines.append(f"  keys          {source}: {where}")
        lines.append(f"  issuer        {config['issuer'] or '(not checked)'}")
        parties = ", ".join(config["authorized_parties"]) or "(not checked)"
        lines.append(f"  azp allowed   {parties}")
        if config["audience"]:
            lines.append(f"  audience      {', '.join(config['audience'])}")
        if config["instance"]:
            lines.append(f"  instance      {config['instance']} ({config['publishable_key']})")
    lines += ["", "Checks, in the order the middleware runs them:"]
    width = max(len(check.name) for check in diagnosis.checks)
    previous = ""
    for check in diagnosis.checks:
        mark = _MARKS[check.status]
        code = f"  [{check.code}]" if check.code else ""
        detail = check.detail if check.status != "failed" else ""
        if check.status == "skipped" and detail == previous:
            detail = ""  # said on the first skipped line already
        else:
            previous = detail if check.status == "skipped" else ""
        lines.append(f"  {mark}  {check.name:<{width}}{code}  {detail}".rstrip())
        if check.status == "failed":
            if check.detail:
                lines += _wrap("found: ", check.detail)
            lines += _wrap("cause: ", check.cause)
            if check.fix:
                lines += _wrap("fix:   ", check.fix)
    lines.append("")
    if diagnosis.verdict == "unverified":
        waiting = sum(check.detail == _NO_CONFIGURATION for check in diagnosis.checks)
        what = (
            f"the {waiting} checks marked skip need a configuration"
            if waiting
            else "no token was found either"
        )
        lines.append(
            f"Verdict: NOT VERIFIED [{diagnosis.code}]: nothing was verified; {what} (see 'how' "
            "above)."
        )
    elif diagnosis.accepted and diagnosis.session is not None:
        session = diagnosis.session
        org = f", org {session['org_id']} ({session['org_role']})" if session["org_id"] else ""
        lines.append(
            f"Verdict: ACCEPTED: the middleware lets this request in as {session['user_id']} "
            f"(session {session['session_id']}{org})."
        )
    else:
        status = diagnosis.http_status
        answer = {401: "401 Invalid Token", 503: "503 Service Unavailable"}.get(
            status or 0, str(status)
        )
        lines.append(f"Verdict: REJECTED [{diagnosis.code}]: the middleware answers {answer}.")
    return "\n".join(lines) + "\n"
