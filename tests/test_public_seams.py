"""One core with public seams: the adapters and the doctor use the core's public API only.

Every shipped adapter (``asgi``, ``wsgi``, ``starlette``, ``fastapi``, ``flask``,
``django/*``) and the command-line tools (``_doctor``, ``_cli``, ``_demo``) are parsed with
``ast`` and held to three rules:

1. **No private names across modules.** ``from ._guard import _LRU`` or
   ``from .wsgi import _warm`` imports another module's private name.
2. **Only exported names.** A name imported from another ``clerk_guard`` module must be in
   that module's ``__all__`` (``clerk_guard`` itself may also hand out its submodules). A
   private helper module of an adapter package (``clerk_guard/django/_request.py``) is that
   adapter's own business: its siblings import from it freely, no one else does.
3. **No private attributes of the core.** An attribute whose name is private in the core
   (``def _x``, ``class _X``, ``self._x = ...``, a module- or class-level ``_x = ...``) is not
   read, written or called: ``guard._cached(...)``, ``getattr(guard, "_key_now")``. Access on
   ``self``/``cls`` inside a class of the file itself is that class's own state, unless the
   class subclasses something imported from the core (then ``self._cached`` is the core's).

   ``_replace``, ``_asdict``, ``_fields``, ``_field_defaults`` and ``_make`` are always
   allowed: they are the public API of named tuples (``SessionAuth`` is one), underscored only
   so they cannot clash with field names (see the :func:`collections.namedtuple` docs).

Each name taken from the core is also documented: a class or function has a docstring, a
constant a comment right above it (or above the group of assignments it belongs to).

The core (``clerk_guard/__init__.py`` and every other ``clerk_guard/_*.py`` except the tools)
is what the rules protect. What an adapter needs from it is exported by ``clerk_guard``
(``__all__``) or, for the seams only the shipped adapters use, by the core module's own
``__all__``; the README's "Writing an adapter" lists them.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

import clerk_guard

PACKAGE = Path(clerk_guard.__file__).parent
#: The command-line tools: consumers of the core, although their modules are underscored.
TOOLS = ("_doctor.py", "_cli.py", "_demo.py")
ADAPTERS = ("asgi.py", "wsgi.py", "starlette.py", "fastapi.py", "flask.py")
#: Public API of every named tuple (collections.namedtuple docs: the leading underscore only
#: avoids clashes with field names).
NAMEDTUPLE_API = frozenset({"_replace", "_asdict", "_fields", "_field_defaults", "_make"})
#: Calls that reach an attribute by a name given as a string.
ATTRIBUTE_CALLS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_name(path: Path) -> str:
    """``clerk_guard/django/conf.py`` -> ``clerk_guard.django.conf``."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def checked_files() -> list[Path]:
    """The modules held to the rules: the adapters and the tools."""
    files = [PACKAGE / name for name in (*ADAPTERS, *TOOLS)]
    files += sorted((PACKAGE / "django").glob("*.py"))
    return files


def core_files() -> list[Path]:
    """The core: ``__init__.py`` and the underscore modules that are not tools."""
    return [
        path
        for path in sorted(PACKAGE.glob("_*.py"))
        if path.name not in TOOLS and path.name != "__main__.py"
    ]


def private_names(tree: ast.Module) -> set[str]:
    """The private names a core module defines: functions, methods, classes, ``self._x``
    attributes, module- and class-level assignments."""
    names: set[str] = set()

    def targets(node: ast.AST) -> Iterator[ast.expr]:
        if isinstance(node, ast.Assign):
            yield from node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            yield node.target

    def assigned(body: list[ast.stmt]) -> None:
        for statement in body:
            for target in targets(statement):
                for element in ast.walk(target):  # tuples: _a, _b = ...
                    if isinstance(element, ast.Name) and _is_private(element.id):
                        names.add(element.id)

    assigned(tree.body)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if _is_private(node.name):
                names.add(node.name)
            if isinstance(node, ast.ClassDef):
                assigned(node.body)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in {"self", "cls"}
            and _is_private(node.attr)
        ):
            names.add(node.attr)
    return names


def declared_all(tree: ast.Module) -> frozenset[str] | None:
    """A module's ``__all__``, when it declares one as a literal list or tuple."""
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                assert node.value is not None
                return frozenset(ast.literal_eval(node.value))
    return None


@dataclasses.dataclass(frozen=True)
class Package:
    """What the rules need to know about ``clerk_guard``."""

    #: Every private name the core defines.
    core_private: frozenset[str]
    #: Module name -> its ``__all__`` (``None`` when it declares none).
    exports: dict[str, frozenset[str] | None]
    #: The core's module names.
    core: frozenset[str]


