"""The architecture itself, checked from the source (issue 23, "Untie the spine").

Every import in src/backprop counts, wherever it sits: at the top of a module, inside a
function, or under ``if TYPE_CHECKING:`` (a type-only import is still a dependency: the
reader and mypy follow it, and it is how a cycle hides). The checks:

1. no import cycle among backprop's modules (package ``__init__``s included);
2. no private name imported across modules, and no private attribute read on anything but
   ``self``/``cls``/``super()`` (the standard library's own few excepted);
3. a function-local import of backprop's own modules says why (a comment on its line or the
   line above: the start-up cost it saves), and there are few of them.

Each starts as a ratchet: today's exceptions are listed below, a new one fails, and so does
a listed one that no longer exists, so the lists shrink with the code. The checker functions
are tested on small synthetic packages at the end, so each check is seen to fail.
"""

from __future__ import annotations

import ast
import functools
import io
import tokenize
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "backprop"

# ------------------------------------------------------------------------------------------
# Ratchets: today's exceptions. Remove an entry when its cause is gone (the tests say when).

#: Import cycles (strongly connected components) allowed for now: each must exist as listed.
ALLOWED_CYCLES: list[frozenset[str]] = []

#: Private names crossing a module boundary, allowed for now: "module: expression" -> count.
ALLOWED_PRIVATE: Counter[str] = Counter()

#: Function-local imports of backprop's own modules without a comment, per module: the
#: count must match (fewer fails too, so that the number comes down with the code).
ALLOWED_UNCOMMENTED_LOCAL_IMPORTS: dict[str, int] = {}

#: The most commented function-local imports of backprop's own modules in src/backprop
#: (the uncommented ones above are on their way out; once gone, this caps them all).
MAX_LOCAL_IMPORTS = 4

#: Other packages' private names the code may use (no public spelling).
STDLIB_PRIVATE = frozenset(
    {
        "argparse._SubParsersAction",  # the type of add_subparsers(), for annotations
        "sys._getframe",  # the caller's frame (warning stack levels): no public one
        "os._exit",  # exit a forked child without running the parent's cleanup
        # scikit-learn's helpers for estimators built on it, as its own MLP uses them:
        "sklearn.utils.validation._check_sample_weight",
        "sklearn.utils.optimize._check_optimize_result",
    }
)

#: The standard library's private instance attributes the code may read, on any object.
STDLIB_PRIVATE_ATTRIBUTES = {
    "_actions": "argparse.ArgumentParser",  # a parser's arguments: no public accessor
}

# ------------------------------------------------------------------------------------------
# The checker


@dataclass(frozen=True)
class Import:
    """One import statement's edge: ``importer`` depends on ``imported``."""

    importer: str
    imported: str
    lineno: int
    local: bool  # inside a function (runs when called, not at import)
    type_only: bool  # under ``if TYPE_CHECKING:``
    commented: bool  # a comment on its line or the line just above


