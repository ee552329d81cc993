"""Gateway knowledge lives in providers/: worker/ imports no gateway module, compares no
gateway name, reaches no gateway-only method behind a type: ignore, and only
worker/local/ imports the sandbox. Read from the source with `ast`, not grep."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from providers import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
WORKER = sorted((ROOT / "worker").rglob("*.py"))
GATEWAY_MODULES = {REGISTRY[name].__module__ for name in REGISTRY}


def _imports(tree: ast.AST) -> list[str]:
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return out


def _gateway_module(name: str) -> bool:
    """providers.<gateway> and its satellites (providers.<gateway>_codes, ...)."""
    return any(name == m or name.startswith(m + "_") or name.startswith(m + ".")
               for m in GATEWAY_MODULES)


@pytest.mark.parametrize("path", WORKER, ids=lambda p: str(p.relative_to(ROOT)))
def test_worker_module_imports_no_gateway(path: Path) -> None:
    """No worker module imports a gateway's own module (only providers' shared ones)."""
    bad = [m for m in _imports(ast.parse(path.read_text())) if _gateway_module(m)]
    assert bad == []


@pytest.mark.parametrize("path", WORKER, ids=lambda p: str(p.relative_to(ROOT)))
def test_worker_module_compares_no_gateway_name(path: Path) -> None:
    """No `x == "smsru"` (or `!=`, `in (...)`) on a gateway's name anywhere in worker/."""
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            values = [node.left, *node.comparators]
            consts = [c for v in values for c in ast.walk(v) if isinstance(c, ast.Constant)]
            hits += [c.value for c in consts if c.value in REGISTRY]
    assert hits == []


@pytest.mark.parametrize("path", WORKER, ids=lambda p: str(p.relative_to(ROOT)))
def test_worker_module_has_no_attr_defined_ignore(path: Path) -> None:
    """A method reached behind `type: ignore[attr-defined]` is a missing interface."""
    assert "ignore[attr-defined]" not in path.read_text()


@pytest.mark.parametrize("path", WORKER, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_worker_local_imports_the_sandbox(path: Path) -> None:
    """providers.sandbox is development-only: worker/local/ is its one door."""
    if path.parent.name == "local":
        return
    bad = [m for m in _imports(ast.parse(path.read_text())) if m.startswith("providers.sandbox")]
    assert bad == []
