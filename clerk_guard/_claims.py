"""SessionAuth: the verified result, the same object in every adapter."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from ._errors import TokenInvalidError
from ._tokens import TokenSource

__all__ = ["REVERIFICATION_PRESETS", "SessionAuth"]

Scope = Literal["org", "user"]

#: Clerk's named reverification levels: (minutes, level).
REVERIFICATION_PRESETS: Mapping[str, tuple[int, str]] = MappingProxyType(
    {
        "strict_mfa": (10, "multi_factor"),
        "strict": (10, "second_factor"),
        "moderate": (60, "second_factor"),
        "lax": (1440, "second_factor"),
    }
)
_SCOPE_CODES = frozenset({"o", "u", "ou", "uo"})
_SCOPES: Mapping[str, Scope] = MappingProxyType(
    {"o": "org", "org": "org", "organization": "org", "u": "user", "user": "user"}
)


def _malformed(what: str) -> TokenInvalidError:
    return TokenInvalidError(f"Malformed {what} claim.", code="token-invalid-claims")


def _with_org_prefix(value: str) -> str:
    """``admin`` and ``org:admin`` name the same role, as in Clerk's ``has()``."""
    while value.startswith("org:"):
        value = value[4:]
    return "org:" + value


_STRING_OR_NONE = frozenset({str, type(None)})
_new_tuple = tuple.__new__


def _malformed_string(named: tuple[tuple[str, object], ...]) -> TokenInvalidError:
    """The error naming the first ``(name, value)`` whose value is neither a string nor absent."""
    for name, value in named:
        if type(value) not in _STRING_OR_NONE:
            return _malformed(name)
    raise AssertionError("every value is a string or absent")  # pragma: no cover


_Shared = tuple[tuple[str, ...], tuple[str, ...], str | None, tuple[str, ...]]


# The claims below repeat across the users of one organization, role and plan, so their decoding
# is memoised (bounded); malformed input raises every time (lru_cache keeps no exceptions).
@functools.lru_cache(maxsize=1024)
def _decode_shared(
    fea: str | None, pla: str | None, role: str | None, per: str | None, fpm: str | None
) -> _Shared:
    """``(features, plans, org role, v2 permissions)`` from the ``fea`` and ``pla`` claims, the
    role (``o.rol`` or ``org_role``) and the v2 ``o.per``/``o.fpm`` claims."""
    org_features, features = _split_scoped(fea, "fea")
    plans = _split_scoped(pla, "pla")[1]
    permissions = _v2_permissions(per, fpm, org_features)
    return features, plans, _with_org_prefix(role) if role else None, permissions