def scan_package() -> Package:
    core = core_files()
    core_private: set[str] = set()
    for path in core:
        core_private |= private_names(ast.parse(path.read_text(encoding="utf-8")))
    exports = {
        module_name(path): declared_all(ast.parse(path.read_text(encoding="utf-8")))
        for path in PACKAGE.rglob("*.py")
    }
    return Package(frozenset(core_private), exports, frozenset(module_name(p) for p in core))


def _documented_assignment(tree: ast.Module, lines: list[str], index: int) -> bool:
    """Whether a module-level assignment has a comment above it, or above the run of
    assignments (no blank line between them) it belongs to."""
    body = tree.body
    while index > 0:
        previous, current = body[index - 1], body[index]
        if not isinstance(previous, (ast.Assign, ast.AnnAssign)):
            break
        if previous.end_lineno != current.lineno - 1:
            break
        index -= 1
    above = body[index].lineno - 2
    return above >= 0 and lines[above].lstrip().startswith("#")


def documented_in(source: str, name: str) -> bool | ast.ImportFrom:
    """Whether the definition of ``name`` in ``source`` is documented; the import statement
    when ``source`` only re-exports it."""
    tree = ast.parse(source)
    for index, node in enumerate(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == name:
                return ast.get_docstring(node) is not None
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return _documented_assignment(tree, source.splitlines(), index)
        elif isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names):
            return node
    raise LookupError(f"no definition of {name}")


def documented(module: str, name: str) -> bool:
    """Whether ``name`` of core module ``module`` is documented, following re-exports."""
    path = PACKAGE.parent.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found = documented_in(path.read_text(encoding="utf-8"), name)
    if isinstance(found, ast.ImportFrom):
        return documented(_resolve(module, path.name == "__init__.py", found), name)
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _parent(module: str) -> str:
    return module.rpartition(".")[0]


def _own_helper(importer: str, target: str) -> bool:
    """Whether ``target`` is a module of the importer's own adapter package (not the core's):
    ``clerk_guard.django._request`` for ``clerk_guard.django.middleware``."""
    package = _parent(target)
    return package != "clerk_guard" and package in {importer, _parent(importer)}


def violations(
    source: str, module: str, package: Package, *, is_package: bool = False
) -> list[str]:
    """Every breach of the three rules in ``source``, the text of module ``module``."""
    tree = ast.parse(source)
    found: list[str] = []
    core_imports: set[str] = set()  # local names bound to something imported from the core

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                private_module = parts[0] == "clerk_guard" and any(map(_is_private, parts))
                if private_module and not _own_helper(module, alias.name):
                    found.append(f"line {node.lineno}: import of private module {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            if target != "clerk_guard" and not target.startswith("clerk_guard."):
                continue
            own = _own_helper(module, target)
            exported = package.exports.get(target)
            for alias in node.names:
                name = alias.name
                if target in package.core:
                    core_imports.add(alias.asname or name)
                if _is_private(name):
                    found.append(f"line {node.lineno}: private name {name} from {target}")
                elif own:
                    continue
                elif f"{target}.{name}" in package.exports:
                    continue  # a submodule: from clerk_guard import asgi
                elif exported is None:
                    if target in package.core or _is_private(target.rpartition(".")[2]):
                        found.append(f"line {node.lineno}: {target} has no __all__ ({name})")
                elif name not in exported:
                    found.append(f"line {node.lineno}: {name} is not in {target}.__all__")

    def private_of_core(attr: str) -> bool:
        return attr in package.core_private and attr not in NAMEDTUPLE_API

    def visit(node: ast.AST, own_class: bool) -> None:
        """``own_class``: inside a class of this file that does not subclass the core."""
        if isinstance(node, ast.ClassDef):
            bases = {base.id for base in node.bases if isinstance(base, ast.Name)}
            own_class = not (bases & core_imports)
        if isinstance(node, ast.Attribute) and private_of_core(node.attr):
            on_self = isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"}
            if not (on_self and own_class):
                found.append(f"line {node.lineno}: private attribute {node.attr} of the core")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ATTRIBUTE_CALLS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and private_of_core(node.args[1].value)
        ):
            found.append(
                f"line {node.lineno}: private attribute {node.args[1].value} of the core "
                f"through {node.func.id}()"
            )
        for child in ast.iter_child_nodes(node):
            visit(child, own_class)

    visit(tree, False)
    return found


@pytest.fixture(scope="module")
def package():
    return scan_package()


@pytest.mark.parametrize(
    "path", checked_files(), ids=lambda path: str(path.relative_to(PACKAGE.parent))
)
def test_adapter_uses_public_seams_only(path, package):
    """Each adapter and tool imports only exported names and touches no private core name."""
    problems = violations(
        path.read_text(encoding="utf-8"),
        module_name(path),
        package,
        is_package=path.name == "__init__.py",
    )
    assert problems == []


