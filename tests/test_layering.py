"""The package's layering, stated once (``FLOORS``) and checked by reading the source with ``ast``.

A module imports only from floors below its own; the import graph has no cycle; no module imports another's
private (``_name``) name; imports sit at module level, except the optional heavy dependencies in ``LAZY_OK`` and
the command line's deferred imports (so ``--help`` never imports jax); no module is over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nanoddpm_utils"

# From the bottom up. A module may import any module on a LOWER floor, none on its own or a higher one.
# The command line's modules (cli/ and __main__) are one node, "cli", on the top floor.
FLOORS = [
    ["__init__", "config"],  # config is pure data: no jax, no other module of the package
    ["files", "widgets", "schedule", "embedding", "layers", "parallel", "batch_pickle"],
    ["diffusion", "images"],
    ["unet", "cifar10", "tracking"],
    ["data", "solver", "edm", "flow", "bpd", "viz"],  # solver, edm and flow: the samplers beyond DDPM and DDIM
    ["sample", "evaluate"],  # sample.sampling_loop picks DDPM, DDIM, DPM-Solver++, EDM or a flow's Euler / Heun
    ["guidance", "state"],  # state: TrainState and init_state, what checkpoint.py reads and train.py steps
    ["checkpoint"],
    ["train"],  # fit saves through checkpoint
    ["pretrained"],
    ["cli"],
]
# Optional heavy dependencies, imported where they are used (not installed everywhere, or slow to import).
LAZY_OK = {"wandb", "kagglehub", "py7zr", "ipywidgets", "google"}  # google.colab: only on Colab
MAX_LINES = 400


def node_of(path: Path) -> str:
    """The layering's name of a source file: cli/ and __main__.py are "cli", the others their module name."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    return "cli" if rel.parts[0] in ("cli", "__main__") else ".".join(rel.parts)


def modules() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        found.setdefault(node_of(path), []).append(path)
    return found


def in_function(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside a function or class body."""
    inner = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            inner |= {id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return inner


def package_imports(path: Path, known: set[str]):
    """``(target module, imported names, inside a function, third-party root)`` for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    inner = in_function(tree)
    package = list(path.relative_to(PACKAGE).parent.parts)  # where a relative import starts
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "nanoddpm_utils":
                    yield ".".join(parts[1:2]) or "__init__", [], id(node) in inner, None
                else:
                    yield None, [], id(node) in inner, parts[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and not (node.module or "").startswith("nanoddpm_utils"):
                yield None, [], id(node) in inner, node.module.split(".")[0]
                continue
            if node.level == 0:
                base = node.module.split(".")[1:]
            else:
                base = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            names = [a.name for a in node.names]
            if not base:  # from . import x: x is a module, or a name of the package's __init__
                for name in names:
                    yield (
                        (name if name in known else "__init__"),
                        ([] if name in known else [name]),
                        id(node) in inner,
                        None,
                    )
            else:
                target = "cli" if base[0] in ("cli", "__main__") else ".".join(base)
                yield target, names, id(node) in inner, None


def graph():
    found = modules()
    known = set(found) | {p.stem for paths in found.values() for p in paths}
    edges, private, lazy = {}, [], []
    for node, paths in found.items():
        for path in paths:
            for target, names, inner, third_party in package_imports(path, known):
                where = path.relative_to(PACKAGE)
                if inner and node != "cli" and third_party not in LAZY_OK:
                    lazy.append(f"{where}: imports {target or third_party} inside a function")
                if target is None:
                    continue
                private += [
                    f"{where}: from {target} import {n}" for n in names if n.startswith("_") and not n.startswith("__")
                ]
                if target != node:
                    edges.setdefault(node, set()).add(target)
    return found, edges, private, lazy


FOUND, EDGES, PRIVATE, LAZY = graph()
FLOOR = {name: i for i, floor in enumerate(FLOORS) for name in floor}


def test_every_module_has_a_floor():
    unknown = sorted(set(FOUND) - set(FLOOR))
    assert not unknown, (
        f"module(s) {unknown} have no floor: place them in FLOORS in tests/test_layering.py, "
        "above every module they import and below every module that imports them"
    )


def test_imports_go_only_downward():
    upward = [
        f"{a} (floor {FLOOR[a]}) imports {b} (floor {FLOOR.get(b)})"
        for a, targets in sorted(EDGES.items())
        for b in sorted(targets)
        if a in FLOOR and (b not in FLOOR or FLOOR[b] >= FLOOR[a])
    ]
    assert not upward, "imports that do not go down the floors: " + "; ".join(upward)


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the path being explored, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(EDGES.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(EDGES):
        if node not in state:
            visit(node, [node])


def test_no_private_name_crosses_modules():
    assert not PRIVATE, "private names imported from another module: " + "; ".join(PRIVATE)


def test_imports_at_module_level():
    assert not LAZY, (
        "imports inside functions (move them to the top of the module; only the optional heavy "
        f"dependencies {sorted(LAZY_OK)} and the command line may wait): " + "; ".join(LAZY)
    )


def test_no_module_over_the_limit():
    long = [
        f"{p.relative_to(PACKAGE)}: {n} lines"
        for paths in FOUND.values()
        for p in paths
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    assert not long, f"modules over {MAX_LINES} lines (split them along their jobs): " + "; ".join(long)


def test_config_is_pure_data():
    imports = {tp for path in FOUND["config"] for _, _, _, tp in package_imports(path, set(FOUND)) if tp}
    assert not imports & {"jax", "equinox", "numpy", "optax"}, f"config.py imports {sorted(imports)}"