def modules_of(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root``, by dotted name (``__init__`` as the package)."""
    out: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _comment_lines(source: str) -> tuple[set[int], set[int]]:
    """Lines holding a comment, and lines holding only one (``#`` in a string is none)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    comments = [t for t in tokens if t.type == tokenize.COMMENT]
    return (
        {t.start[0] for t in comments},
        {t.start[0] for t in comments if not t.line[: t.start[1]].strip()},
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(
    node: ast.AST, local: bool = False, type_only: bool = False
) -> Iterator[tuple[ast.AST, bool, bool]]:
    """Every node under ``node``, with whether it is in a function / a TYPE_CHECKING block."""
    for child in ast.iter_child_nodes(node):
        yield child, local, type_only
        in_function = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield stmt, local, True
                yield from _walk(stmt, in_function, True)
            for stmt in child.orelse:
                yield stmt, local, type_only
                yield from _walk(stmt, in_function, type_only)
        else:
            yield from _walk(child, in_function, type_only)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest of ``name`` and its parents that is one of ``modules``, or None."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def _base_of(node: ast.ImportFrom, importer: str, modules: dict[str, Path]) -> str:
    """The absolute module a ``from X import ...`` names as X (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    is_package = modules[importer].name == "__init__.py"
    parts = importer.split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    return ".".join(parts[:keep] + ([node.module] if node.module else []))


def _targets(
    node: ast.Import | ast.ImportFrom, importer: str, modules: dict[str, Path]
) -> Iterator[tuple[str, str | None]]:
    """(module imported, name taken from it or None) for each name of an import statement.

    ``from p import x`` is the submodule ``p.x`` when there is one, else ``p`` itself.
    """
    if isinstance(node, ast.Import):
        for alias in node.names:
            target = _resolve(alias.name, modules)
            if target is not None:
                yield target, None
        return
    base = _base_of(node, importer, modules)
    for alias in node.names:
        if f"{base}.{alias.name}" in modules:
            yield f"{base}.{alias.name}", None
        elif (target := _resolve(base, modules)) is not None:
            yield target, alias.name


def parse(path: Path) -> tuple[ast.Module, tuple[set[int], set[int]]]:
    """The syntax tree of ``path`` and its comment lines (any; comment-only)."""
    stat = path.stat()
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@functools.cache  # every check reads every module; the key changes when the file does
def _parse(path: Path, mtime_ns: int, size: int) -> tuple[ast.Module, tuple[set[int], set[int]]]:
    source = path.read_text(encoding="utf-8")
    return ast.parse(source, str(path)), _comment_lines(source)


def imports_in(root: Path, package: str) -> list[Import]:
    """Every import of one of ``package``'s modules by another (or the same), in order."""
    modules = modules_of(root, package)
    out: list[Import] = []
    for importer, path in modules.items():
        tree, (comments, comment_only) = parse(path)
        for node, local, type_only in _walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            # Its own line's comment, or a comment line just above (not another's trailing).
            commented = node.lineno in comments or node.lineno - 1 in comment_only
            # One edge per module a statement imports (``from m import a, b``: one).
            for target in dict.fromkeys(t for t, _ in _targets(node, importer, modules)):
                out.append(Import(importer, target, node.lineno, local, type_only, commented))
    return out


def graph_of(imports: list[Import]) -> dict[str, set[str]]:
    """Importer -> the modules it imports (self-imports dropped)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.importer, set())
        graph.setdefault(imp.imported, set())
        if imp.imported != imp.importer:
            graph[imp.importer].add(imp.imported)
    return graph


def cycles_in(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return sorted(found, key=sorted)


def a_cycle_through(component: frozenset[str], graph: dict[str, set[str]]) -> list[str]:
    """One concrete cycle inside ``component`` (for the failure message)."""
    first = min(component)
    paths: dict[str, list[str]] = {first: [first]}
    queue = [first]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & component):
            if nxt == first:
                return [*paths[node], first]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return sorted(component)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_own(value: ast.expr, classes: set[str]) -> bool:
    """Whether ``value``'s private attributes belong to the code reading them.

    ``self``, ``cls``, ``super()``, ``type(self)``, or a class defined in the same module
    (``Base._hook`` compared with ``type(self)._hook``: no module boundary is crossed).
    """
    if isinstance(value, ast.Name):
        return value.id in ("self", "cls") or value.id in classes
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)):
        return False
    if value.func.id == "super":
        return True
    return value.func.id == "type" and len(value.args) == 1 and _is_own(value.args[0], set())


def private_uses(root: Path, package: str) -> list[tuple[str, int, str]]:
    """(module, line, expression) for each private name crossing a module boundary.

    ``from m import _x`` where ``m`` is another module (a private *module* such as
    ``backprop._memory`` is fine to import, and its public names), and ``obj._x`` on an
    object that is not its own (`_is_own`), except the standard library's allowed ones.
    """
    modules = modules_of(root, package)
    out: list[tuple[str, int, str]] = []
    for module, path in modules.items():
        tree, _ = parse(path)
        classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
        # Private methods defined by this module's classes: calling one on another instance
        # of the class (``est = cls(...); est._adopt(...)``) stays inside the module.
        own_methods = {
            f.name
            for c in tree.body
            if isinstance(c, ast.ClassDef)
            for f in c.body
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) and _is_private(f.name)
        }
        for node, _, _ in _walk(tree):
            if isinstance(node, ast.ImportFrom):
                for target, name in _targets(node, module, modules):
                    if name is not None and _is_private(name) and target != module:
                        out.append((module, node.lineno, f"from {target} import {name}"))
                if node.module and not node.level and _resolve(node.module, modules) is None:
                    for alias in node.names:  # another package's private name
                        expr = f"{node.module}.{alias.name}"
                        if _is_private(alias.name) and expr not in STDLIB_PRIVATE:
                            out.append(
                                (module, node.lineno, f"from {node.module} import {alias.name}")
                            )
            elif isinstance(node, ast.Attribute) and _is_private(node.attr):
                expr = ast.unparse(node)
                if not (
                    _is_own(node.value, classes)
                    or node.attr in own_methods
                    or expr in STDLIB_PRIVATE
                    or node.attr in STDLIB_PRIVATE_ATTRIBUTES
                    or expr in modules  # a private module, ``backprop._memory``
                ):
                    out.append((module, node.lineno, expr))
    return out


def local_imports(root: Path, package: str) -> list[Import]:
    """Function-local imports of ``package``'s own modules."""
    return [imp for imp in imports_in(root, package) if imp.local]


# ------------------------------------------------------------------------------------------
# The checks on backprop


def _ratchet(found: Counter[str], allowed: Counter[str], what: str) -> list[str]:
    """Messages for entries found beyond what is allowed, and allowed ones gone."""
    problems = [f"new {what}: {k} (x{n})" for k, n in (found - allowed).items()]
    problems += [
        f"gone, remove it from the allow-list: {what} {k} (x{n})"
        for k, n in (allowed - found).items()
    ]
    return sorted(problems)


def check_cycles(root: Path, package: str, allowed: list[frozenset[str]]) -> list[str]:
    """Problems with ``package``'s import cycles against the ``allowed`` ones."""
    graph = graph_of(imports_in(root, package))
    found = cycles_in(graph)
    problems = [
        f"import cycle not allowed: {sorted(c)}; e.g. {' -> '.join(a_cycle_through(c, graph))}"
        for c in found
        if c not in allowed
    ]
    problems += [
        f"allowed cycle {sorted(c)} no longer exists: remove it from ALLOWED_CYCLES"
        for c in allowed
        if c not in found
    ]
    return problems


def check_private(root: Path, package: str, allowed: Counter[str]) -> list[str]:
    """Problems with private names crossing modules, against the ``allowed`` ones."""
    found = Counter(f"{module}: {expr}" for module, _, expr in private_uses(root, package))
    return _ratchet(found, allowed, "private name across modules")


def check_local_imports(root: Path, package: str, allowed: dict[str, int], most: int) -> list[str]:
    """Problems with function-local imports: uncommented beyond ``allowed``, or too many."""
    local = local_imports(root, package)
    uncommented = Counter(imp.importer for imp in local if not imp.commented)
    problems = [
        f"{imp.importer}:{imp.lineno}: function-local import of {imp.imported} without a "
        "comment saying what start-up cost it saves"
        for imp in local
        if not imp.commented and uncommented[imp.importer] > allowed.get(imp.importer, 0)
    ]
    problems += [
        f"{module}: {n} uncommented function-local imports, fewer than the {allowed[module]} "
        "allowed: lower ALLOWED_UNCOMMENTED_LOCAL_IMPORTS"
        for module, n in ((m, uncommented[m]) for m in allowed)
        if n < allowed[module]
    ]
    commented = [imp for imp in local if imp.commented]
    if len(commented) > most:
        where = ", ".join(f"{imp.importer}:{imp.lineno}" for imp in commented)
        problems.append(f"{len(commented)} function-local imports, more than {most}: {where}")
    return problems


def test_no_import_cycles() -> None:
    assert check_cycles(SRC, PACKAGE, ALLOWED_CYCLES) == []


def test_no_private_names_across_modules() -> None:
    assert check_private(SRC, PACKAGE, ALLOWED_PRIVATE) == []


def test_data_has_no_private_names_across_modules() -> None:
    # Not even in the allow-list: data/ was cleaned of them (issue 23).
    assert [u for u in private_uses(SRC, PACKAGE) if u[0].startswith("backprop.data")] == []


def test_function_local_imports_say_why() -> None:
    assert (
        check_local_imports(SRC, PACKAGE, ALLOWED_UNCOMMENTED_LOCAL_IMPORTS, MAX_LOCAL_IMPORTS)
        == []
    )


def test_data_layers() -> None:
    # formats -> rows, tables -> preprocess -> dataset -> named -> datasets: each imports
    # only those to its left.
    modules = ("formats", "rows", "tables", "preprocess", "dataset", "named", "datasets")
    order = [f"backprop.data.{m}" for m in modules]
    for imp in imports_in(SRC, PACKAGE):
        if imp.importer in order and imp.imported.startswith("backprop.data"):
            assert imp.imported in order[: order.index(imp.importer)], imp


# ------------------------------------------------------------------------------------------
# The checker, on synthetic packages: each check is seen to fail.


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    """Write ``pkg/<name>.py`` for each of ``files`` (and an empty ``__init__``); the root."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    for name, text in files.items():
        path = tmp_path / "pkg" / f"{name.replace('.', '/')}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_checker_finds_a_two_module_cycle(tmp_path: Path) -> None:
    root = _package(tmp_path, {"a": "from pkg import b\n", "b": "import pkg.a\n", "c": ""})
    assert cycles_in(graph_of(imports_in(root, "pkg"))) == [frozenset({"pkg.a", "pkg.b"})]
    assert check_cycles(root, "pkg", [frozenset({"pkg.a", "pkg.b"})]) == []
    [problem] = check_cycles(root, "pkg", [])
    assert "pkg.a -> pkg.b -> pkg.a" in problem


def test_checker_counts_type_only_and_relative_imports(tmp_path: Path) -> None:
    a = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n"
    root = _package(tmp_path, {"a": a, "b": "from . import a\nclass B: ...\n"})
    imports = imports_in(root, "pkg")
    assert [(i.importer, i.imported, i.type_only) for i in imports] == [
        ("pkg.a", "pkg.b", True),
        ("pkg.b", "pkg.a", False),
    ]
    assert cycles_in(graph_of(imports)) == [frozenset({"pkg.a", "pkg.b"})]


def test_checker_counts_a_function_local_import(tmp_path: Path) -> None:
    a = "def f():\n    from pkg.b import g\n    return g\n"
    root = _package(tmp_path, {"a": a, "b": "import pkg.a\ndef g(): ...\n"})
    assert cycles_in(graph_of(imports_in(root, "pkg"))) == [frozenset({"pkg.a", "pkg.b"})]
    [problem] = check_local_imports(root, "pkg", {}, 8)
    assert problem.startswith("pkg.a:2: function-local import of pkg.b without a comment")
    assert check_local_imports(root, "pkg", {"pkg.a": 1}, 8) == []
    # A listed count that the code undercuts fails too: the list must shrink.
    assert "fewer than" in check_local_imports(root, "pkg", {"pkg.a": 2}, 8)[0]


def test_checker_accepts_a_commented_local_import_up_to_the_cap(tmp_path: Path) -> None:
    a = (
        "def f():\n    # numpy-free start-up: b pulls in numpy\n    from pkg import b\n"
        "def g():\n    from pkg import b  # b pulls in numpy\n"
        "def h():\n    x = 1  # a comment on the line above, but about x\n    from pkg import b\n"
    )
    root = _package(tmp_path, {"a": a, "b": ""})
    assert check_local_imports(root, "pkg", {"pkg.a": 1}, 2) == []
    [problem] = check_local_imports(root, "pkg", {}, 2)
    assert problem.startswith("pkg.a:8: function-local import of pkg.b without a comment")
    [problem] = check_local_imports(root, "pkg", {"pkg.a": 1}, 1)
    assert problem.startswith("2 function-local imports, more than 1")


def test_checker_resolves_from_package_import(tmp_path: Path) -> None:
    # A submodule when there is one, else the package (its __init__).
    root = _package(tmp_path, {"a": "from pkg import b, VERSION\n", "b": ""})
    assert {(i.importer, i.imported) for i in imports_in(root, "pkg")} == {
        ("pkg.a", "pkg.b"),
        ("pkg.a", "pkg"),
    }


def test_checker_flags_private_names(tmp_path: Path) -> None:
    a = (
        "import sys\nfrom pkg.b import _x, y\nfrom pkg import _mem\nfrom pkg._mem import z\n"
        "class A:\n    def f(self, other):\n"
        "        return self._p, super()._q, other._r, sys._getframe(0), sys._other\n"
        "    def g(self):\n        return type(self)._p is A._p\n"
    )
    root = _package(tmp_path, {"a": a, "b": "_x = y = 1\n", "_mem": "z = 1\n"})
    assert [(m, expr) for m, _, expr in private_uses(root, "pkg")] == [
        ("pkg.a", "from pkg.b import _x"),
        ("pkg.a", "other._r"),
        ("pkg.a", "sys._other"),
    ]
    assert check_private(root, "pkg", Counter({"pkg.a: other._r": 1, "pkg.a: sys._other": 1}))
    allowed = Counter(
        {"pkg.a: from pkg.b import _x": 1, "pkg.a: other._r": 1, "pkg.a: sys._other": 1}
    )
    assert check_private(root, "pkg", allowed) == []
    allowed["pkg.a: gone._name"] = 1
    assert check_private(root, "pkg", allowed) == [
        "gone, remove it from the allow-list: private name across modules pkg.a: gone._name (x1)"
    ]


def test_checker_fails_when_an_allowed_cycle_disappears(tmp_path: Path) -> None:
    root = _package(tmp_path, {"a": "from pkg import b\n", "b": ""})
    assert check_cycles(root, "pkg", [frozenset({"pkg.a", "pkg.b"})]) == [
        "allowed cycle ['pkg.a', 'pkg.b'] no longer exists: remove it from ALLOWED_CYCLES"
    ]


def test_allow_lists_name_real_modules() -> None:
    modules = modules_of(SRC, PACKAGE)
    named = set(ALLOWED_UNCOMMENTED_LOCAL_IMPORTS).union(*ALLOWED_CYCLES)
    named |= {key.split(":")[0] for key in ALLOWED_PRIVATE}
    assert named <= set(modules)
