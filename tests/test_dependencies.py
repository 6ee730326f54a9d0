"""Honest dependencies: pyproject.toml declares what clerk_guard/ imports, and nothing more.

- Every third-party module the core imports is a runtime dependency.
- Every runtime dependency is imported by the core.
- Every third-party module an adapter imports is a runtime dependency, or comes with the adapter's
  extra: declared in it, or a hard dependency of the framework declared in it (werkzeug comes with
  Flask, starlette with FastAPI, asgiref with Django).

Imports are read with ``ast``, without importing anything: absolute imports, by their top-level
name, less the standard library. Imports under ``if TYPE_CHECKING:`` are not made at run time, and
imports in a ``try`` whose handler catches ``ImportError`` are optional (the test kit's pytest
fixtures): neither needs declaring.
"""

from __future__ import annotations

import ast
import importlib.metadata
import pathlib
import re
import sys

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    tomllib = pytest.importorskip("tomli")

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "clerk_guard"
PROJECT = "clerk-guard"

#: The adapter modules (a path in clerk_guard/, or a folder ending in "/"), each with the extra that
#: installs its framework; the longest match wins. Every other module of clerk_guard/ is the core,
#: whose imports must be runtime dependencies.
ADAPTERS: dict[str, str] = {
    "django/": "django",
    "django/drf.py": "drf",
    "flask.py": "flask",
    "starlette.py": "starlette",
    "fastapi.py": "fastapi",
    "_demo.py": "demo",
}

#: Modules that come with a framework as one of its own hard dependencies, so an extra declaring
#: the framework covers them (``test_framework_bundles_hold`` checks it against the installed
#: framework's metadata). Declaring them again would only risk conflicting with the framework's
#: own pins (FastAPI pins Starlette's versions).
FRAMEWORK_BUNDLES: dict[str, dict[str, str]] = {
    # framework distribution -> {module: distribution it comes from}
    "flask": {"werkzeug": "werkzeug"},
    "fastapi": {"starlette": "starlette"},
    "django": {"asgiref": "asgiref"},
}

#: Distribution names whose import name is not the normalised distribution name.
IMPORT_NAMES: dict[str, str] = {
    "pyjwt": "jwt",
    "djangorestframework": "rest_framework",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def import_name(distribution: str) -> str:
    name = _normalise(distribution)
    return IMPORT_NAMES.get(name, name.replace("-", "_"))


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def runtime_requirements() -> list[Requirement]:
    return [Requirement(text) for text in _pyproject()["project"]["dependencies"]]


def extra_distributions(extra: str) -> set[str]:
    """The distributions an extra installs directly, with ``clerk-guard[...]`` expanded."""
    extras = _pyproject()["project"]["optional-dependencies"]
    found: set[str] = set()
    pending, seen = [extra], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        assert name in extras, f"pyproject.toml has no extra {name!r}"
        for text in extras[name]:
            requirement = Requirement(text)
            if _normalise(requirement.name) == PROJECT:
                pending.extend(requirement.extras)
            else:
                found.add(_normalise(requirement.name))
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = {"ImportError", "ModuleNotFoundError"}
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(kind, ast.Name) and kind.id in names for kind in kinds)


