"""Developer and CI sessions. ``nox`` runs the default ones; CI runs exactly that (.ci/run)."""

from __future__ import annotations

import os
import pathlib

import nox

nox.options.sessions = ["lint", "typing", "tests", "tests_core"]
nox.options.reuse_existing_virtualenvs = True
# An interpreter that is not installed is skipped, not failed (nox fails it under CI=true).
nox.options.error_on_missing_interpreters = False

# pyenv-installed interpreters are not on PATH as python3.X unless shimmed: add them, so the
# matrix sessions find every Python this machine has.
_PYENV = pathlib.Path(os.environ.get("PYENV_ROOT", pathlib.Path.home() / ".pyenv")) / "versions"
if _PYENV.is_dir():
    _extra = [str(path / "bin") for path in sorted(_PYENV.iterdir()) if (path / "bin").is_dir()]
    os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *_extra])

ROOT = pathlib.Path(__file__).parent
# nox.project.load_toml reads TOML with tomllib, or on Python 3.10 with the tomli that nox itself
# depends on there: the noxfile imports nothing nox does not bring (tomllib is 3.11+ only).
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PYTHONS = [
    c.rsplit(" ", 1)[-1]
    for c in PYPROJECT["project"]["classifiers"]
    if c.startswith("Programming Language :: Python :: 3.")
]
ENV = {"PYTHONDEVMODE": "1", "PYTHONWARNINGS": "error::ResourceWarning"}


def _pytest(session: nox.Session, *args: str) -> None:
    session.run("coverage", "run", "-m", "pytest", *args, *session.posargs, env=ENV)


@nox.session
def tests(session: nox.Session) -> None:
    """Every test, every extra installed: no adapter test is skipped."""
    session.install("-e", ".[all,test]")
    _pytest(session)
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report", "--fail-under=85")


@nox.session
def tests_core(session: nox.Session) -> None:
    """The core alone: no web framework installed, adapter tests skip themselves."""
    session.install("-e", ".[test]")
    session.run("pytest", "-q", "-p", "no:randomly", "tests", *session.posargs, env=ENV)


@nox.session(python=PYTHONS)
@nox.parametrize("extra", ["none", "fastapi", "flask", "django", "all"])
def matrix(session: nox.Session, extra: str) -> None:
    """Python x extra, over the interpreters present on this machine."""
    session.install("-e", ".[test]" if extra == "none" else f".[{extra},test]")
    session.run("pytest", "-q", *session.posargs, env=ENV)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    session.install("-e", ".[all]", "mypy>=1.11", "django-stubs>=5", "pytest")
    session.run("mypy")


@nox.session(python=PYTHONS)
@nox.parametrize("django", ["4.2", "5.2", "6.0"])
def django(session: nox.Session, django: str) -> None:
    """Each supported Django release (6.x needs Python 3.12+) against the Django tests."""
    python = tuple(int(part) for part in str(session.python).split("."))
    if django == "6.0" and python < (3, 12):
        session.skip("Django 6 needs Python 3.12 or newer")
    session.install("-e", ".[drf,test]", f"django~={django}.0")
    session.run("pytest", "-q", "tests/django", *session.posargs, env=ENV)
