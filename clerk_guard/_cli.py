"""The ``clerk-guard`` command: ``doctor``, ``jwks``, ``mint`` and ``demo``.

Exit status: 0 success (token accepted, keys loaded, token minted), 1 failure (token rejected,
keys unavailable), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import __version__
from ._config import MIN_RSA_BITS, GuardConfig
from ._doctor import (
    Diagnosis,
    diagnose,
    diagnose_unconfigured,
    explain,
    in_words,
    render_text,
    split_cookie_lines,
    split_header_lines,
)
from ._errors import ConfigurationError, KeysUnavailableError
from ._guard import Guard
from ._jwks import jwks_summary

if TYPE_CHECKING:
    from .testing import LocalIssuer

__all__ = ["UsageError", "build_parser", "config_from_args", "local_issuer", "main"]

#: Bound on what ``doctor -`` reads from stdin; a session token is under 8 KiB.
_MAX_STDIN = 1 << 20
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Lifetime of minted tokens by default: long enough to paste into curl a few times. Clerk's own
#: session tokens live 60 s and are refreshed by its frontend.
DEFAULT_LIFETIME = 3600


class UsageError(Exception):
    """Bad command-line input: reported on stderr with exit status 2."""


# Configuration from flags ---------------------------------------------------------------------


def _read_pem_argument(value: str) -> str:
    """``--jwt-key`` value: a PEM, or ``@path`` to a PEM file (a private key gives its public)."""
    if not value.startswith("@"):
        return value
    path = Path(value[1:]).expanduser()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--jwt-key {value}: cannot read {path}: {exc}") from None
    if "PRIVATE KEY" not in text:
        return text
    key = _load_private_key(path, text.encode())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode("ascii")


def config_from_args(args: argparse.Namespace) -> GuardConfig:
    """A :class:`GuardConfig` from the ``CLERK_*`` environment (unless ``--no-env``) and flags.

    :raises ConfigurationError: the resulting configuration cannot work.
    """
    overrides: dict[str, Any] = {}
    for name in ("publishable_key", "secret_key", "jwks_url", "api_url", "issuer"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.jwt_key is not None:
        overrides["jwt_key"] = _read_pem_argument(args.jwt_key)
    if args.authorized_party:
        overrides["authorized_parties"] = tuple(args.authorized_party)
    if args.audience:
        overrides["audience"] = tuple(args.audience)
    if args.leeway is not None:
        overrides["leeway"] = args.leeway
    if args.at is not None:
        at = args.at
        overrides["clock"] = lambda: at
    environ: dict[str, str] | None = {} if args.no_env else None
    return GuardConfig.from_env(environ, **overrides)


def _unix_time(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected Unix seconds or an ISO 8601 time; got {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds; got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"expected a finite, non-negative number; got {value!r}")
    return number


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "configuration",
        "Read from the CLERK_* environment variables as the middleware's GuardConfig.from_env() "
        "does; each flag overrides its variable.",
    )
    group.add_argument("--publishable-key", metavar="PK", help="pk_test_… or pk_live_…")
    group.add_argument("--secret-key", metavar="SK", help="sk_… (keys from the Backend API)")
    group.add_argument(
        "--jwt-key",
        metavar="PEM",
        help="the PEM public key (networkless), or @FILE to read it (a private key file, as "
        "made by `mint --key-file`, gives its public key)",
    )
    group.add_argument("--jwks-url", metavar="URL", help="an explicit JWKS URL")
    group.add_argument("--api-url", metavar="URL", help="Backend API base URL")
    group.add_argument("--issuer", metavar="ISS", help="the exact iss to require")
    group.add_argument(
        "--authorized-party",
        metavar="ORIGIN",
        action="append",
        help="an allowed azp origin (repeatable)",
    )
    group.add_argument(
        "--audience", metavar="AUD", action="append", help="a required aud (repeatable)"
    )
    group.add_argument("--leeway", type=_seconds, metavar="SECONDS", help="clock skew (default 5)")
    group.add_argument(
        "--at",
        type=_unix_time,
        metavar="UNIX_TIME",
        help="verify at this instant instead of now (Unix seconds or ISO 8601)",
    )
    group.add_argument(
        "--no-env", action="store_true", help="ignore the CLERK_* environment variables"
    )


# Output helpers -------------------------------------------------------------------------------


def _write(stream: TextIO, text: str) -> None:
    """Write a line that may hold anything a pasted token decodes to: a character the stream
    cannot encode (an unpaired surrogate, or non-ASCII on an ASCII terminal) is shown as its
    escape (``\\ud800``), which is also valid inside a JSON string."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    text = text.encode(encoding, "backslashreplace").decode(encoding)
    stream.write(text if text.endswith("\n") else text + "\n")
    stream.flush()