def _split_scoped(value: str | None, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split ``"o:a,u:b,ou:c"`` into (org entries, ``"o:"``/``"u:"`` names)."""
    if not value:
        return (), ()
    org: list[str] = []
    user: list[str] = []
    for item in value.split(","):
        scope, sep, entry = item.strip().partition(":")
        if not sep or not entry or scope not in _SCOPE_CODES:
            raise _malformed(name)
        if "o" in scope:
            org.append(entry)
        if "u" in scope:
            user.append(entry)
    names = tuple(f"o:{entry}" for entry in org) + tuple(f"u:{entry}" for entry in user)
    return tuple(org), names


def _v2_permissions(
    per: str | None, fpm: str | None, org_features: tuple[str, ...]
) -> tuple[str, ...]:
    """Decode the compact ``o.per``/``o.fpm`` claims of session token v2.

    ``per`` lists permission names; ``fpm`` holds one integer per org-scoped feature of ``fea``,
    whose bit *j* (least significant first) grants ``org:<feature>:<per[j]>``. Anything that does
    not fit that shape fails closed: the token is rejected rather than guessed at.
    """
    if not per or not fpm:
        return ()
    names = [name.strip() for name in per.split(",")]
    masks = fpm.split(",")
    if len(masks) > len(org_features) or not all(names):
        raise _malformed("o.fpm")
    permissions: list[str] = []
    for feature, mask_text in zip(org_features, masks, strict=False):
        mask_text = mask_text.strip()
        if not (mask_text.isascii() and mask_text.isdigit()) or len(mask_text) > 20:
            raise _malformed("o.fpm")
        mask = int(mask_text)
        if mask >> len(names):
            raise _malformed("o.fpm")  # a bit with no permission name behind it
        permissions.extend(
            f"org:{feature}:{name}" for bit, name in enumerate(names) if mask >> bit & 1
        )
    return tuple(permissions)


class SessionAuth(NamedTuple):
    """A verified Clerk session: who is signed in, in which organization, with which rights.

    Immutable and typed. A named tuple rather than a dataclass: one is built for every new token
    and kept in the verified-token cache, and a tuple costs a fraction of a dataclass in both
    time and memory. ``claims`` is the whole verified payload, read-only. ``features`` and
    ``plans`` are Clerk's scoped names (``"o:name"`` for the organization's, ``"u:name"`` for
    the user's).
    """

    user_id: str
    session_id: str
    session_status: str | None
    actor: Mapping[str, Any] | None
    org_id: str | None
    org_role: str | None
    org_slug: str | None
    org_permissions: tuple[str, ...]
    features: tuple[str, ...]
    plans: tuple[str, ...]
    factor_verification_age: tuple[int, int] | None
    authorized_party: str | None
    issuer: str | None
    expires_at: float
    issued_at: float
    not_before: float | None
    claims: Mapping[str, Any]
    token_source: TokenSource | None = None

    @classmethod
    def from_claims(
        cls, claims: Mapping[str, Any], *, token_source: TokenSource | None = None
    ) -> SessionAuth:
        """Build the result from verified claims (v1 or v2 session token); ``claims`` is copied.

        The caller has already checked ``sub``, ``sid``, ``exp`` and ``iat``.

        :raises TokenInvalidError: an organization, feature, plan, ``act`` or ``fva`` claim has a
            shape Clerk never issues.
        """
        return cls._from_own_claims(dict(claims), token_source)

    @classmethod
    def _from_own_claims(
        cls, claims: dict[str, Any], token_source: TokenSource | None
    ) -> SessionAuth:
        """:meth:`from_claims` for a dict nothing else holds (the verifier's, just decoded):
        kept as ``claims`` without a copy."""
        # This runs once per new token, a measurable share of a verification: one lookup per
        # claim, no helper call for a plain string claim.
        get = claims.get
        status, party, issuer = get("sts"), get("azp"), get("iss")
        fea, pla, org_claim = get("fea"), get("pla"), get("o")
        per = fpm = None
        if org_claim is not None and get("v") == 2:
            if type(org_claim) is not dict and not isinstance(org_claim, Mapping):
                raise _malformed("o")
            org_get = org_claim.get
            org_id, role, org_slug = org_get("id"), org_get("rol"), org_get("slg")
            per, fpm = org_get("per"), org_get("fpm")
            permissions: tuple[str, ...] = ()
        else:
            org_id, role, org_slug = get("org_id"), get("org_role"), get("org_slug")
            raw_permissions = get("org_permissions") or ()
            if not isinstance(raw_permissions, (list, tuple)) or not all(
                isinstance(p, str) for p in raw_permissions
            ):
                raise _malformed("org_permissions")
            permissions = tuple(raw_permissions)
        # The string claims, one set operation for all: each a string or absent.
        types = {
            type(status),
            type(party),
            type(issuer),
            type(fea),
            type(pla),
            type(org_id),
            type(role),
            type(org_slug),
            type(per),
            type(fpm),
        }
        if not types <= _STRING_OR_NONE:
            strings = (status, party, issuer, fea, pla, org_id, role, org_slug, per, fpm)
            names = ("sts", "azp", "iss", "fea", "pla", "org id", "org role", "org slug")
            raise _malformed_string(tuple(zip((*names, "o.per", "o.fpm"), strings, strict=True)))
        features, plans, org_role, v2_permissions = _decode_shared(fea, pla, role, per, fpm)
        actor = get("act")
        if actor is not None and type(actor) is not dict and not isinstance(actor, Mapping):
            raise _malformed("act")
        fva = get("fva")
        if fva is not None:
            if (
                not isinstance(fva, (list, tuple))
                or len(fva) != 2
                or type(fva[0]) is not int
                or type(fva[1]) is not int
            ):
                raise _malformed("fva")
            fva = (fva[0], fva[1])
        return _new_tuple(
            cls,
            (
                claims["sub"],
                claims["sid"],
                status,
                MappingProxyType(dict(actor)) if actor is not None else None,
                org_id,
                org_role,
                org_slug,
                permissions or v2_permissions,
                features,
                plans,
                fva,
                party,
                issuer,
                claims["exp"],
                claims["iat"],
                get("nbf"),
                MappingProxyType(claims),
                token_source,
            ),
        )

    def summary(self) -> dict[str, Any]:
        """Who is signed in, as a JSON-ready dict: ``user_id``, ``session_id``, ``org_id``,
        ``org_role`` and ``org_permissions`` (a list). The body of the examples' ``GET /me``."""
        return {
            "user_id": self.user_id,
            "session_id": self.session_id,
            "org_id": self.org_id,
            "org_role": self.org_role,
            "org_permissions": list(self.org_permissions),
        }

    def __repr__(self) -> str:
        # Without the claims, which repeat the rest at length.
        fields = ", ".join(
            f"{name}={value!r}"
            for name, value in zip(self._fields, self, strict=True)
            if name != "claims"
        )
        return f"SessionAuth({fields})"

    def has(
        self,
        *,
        role: str | None = None,
        permission: str | None = None,
        feature: str | None = None,
        plan: str | None = None,
        reverification: str | Mapping[str, Any] | None = None,
    ) -> bool:
        """Check authorization the way Clerk's ``has()`` does.

        ``role``/``permission`` need an active organization (``admin`` and ``org:admin`` are the
        same role). ``feature``/``plan`` take ``"o:name"``/``"u:name"`` (or ``org:``/``user:``)
        to pick a scope, or a bare name for either. ``reverification`` is a preset
        (``"strict_mfa"``, ``"strict"``, ``"moderate"``, ``"lax"``) or
        ``{"level": ..., "after_minutes": ...}``. Every given condition must hold, and at least
        one must be given; anything malformed is ``False``.
        """
        results = [
            self._check_org(role, permission),
            self._check_scoped(feature, self.features),
            self._check_scoped(plan, self.plans),
            self._check_reverification(reverification),
        ]
        given = [result for result in results if result is not None]
        return bool(given) and all(given)

    def _check_org(self, role: str | None, permission: str | None) -> bool | None:
        if role is None and permission is None:
            return None
        if not self.org_id:
            return False
        if role is not None and self.org_role != _with_org_prefix(role):
            return False
        return permission is None or _with_org_prefix(permission) in self.org_permissions

    @staticmethod
    def _check_scoped(value: str | None, names: tuple[str, ...]) -> bool | None:
        if value is None:
            return None
        if not value:
            return False
        scope_name, sep, name = value.partition(":")
        if not sep:
            return f"o:{value}" in names or f"u:{value}" in names
        scope = _SCOPES.get(scope_name)
        if scope is None or not name:
            return False
        return f"{'o' if scope == 'org' else 'u'}:{name}" in names

    def _check_reverification(self, value: str | Mapping[str, Any] | None) -> bool | None:
        if value is None:
            return None
        if isinstance(value, str):
            if value not in REVERIFICATION_PRESETS:
                return False
            minutes, level = REVERIFICATION_PRESETS[value]
        else:
            after, level = value.get("after_minutes"), str(value.get("level"))
            if type(after) is not int or after <= 0:
                return False
            minutes = after
        if self.factor_verification_age is None:
            return False
        first, second = self.factor_verification_age
        first_ok = first != -1 and minutes > first
        second_ok = second != -1 and minutes > second
        if level == "first_factor":
            return first_ok
        if level == "second_factor":
            return second_ok if second != -1 else first_ok
        if level == "multi_factor":
            return first_ok and second_ok if second != -1 else first_ok
        return False
