"""SessionAuth: the verified result, the same object in every adapter."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

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


def _optional_str(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _malformed(name)
    return value


_Scoped = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
_NO_SCOPED: _Scoped = ((), (), ())


def _split_scoped(value: Any, name: str) -> _Scoped:
    """Split ``"o:a,u:b,ou:c"`` into (org entries, user entries, ``"o:"``/``"u:"`` names)."""
    if value is None or value == "":
        return _NO_SCOPED
    if not isinstance(value, str):
        raise _malformed(name)
    return _split_scoped_text(value, name)


# The decoders below are pure functions of claim strings that repeat across the users of one
# organization and plan, so they are memoised (bounded); malformed input raises every time.
@functools.lru_cache(maxsize=512)
def _split_scoped_text(value: str, name: str) -> _Scoped:
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
    return tuple(org), tuple(user), names


def _v2_permissions(org: Mapping[str, Any], org_features: tuple[str, ...]) -> tuple[str, ...]:
    """Decode the compact ``o.per``/``o.fpm`` claims of session token v2.

    ``per`` lists permission names; ``fpm`` holds one integer per org-scoped feature of ``fea``,
    whose bit *j* (least significant first) grants ``org:<feature>:<per[j]>``. Anything that does
    not fit that shape fails closed: the token is rejected rather than guessed at.
    """
    per, fpm = org.get("per"), org.get("fpm")
    if per is None or fpm is None or per == "" or fpm == "":
        return ()
    if not isinstance(per, str) or not isinstance(fpm, str):
        raise _malformed("o.per/o.fpm")
    return _decode_permissions(per, fpm, org_features)


@functools.lru_cache(maxsize=512)
def _decode_permissions(per: str, fpm: str, org_features: tuple[str, ...]) -> tuple[str, ...]:
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


@dataclasses.dataclass(frozen=True)
class SessionAuth:
    """A verified Clerk session: who is signed in, in which organization, with which rights.

    Immutable. ``claims`` is the whole verified payload, read-only.
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
    claims: Mapping[str, Any] = dataclasses.field(repr=False)
    token_source: TokenSource | None = None
    _org_features: tuple[str, ...] = dataclasses.field(default=(), repr=False, compare=False)
    _user_features: tuple[str, ...] = dataclasses.field(default=(), repr=False, compare=False)
    _org_plans: tuple[str, ...] = dataclasses.field(default=(), repr=False, compare=False)
    _user_plans: tuple[str, ...] = dataclasses.field(default=(), repr=False, compare=False)

    @classmethod
    def from_claims(
        cls, claims: Mapping[str, Any], *, token_source: TokenSource | None = None
    ) -> SessionAuth:
        """Build the result from verified claims (v1 or v2 session token).

        The caller has already checked ``sub``, ``sid``, ``exp`` and ``iat``.

        :raises TokenInvalidError: an organization, feature, plan, ``act`` or ``fva`` claim has a
            shape Clerk never issues.
        """
        org_features, user_features, features = _split_scoped(claims.get("fea"), "fea")
        org_plans, user_plans, plans = _split_scoped(claims.get("pla"), "pla")
        org_claim = claims.get("o")
        if claims.get("v") == 2 and org_claim is not None:
            if not isinstance(org_claim, Mapping):
                raise _malformed("o")
            org_id = _optional_str(org_claim, "id")
            role = _optional_str(org_claim, "rol")
            org_slug = _optional_str(org_claim, "slg")
            permissions = _v2_permissions(org_claim, org_features)
        else:
            org_id = _optional_str(claims, "org_id")
            role = _optional_str(claims, "org_role")
            org_slug = _optional_str(claims, "org_slug")
            raw_permissions = claims.get("org_permissions") or ()
            if not isinstance(raw_permissions, (list, tuple)) or not all(
                isinstance(p, str) for p in raw_permissions
            ):
                raise _malformed("org_permissions")
            permissions = tuple(raw_permissions)
        actor = claims.get("act")
        if actor is not None and not isinstance(actor, Mapping):
            raise _malformed("act")
        fva = claims.get("fva")
        if fva is not None:
            if (
                not isinstance(fva, (list, tuple))
                or len(fva) != 2
                or not all(type(age) is int for age in fva)
            ):
                raise _malformed("fva")
            fva = (fva[0], fva[1])
        # Built straight into the instance dict: a frozen dataclass's __init__ costs a
        # object.__setattr__ call per field, a measurable share of a verification.
        auth = object.__new__(cls)
        auth.__dict__.update(
            user_id=claims["sub"],
            session_id=claims["sid"],
            session_status=_optional_str(claims, "sts"),
            actor=MappingProxyType(dict(actor)) if actor is not None else None,
            org_id=org_id,
            org_role=_with_org_prefix(role) if role else None,
            org_slug=org_slug,
            org_permissions=permissions,
            features=features,
            plans=plans,
            factor_verification_age=fva,
            authorized_party=_optional_str(claims, "azp"),
            issuer=_optional_str(claims, "iss"),
            expires_at=claims["exp"],
            issued_at=claims["iat"],
            not_before=claims.get("nbf"),
            claims=MappingProxyType(dict(claims)),
            token_source=token_source,
            _org_features=org_features,
            _user_features=user_features,
            _org_plans=org_plans,
            _user_plans=user_plans,
        )
        return auth

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
            self._check_scoped(feature, self._org_features, self._user_features),
            self._check_scoped(plan, self._org_plans, self._user_plans),
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
    def _check_scoped(
        value: str | None, org: tuple[str, ...], user: tuple[str, ...]
    ) -> bool | None:
        if value is None:
            return None
        if not value:
            return False
        scope_name, sep, name = value.partition(":")
        if not sep:
            return value in org or value in user
        scope = _SCOPES.get(scope_name)
        if scope is None or not name:
            return False
        return name in (org if scope == "org" else user)

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