def _out(text: str) -> None:
    _write(sys.stdout, text)


def _err(text: str) -> None:
    _write(sys.stderr, text)


def _json(value: Any) -> None:
    _out(json.dumps(value, indent=2, ensure_ascii=False))


@contextlib.contextmanager
def _library_logs(verbose: bool) -> Iterator[None]:
    """Show clerk_guard's log lines with ``--verbose``; otherwise keep them off the terminal.

    The report already says everything the log lines would; without a handler, Python would
    print the key-fetch warnings to stderr on its own.
    """
    logger = logging.getLogger("clerk_guard")
    handler: logging.Handler
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        previous_level = logger.level
        logger.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()
        previous_level = logger.level
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


# doctor ---------------------------------------------------------------------------------------


def _read_stdin() -> str:
    data = sys.stdin.read(_MAX_STDIN + 1)
    if len(data) > _MAX_STDIN:
        raise UsageError("stdin holds more than 1 MiB: that is not a session token.")
    return data


def _cmd_doctor(args: argparse.Namespace) -> int:
    raw_headers: list[str] = args.header or []
    raw_cookies: list[str] = args.cookie or []
    if args.token is not None and (raw_headers or raw_cookies):
        raise UsageError("give a TOKEN or --header/--cookie, not both.")
    if args.token is None and not (raw_headers or raw_cookies):
        raise UsageError(
            "give a TOKEN, '-' to read it from stdin, or the raw request with --header "
            "'Authorization: …' and/or --cookie '…'."
        )
    token: str | None = None
    if args.token is not None:
        token = (_read_stdin() if args.token == "-" else args.token).strip()
        if not token:
            raise UsageError("the token is empty.")
    authorization, cookies, notes = split_header_lines(raw_headers)
    cookies += split_cookie_lines(raw_cookies)
    try:
        config = config_from_args(args)
    except ConfigurationError as exc:
        # Still decode and show the token, and say what could not be checked and why.
        diagnosis = diagnose_unconfigured(
            exc,
            token=token,
            authorization=authorization,
            cookies=cookies,
            notes=notes,
            now=args.at,
            leeway=args.leeway,
        )
        _report(args, diagnosis)
        _err(f"clerk-guard doctor: configuration error: {exc.message}")
        return 2
    with Guard(config) as guard:
        diagnosis = diagnose(
            guard, token=token, authorization=authorization, cookies=cookies, notes=notes
        )
    _report(args, diagnosis)
    return 0 if diagnosis.accepted else 1


def _report(args: argparse.Namespace, diagnosis: Diagnosis) -> None:
    if args.json:
        _json(diagnosis.to_json())
    else:
        _out(render_text(diagnosis))


# jwks -----------------------------------------------------------------------------------------