class _Imports(ast.NodeVisitor):
    """The top-level names of the absolute imports made at run time, not guarded as optional."""

    def __init__(self) -> None:
        self.modules: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        if any(_catches_import_error(handler) for handler in node.handlers):
            # Optional imports: the body may fail. What runs after it is still checked.
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.modules.update(alias.name.partition(".")[0] for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.modules.add(node.module.partition(".")[0])


def third_party_imports(source: str) -> set[str]:
    """The third-party modules a source file imports at run time (not optionally)."""
    visitor = _Imports()
    visitor.visit(ast.parse(source))
    return {
        module
        for module in visitor.modules
        if module not in sys.stdlib_module_names and module not in ("__future__", "clerk_guard")
    }


def _covers(entry: str, relative: str) -> bool:
    return relative == entry or (entry.endswith("/") and relative.startswith(entry))


def adapter_extra(path: pathlib.Path) -> str | None:
    """The extra of an adapter module, or ``None`` for a module of the core."""
    relative = path.relative_to(PACKAGE).as_posix()
    matches = [entry for entry in ADAPTERS if _covers(entry, relative)]
    return ADAPTERS[max(matches, key=len)] if matches else None


def _modules() -> list[pathlib.Path]:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert modules, "no module found under clerk_guard/"
    return modules


def core_imports() -> dict[str, set[str]]:
    """Third-party module -> the core files importing it."""
    found: dict[str, set[str]] = {}
    for path in _modules():
        if adapter_extra(path) is None:
            for module in third_party_imports(path.read_text(encoding="utf-8")):
                found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


def test_core_imports_are_runtime_dependencies():
    """A third-party import in the core needs a runtime dependency in pyproject.toml."""
    declared = {import_name(requirement.name) for requirement in runtime_requirements()}
    undeclared = {
        module: sorted(files) for module, files in core_imports().items() if module not in declared
    }
    assert not undeclared, (
        f"imported by the core but not in [project] dependencies: {undeclared}. Declare them, or "
        "move the import into an adapter covered by an extra."
    )


def test_runtime_dependencies_are_imported_by_the_core():
    """A runtime dependency the core never imports is weight every install carries for nothing."""
    imported = set(core_imports())
    unused = [
        requirement.name
        for requirement in runtime_requirements()
        if import_name(requirement.name) not in imported
    ]
    assert not unused, (
        f"declared in [project] dependencies but never imported by the core: {unused}. Drop them, "
        "or move them to the extra or the test/bench requirements that use them."
    )


@pytest.mark.parametrize(
    "path",
    [path for path in _modules() if adapter_extra(path) is not None],
    ids=lambda path: path.relative_to(PACKAGE).as_posix(),
)
def test_adapter_imports_are_covered_by_their_extra(path):
    """An adapter's framework imports come with its extra (or with the core)."""
    extra = adapter_extra(path)
    covered = {import_name(requirement.name) for requirement in runtime_requirements()}
    for distribution in extra_distributions(extra):
        covered.add(import_name(distribution))
        covered.update(FRAMEWORK_BUNDLES.get(distribution, {}))
    missing = third_party_imports(path.read_text(encoding="utf-8")) - covered
    assert not missing, f"{path.name} imports {sorted(missing)}, which the extra {extra!r} lacks"


@pytest.mark.parametrize("framework", sorted(FRAMEWORK_BUNDLES))
def test_framework_bundles_hold(framework):
    """Each module counted as coming with a framework is a hard dependency of it."""
    try:
        requirements = importlib.metadata.requires(framework) or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{framework} is not installed")
    hard = {
        _normalise(requirement.name)
        for requirement in map(Requirement, requirements)
        if requirement.marker is None or "extra" not in str(requirement.marker)
    }
    for module, distribution in FRAMEWORK_BUNDLES[framework].items():
        assert _normalise(distribution) in hard, f"{framework} does not depend on {module}"


def test_the_check_sees_an_undeclared_import():
    """The scan finds what these tests must refuse, and leaves out what needs no declaring."""
    source = (
        "from __future__ import annotations\n"
        "import json, os.path\n"
        "from typing import TYPE_CHECKING\n"
        "import jwt\n"
        "from httpx import Client\n"
        "from . import _errors\n"
        "from clerk_guard import _config\n"
        "if TYPE_CHECKING:\n"
        "    from _typeshed.wsgi import StartResponse\n"
        "try:\n"
        "    import pytest\n"
        "except ImportError:\n"
        "    pytest = None\n"
        "def lazy():\n"
        "    import uvicorn\n"
    )
    assert third_party_imports(source) == {"jwt", "httpx", "uvicorn"}
    assert import_name("PyJWT") == "jwt"
    assert "jwt" not in {import_name(r.name) for r in runtime_requirements()}


def test_adapters_are_mapped_to_existing_modules():
    """Every adapter entry names a module that exists, so a rename cannot silently make an
    adapter part of the core (or the reverse)."""
    modules = [path.relative_to(PACKAGE).as_posix() for path in _modules()]
    for entry in ADAPTERS:
        assert any(_covers(entry, relative) for relative in modules), entry