def core_imports_of(path: Path, package: Package) -> Iterator[tuple[str, str]]:
    """``(core module, name)`` for each name ``path`` imports from the core."""
    module = module_name(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, path.name == "__init__.py", node)
            if target in package.core:
                for alias in node.names:
                    if not alias.name.startswith("__") and f"{target}.{alias.name}" not in (
                        package.exports
                    ):
                        yield target, alias.name


def test_what_adapters_take_from_the_core_is_documented(package):
    """Every core name an adapter or tool imports has a docstring or a comment."""
    undocumented = sorted(
        {
            f"{module}.{name}"
            for path in checked_files()
            for module, name in core_imports_of(path, package)
            if not documented(module, name)
        }
    )
    assert undocumented == []


def test_top_level_api_is_documented():
    """Every name of clerk_guard.__all__ has a docstring or a comment where it is defined."""
    names = [name for name in clerk_guard.__all__ if not name.startswith("__")]
    assert [name for name in names if not documented("clerk_guard", name)] == []


def test_core_modules_declare_all(package):
    """Every core module declares __all__, so that its public seam is explicit."""
    assert [name for name in sorted(package.core) if package.exports[name] is None] == []


def test_core_private_names_are_collected(package):
    """The collector sees private functions, classes, methods and self attributes of the core."""
    assert {"_LRU", "_cached", "_key_now", "_annotated", "_response"} <= package.core_private
    assert "lookup" not in package.core_private


CHECKER_SAMPLE = """
from clerk_guard._guard import AsyncGuard, _LRU
from clerk_guard._http import MISSING_MESSAGE
from clerk_guard.wsgi import _warm
from ._http import error_response
import clerk_guard._guard

def handler(guard, auth):
    guard._cached("t", "header")
    getattr(guard, "_key_now")
    return auth._replace(token_source="header")

class Mine:
    def __init__(self):
        self._cached = {}

    def get(self):
        return self._cached

class Extended(AsyncGuard):
    def get(self):
        return self._cached("t", None)
"""


def test_checker_flags_private_access(package):
    """The checker reports each kind of private access and allows the public ones."""
    problems = violations(CHECKER_SAMPLE, "clerk_guard.sample", package)
    assert problems == [
        "line 2: private name _LRU from clerk_guard._guard",
        "line 3: MISSING_MESSAGE is not in clerk_guard._http.__all__",
        "line 4: private name _warm from clerk_guard.wsgi",
        "line 6: import of private module clerk_guard._guard",
        "line 9: private attribute _cached of the core",
        "line 10: private attribute _key_now of the core through getattr()",
        "line 22: private attribute _cached of the core",
    ]


def test_checker_allows_own_adapter_helpers(package):
    """An adapter package's own private helper module is open to its siblings only."""
    source = "from clerk_guard.django._request import authenticate\n"
    assert violations(source, "clerk_guard.django.middleware", package) == []
    assert violations(source, "clerk_guard.flask", package) == [
        "line 1: clerk_guard.django._request has no __all__ (authenticate)"
    ]


DOCUMENTED_SAMPLE = '''"""A module."""
BARE = 1

#: Documented.
ONE = 1
GROUPED = 2

def bare():
    pass

def described():
    """Documented."""
'''


def test_checker_tells_documented_names():
    """A docstring, a comment above a constant or above its group documents it; nothing else."""
    verdicts = {
        name: documented_in(DOCUMENTED_SAMPLE, name)
        for name in ("BARE", "ONE", "GROUPED", "bare", "described")
    }
    assert verdicts == {
        "BARE": False,
        "ONE": True,
        "GROUPED": True,
        "bare": False,
        "described": True,
    }


def underscore_modules_taken(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The core's underscore modules that ``source`` (module ``module``) imports from."""
    core = {module_name(p) for p in core_files()} - {"clerk_guard"}
    taken = (
        _resolve(module, is_package, node)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    )
    return [target for target in taken if target in core]


@pytest.mark.parametrize(
    "path",
    [PACKAGE / name for name in ADAPTERS] + sorted((PACKAGE / "django").glob("*.py")),
    ids=lambda path: str(path.relative_to(PACKAGE.parent)),
)
def test_adapters_import_the_core_through_its_public_modules(path):
    """An adapter takes the core from ``clerk_guard`` and ``clerk_guard.adapter`` only, never
    from an underscore module of the core, as an adapter outside the package would."""
    source = path.read_text(encoding="utf-8")
    taken = underscore_modules_taken(
        source, module_name(path), is_package=path.name == "__init__.py"
    )
    assert taken == []


def test_underscore_module_imports_are_found():
    """The check above sees relative and absolute imports of the core's underscore modules."""
    source = "from ._guard import build_guard\nfrom clerk_guard._paths import ExcludedPaths\n"
    assert underscore_modules_taken(source, "clerk_guard.asgi") == [
        "clerk_guard._guard",
        "clerk_guard._paths",
    ]
    assert underscore_modules_taken("from clerk_guard.adapter import build_guard", "x") == []