def _cmd_jwks(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with Guard(config) as guard:
        if guard.jwks is None:
            key = config.public_key
            assert key is not None  # noqa: S101 - no JWKS client means a PEM key
            report: dict[str, Any] = {
                "key_source": config.key_source,
                "url": None,
                "issuer": config.resolved_issuer,
                "fetched_at": None,
                "cache_age": None,
                "ttl": None,
                "keys": [{"kid": None, "bits": key.key_size}],
            }
        else:
            try:
                guard.jwks.warm_up()
            except KeysUnavailableError as exc:
                cause, fix = explain(exc, guard=guard, step="signing key")
                if args.json:
                    _json(
                        {
                            "key_source": config.key_source,
                            "url": guard.jwks.url,
                            "error": {"code": exc.code, "cause": cause, "fix": fix},
                        }
                    )
                else:
                    _err(f"clerk-guard jwks: [{exc.code}] {cause}\n  fix: {fix}")
                return 1
            store = guard.jwks.store
            report = {
                "key_source": config.key_source,
                "url": guard.jwks.url,
                "issuer": config.resolved_issuer,
                "fetched_at": store.fetched_at,
                "cache_age": max(0.0, config.clock() - store.fetched_at),
                "ttl": config.jwks_ttl,
                "keys": jwks_summary(store.keys),
            }
    if args.json:
        _json(report)
        return 0
    lines = [f"Keys ({report['key_source']}):"]
    if report["url"] is None:
        lines.append("  source     the configured PEM public key (CLERK_JWT_KEY); no network")
    else:
        lines.append(f"  source     {report['url']}")
        lines.append(
            f"  cache age  {in_words(report['cache_age'])} (refreshed after "
            f"{in_words(report['ttl'])})"
        )
    lines.append(f"  issuer     {report['issuer'] or '(not checked)'}")
    lines.append("")
    width = max([len(str(entry["kid"])) for entry in report["keys"]] + [3])
    lines.append(f"  {'kid':<{width}}  bits")
    for entry in report["keys"]:
        kid = entry["kid"] if entry["kid"] is not None else "-"
        lines.append(f"  {kid:<{width}}  {entry['bits']}")
    _out("\n".join(lines))
    return 0


# mint -----------------------------------------------------------------------------------------


def _load_private_key(path: Path, data: bytes) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path} is not an unencrypted PEM private key ({exc}).") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_RSA_BITS:
        raise UsageError(f"{path} must hold an RSA private key of {MIN_RSA_BITS} bits or more.")
    return key


