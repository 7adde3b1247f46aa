"""One direction of imports: no module of salad_core, dashboard or pages imports from a layer above its own
(salad_core/layers.py), whether at the top of the file or inside a function."""

from __future__ import annotations

import ast

from salad_core.layers import LAYERS, layer_of
from salad_core.paths import REPO_ROOT

PACKAGES = ("salad_core", "dashboard", "pages")


def modules() -> dict[str, ast.Module]:
    out = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = ast.parse(path.read_text())
    return out


def imported(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for name, tree in modules().items():
        for target in imported(tree):
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert upward == []


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)  # raises for a unit the layer table does not name
