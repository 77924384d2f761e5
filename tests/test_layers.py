"""The package's layers run one way: config -> providers -> consensus -> (store, attestation) ->
interfaces. Read from the source: every module under src/conclave is parsed and every import it
makes (at the top, in a function or a method alike) is an edge of the module graph. Imports
under `if TYPE_CHECKING:` never run, so they are left out; so are a module's parent packages
(Python runs them first, and a package that re-exports its own modules would otherwise be a
cycle by construction). And what an import loads, measured in a fresh interpreter: neither
`import conclave` nor `import conclave.cli` loads the web stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

import conclave

SOURCE = Path(conclave.__file__).parent
PACKAGE = "conclave"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("errors", "types", "settings", "text_files")),
    ("config", ("config", "prompt_checks", "redaction")),
    ("providers", ("providers",)),
    ("consensus", ("consensus", "presets", "session")),
    ("store and attestation", ("store", "attestation", "documents")),
)
"""Each layer's top-level modules and packages, lowest first. A module imports only from its own
layer or a lower one. Everything not named here is an interface (the CLI, the server, batch,
evaluation, the public `conclave` and `conclave.testing`): it may import any layer, and no
layer may import it."""

INTERFACE = "interfaces"

APART: tuple[tuple[str, str], ...] = (
    ("batch", "server"),
    ("batch", "cli"),
    ("evaluation", "server"),
    ("evaluation", "cli"),
    ("server", "cli"),
)
"""Interfaces that stand side by side: the first never imports the second."""


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        path = module_path(self.importer).relative_to(SOURCE.parent)
        return f"{self.importer} imports {self.imported} ({path}:{self.line})"


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def module_path(name: str) -> Path:
    return modules()[name]


@cache
def imports() -> tuple[Import, ...]:
    """Every import of a conclave module by a conclave module, wherever it is written."""
    return tuple(edge for name in modules() for edge in _imports_of(name))


def _imports_of(name: str) -> Iterator[Import]:
    path = module_path(name)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return imports_in(tree, name, is_package=path.name == "__init__.py")


def imports_in(tree: ast.AST, name: str, *, is_package: bool) -> Iterator[Import]:
    """The conclave modules that the code of module `name` imports when it runs."""
    package = name if is_package else name.rpartition(".")[0]
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            # `from package import name` imports the submodule `name` when there is one.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            known = _known_module(target)
            if known is not None and known != name:
                yield Import(name, known, node.lineno)


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, leaving out the bodies of `if TYPE_CHECKING:` (they never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _known_module(target: str) -> str | None:
    """The conclave module `target` names, or the nearest package of it that exists."""
    while target and target.split(".")[0] == PACKAGE:
        if target in modules():
            return target
        target = target.rpartition(".")[0]
    return None


def layer_of(module: str) -> int:
    """The index of the module's layer in LAYERS; interfaces come after them all."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else None
    for index, (_, members) in enumerate(LAYERS):
        if top in members:
            return index
    return len(LAYERS)


def layer_name(index: int) -> str:
    return LAYERS[index][0] if index < len(LAYERS) else INTERFACE


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (its modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found is not None:
                    return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start)
            if found is not None:
                return found
    return None


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in modules()}
    for edge in imports():
        edges[edge.importer].add(edge.imported)
    return edges


def test_the_graph_has_every_kind_of_import_that_runs_and_none_that_does_not() -> None:
    source = """
from typing import TYPE_CHECKING
import conclave.config
from conclave.store import history
from . import errors

def later():
    from conclave.server.app import create_app

class Late:
    def method(self):
        import conclave.batch.jobs

if TYPE_CHECKING:
    from conclave.cli import app
"""
    found = {
        edge.imported for edge in imports_in(ast.parse(source), "conclave.x", is_package=False)
    }
    assert found == {
        "conclave.config",
        "conclave.store.history",
        "conclave.errors",
        "conclave.server.app",
        "conclave.batch.jobs",
    }
    assert len(modules()) > 50
    assert "conclave.consensus.engine" in graph()["conclave.session"]


def test_no_import_cycle_among_conclave_modules() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_names_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_import_goes_down_the_layers() -> None:
    upward = [
        f"{edge} ({layer_name(layer_of(edge.importer))} -> {layer_name(layer_of(edge.imported))})"
        for edge in imports()
        if layer_of(edge.imported) > layer_of(edge.importer)
    ]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_interfaces_side_by_side_do_not_import_each_other() -> None:
    def under(module: str, top: str) -> bool:
        return module == f"{PACKAGE}.{top}" or module.startswith(f"{PACKAGE}.{top}.")

    crossing = [
        str(edge)
        for edge in imports()
        for importer, imported in APART
        if under(edge.importer, importer) and under(edge.imported, imported)
    ]
    assert not crossing, "\n".join(crossing)


def _loaded_after(statement: str, *names: str) -> set[str]:
    """Which of `names` are in sys.modules after `statement` in a fresh interpreter."""
    probe = f"import sys\n{statement}\nprint(' '.join(n for n in {names!r} if n in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return set(done.stdout.split())


@pytest.mark.parametrize("statement", ["import conclave", "import conclave.cli"])
def test_importing_conclave_or_its_cli_leaves_the_web_stack_out(statement: str) -> None:
    assert _loaded_after(statement, "fastapi", "starlette", "uvicorn", "conclave.server") == set()


def test_the_store_loads_the_receipt_model_but_not_the_token_checks() -> None:
    loaded = _loaded_after(
        "import conclave.store",
        "conclave.attestation.receipt_format",
        "conclave.attestation.validator",
        "jwt",
    )
    assert loaded == {"conclave.attestation.receipt_format"}
