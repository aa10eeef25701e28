"""The package stays layered: no module imports from a layer above its own, and no import cycle between modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "robusttrain"

# Lowest first. A module belongs to the longest entry that prefixes its dotted name; imports within a layer are
# allowed, imports upward are not. A method family's modules sit at the layer of what they extend.
LAYERS = [
    ["_registry", "_compat", "types", "config"],
    ["data", "models", "transforms", "feature_masks", "feature_masks.net", "attention"],
    ["maps", "feature_masks.maps"],
    ["estimate", "eval", "feature_masks.evaluation"],
    ["audit", "peers"],
    ["callbacks", "feature_masks.callback"],
    ["plugin"],
    ["training", "integrations"],
    ["cli"],
    ["experiments"],
    [""],  # robusttrain/__init__.py
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(name: str) -> int:
    matches = [(len(entry), index) for index, layer in enumerate(LAYERS) for entry in layer
               if name == entry or name.startswith(entry + ".") or entry == ""]
    return max(matches)[1]


def imports(path: Path) -> set[str]:
    """The package modules ``path`` imports (relative and absolute ``robusttrain`` imports, anywhere in the file but
    under ``if TYPE_CHECKING``)."""
    here = module_name(path).split(".") if module_name(path) else []
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only: not an import at run time
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "robusttrain":
                target = node.module.partition(".")[2]
            else:
                continue
            candidates = [f"{target}.{alias.name}".strip(".") for alias in node.names] + [target]
            found.add(next(c for c in candidates if c in MODULES))
        elif isinstance(node, ast.Import):
            found.update(alias.name.partition(".")[2] for alias in node.names
                         if alias.name.startswith("robusttrain.") and alias.name.partition(".")[2] in MODULES)
    return found - {module_name(path)}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_no_module_imports_from_a_higher_layer() -> None:
    upward = [f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})"
              for name, path in MODULES.items() for target in imports(path) if layer_of(target) > layer_of(name)]
    assert not upward, "\n".join(upward)


def test_no_import_cycle() -> None:
    graph = {name: imports(path) for name, path in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_every_module_has_a_layer() -> None:
    assert all(layer_of(name) >= 0 for name in MODULES)
    assert layer_of("feature_masks.callback") > layer_of("callbacks.base") - 1 > layer_of("maps")