def load_or_create_key(path: Path) -> tuple[rsa.RSAPrivateKey, bool]:
    """The RSA private key in ``path``, created (mode 0600) when the file does not exist.

    :returns: the key, and whether it was just created.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    else:
        return _load_private_key(path, data), False
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc}") from None
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    return key, True


def local_issuer(
    key_file: Path | None = None, *, frontend_api: str = "clerk.local-issuer.test"
) -> tuple[LocalIssuer, bool]:
    """A :class:`LocalIssuer`, signing with the key kept in ``key_file`` when given.

    :returns: the issuer, and whether the key file was just created.
    """
    from .testing import LocalIssuer  # imported here: it loads pytest when installed

    try:
        if key_file is None:
            return LocalIssuer(frontend_api=frontend_api), False
        key, created = load_or_create_key(key_file)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # The same key file always gives the same kid, so a JWKS served from it stays stable.
        kid = "ins_local" + hashlib.sha256(spki).hexdigest()[:18]
        issuer = LocalIssuer(frontend_api=frontend_api, kid=kid, private_key=key)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return issuer, created


def _escaped_pem(pem: str) -> str:
    """A PEM as a ``\\n``-escaped one-liner, the form ``.env`` files hold."""
    return pem.strip().replace("\n", "\\n")


def _parse_claim(value: str) -> tuple[str, Any]:
    name, sep, raw = value.partition("=")
    if not sep or not name:
        raise UsageError(f"--claim takes NAME=VALUE; got {value!r}.")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def _cmd_mint(args: argparse.Namespace) -> int:
    key_file = Path(args.key_file).expanduser() if args.key_file else None
    issuer, created = local_issuer(key_file, frontend_api=args.frontend_api)
    extra = dict(_parse_claim(value) for value in args.claim or ())
    lifetime = args.lifetime
    now = time.time()
    if args.expired:
        now -= lifetime + 60  # so exp is a minute ago
    role = args.role
    if role is not None and not role.startswith("org:"):
        role = "org:" + role
    if (role or args.permission or args.org_slug) and args.org is None:
        raise UsageError("--role, --permission and --org-slug need --org ORG_ID.")
    try:
        token = issuer.mint(
            user_id=args.user,
            session_id=args.session,
            version=2 if args.v2 else 1,
            lifetime=lifetime,
            now=now,
            azp=None if args.no_azp else args.azp,
            org_id=args.org,
            org_role=role,
            org_slug=args.org_slug,
            org_permissions=args.permission or None,
            **extra,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    _out(token)
    if not args.quiet:
        _mint_hints(args, issuer, key_file, created, now + lifetime)
    return 0


def _mint_hints(
    args: argparse.Namespace,
    issuer: LocalIssuer,
    key_file: Path | None,
    created: bool,
    expires: float,
) -> None:
    now = time.time()
    when = f"expires in {in_words(expires - now)}" if expires > now else "already expired"
    lines = [
        f"clerk-guard mint: a development token for {args.user} (session {args.session}), {when}.",
    ]
    if key_file is None:
        lines.append(
            "The signing key lives in memory only: later tokens get another key. Pass "
            "--key-file PATH to keep one."
        )
    elif created:
        lines.append(f"Created the signing key {key_file} (keep it out of version control).")
    lines += [
        f"Verify it with this configuration (local issuer {issuer.issuer}):",
        f"  CLERK_PUBLISHABLE_KEY={issuer.publishable_key}",
        f'  CLERK_JWT_KEY="{_escaped_pem(issuer.public_pem)}"',
    ]
    if not args.no_azp and args.azp:
        lines.append(f"  CLERK_AUTHORIZED_PARTIES={args.azp}")
    if key_file is not None:
        lines += [
            "Check it:",
            f"  clerk-guard doctor --no-env --publishable-key {issuer.publishable_key} "
            f'--jwt-key @{key_file} "$TOKEN"',
        ]
    _err("\n".join(lines))


# demo -----------------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.host not in _LOOPBACK_HOSTS:
        raise UsageError(
            "the demo mints tokens for anyone who asks, so it only listens on loopback: "
            f"--host must be one of {', '.join(_LOOPBACK_HOSTS)}."
        )
    if not 0 < args.port < 65536:
        raise UsageError("--port must be between 1 and 65535.")
    try:
        demo = importlib.import_module("clerk_guard._demo")
        importlib.import_module("uvicorn")
    except ImportError as exc:
        missing = exc.name or "fastapi"
        _err(
            f"clerk-guard demo needs FastAPI and uvicorn ({missing} is not installed):\n"
            "  pip install 'clerk-guard[demo]'"
        )
        return 2
    key_file = Path(args.key_file).expanduser() if args.key_file else None
    issuer, _ = local_issuer(key_file)
    result: int = demo.serve(issuer=issuer, host=args.host, port=args.port)
    return result


# The parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``clerk-guard`` argument parser, with one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="clerk-guard",
        description="Check, inspect and mint Clerk session tokens the way clerk-guard verifies "
        "them.",
        epilog="Exit status: 0 accepted/ok, 1 rejected/unavailable, 2 usage or configuration "
        "error.",
    )
    parser.add_argument("--version", action="version", version=f"clerk-guard {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show clerk_guard's log lines on stderr"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    doctor = commands.add_parser(
        "doctor",
        help="explain why a token is or is not accepted",
        description="Decode a token (without trusting it), then run every check of the "
        "middleware in its order and explain the first failure: its cause and its fix. "
        "Without a working configuration it still decodes the token, lists the checks that "
        "need one, and exits with status 2.",
    )
    doctor.add_argument(
        "token", nargs="?", metavar="TOKEN", help="the session token, or '-' to read stdin"
    )
    doctor.add_argument(
        "--header",
        action="append",
        metavar="'NAME: VALUE'",
        help="a raw request header instead of TOKEN, e.g. 'Authorization: Bearer …' "
        "(repeatable; Authorization and Cookie are read)",
    )
    doctor.add_argument(
        "--cookie",
        action="append",
        metavar="COOKIES",
        help="a raw Cookie header value instead of TOKEN, e.g. '__session=…; other=1'",
    )
    doctor.add_argument("--json", action="store_true", help="a stable JSON report for machines")
    _add_config_flags(doctor)
    doctor.set_defaults(handler=_cmd_doctor)

    jwks = commands.add_parser(
        "jwks",
        help="fetch and show the instance's signing keys",
        description="Fetch the key set the middleware would use and list its keys.",
    )
    jwks.add_argument("--json", action="store_true", help="JSON output")
    _add_config_flags(jwks)
    jwks.set_defaults(handler=_cmd_jwks)

    mint = commands.add_parser(
        "mint",
        help="make a development session token from a local issuer",
        description="Print a Clerk-shaped session token signed by a local issuer (stdout: the "
        "token only, so $(clerk-guard mint) works; hints on stderr). For development and "
        "tests only.",
    )
    mint.add_argument("--user", default="user_2test", metavar="USER_ID", help="sub")
    mint.add_argument("--session", default="sess_2test", metavar="SESSION_ID", help="sid")
    mint.add_argument("--org", metavar="ORG_ID", help="the active organization")
    mint.add_argument("--org-slug", metavar="SLUG", help="the organization's slug")
    mint.add_argument("--role", metavar="ROLE", help="organization role, e.g. admin or org:admin")
    mint.add_argument(
        "--permission",
        action="append",
        metavar="PERMISSION",
        help="an organization permission, e.g. org:invoices:read (repeatable)",
    )
    mint.add_argument(
        "--lifetime",
        type=_seconds,
        default=DEFAULT_LIFETIME,
        metavar="SECONDS",
        help=f"seconds until exp (default {DEFAULT_LIFETIME}; Clerk's own tokens live 60)",
    )
    mint.add_argument("--v2", action="store_true", help="version 2 claims (compact o, fea)")
    mint.add_argument(
        "--azp", default="http://localhost:3000", metavar="ORIGIN", help="the azp claim"
    )
    mint.add_argument("--no-azp", action="store_true", help="leave azp out")
    mint.add_argument("--expired", action="store_true", help="a token that expired a minute ago")
    mint.add_argument(
        "--claim",
        action="append",
        metavar="NAME=VALUE",
        help="add a claim (VALUE as JSON when it parses, else a string; repeatable)",
    )
    mint.add_argument(
        "--key-file",
        metavar="PATH",
        help="PEM private key to sign with, created if missing, so tokens keep verifying",
    )
    mint.add_argument(
        "--frontend-api",
        default="clerk.local-issuer.test",
        metavar="HOST",
        help="the local issuer's host (iss is https://HOST)",
    )
    mint.add_argument("-q", "--quiet", action="store_true", help="no hints on stderr")
    mint.set_defaults(handler=_cmd_mint)

    demo = commands.add_parser(
        "demo",
        help="run a demo app protected by clerk-guard against a local issuer",
        description="Serve a small FastAPI app (the routes of the examples plus a page at /) "
        "protected by clerk-guard, against a local issuer: no Clerk account, no network. "
        "Prints ready-to-paste curl and doctor commands. Needs clerk-guard[demo] "
        "(FastAPI and uvicorn).",
    )
    demo.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    demo.add_argument(
        "--key-file", metavar="PATH", help="keep the issuer's key here, so tokens survive restarts"
    )
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``clerk-guard`` with ``argv`` (default: the process arguments); return the status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return _exit_code(exc.code)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    with _library_logs(args.verbose):
        try:
            result: int = args.handler(args)
        except UsageError as exc:
            _err(f"clerk-guard {args.command}: {exc}")
            return 2
        except ConfigurationError as exc:
            _err(f"clerk-guard {args.command}: configuration error: {exc.message}")
            return 2
        except KeyboardInterrupt:
            return 130
    return result
