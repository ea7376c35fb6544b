"""The import structure is a gate too: the import-linter contracts in pyproject.toml
(layer order server → tools → advisor/health → audit/demo → migrations → db → settings →
safety → errors, and no import cycles between sibling modules) hold, and would catch a break;
no module uses another module's ``_private`` names.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def contract(kind: str) -> dict[str, object]:
    found = [c for c in CONFIG["contracts"] if c["type"] == kind]
    assert len(found) == 1, f"expected one {kind} contract in pyproject.toml"
    return found[0]


def layers() -> list[grimp.Layer]:
    """The layers contract as grimp layers (``a | b``: independent siblings)."""
    result = []
    for layer in contract("layers")["layers"]:  # type: ignore[union-attr]
        names = [name.strip().strip("()") for name in str(layer).split("|")]
        result.append(grimp.Layer(*(n for n in names if _module_exists(n)), independent=True))
    return result


def build_graph() -> grimp.ImportGraph:
    return grimp.build_graph("sqlgate", cache_dir=None)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return build_graph()


def test_lint_imports_passes() -> None:
    """The command CI runs (scripts/check): every contract kept."""
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert command, "import-linter is not installed: pip install -e '.[test]'"
    done = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_layer_order_holds(graph: grimp.ImportGraph) -> None:
    illegal = graph.find_illegal_dependencies_for_layers(layers=layers())
    assert not illegal, sorted(f"{d.importer} -> {d.imported}" for d in illegal)


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("sqlgate.db.engines", "sqlgate.demo"),  # the old demo-in-engines tangle
        ("sqlgate.audit", "sqlgate.tools.base"),  # the old CallRecord import
        ("sqlgate.safety.policy", "sqlgate.db.engines"),  # the pure core reaching for I/O
        ("sqlgate.advisor.capture", "sqlgate.health"),  # independent siblings
    ],
)
def test_an_upward_or_sideways_import_would_be_caught(importer: str, imported: str) -> None:
    broken = build_graph()
    broken.add_import(importer=importer, imported=imported)
    illegal = broken.find_illegal_dependencies_for_layers(layers=layers())
    assert illegal, f"{importer} -> {imported} should break the layer contract"


def test_the_known_cycles_are_gone(graph: grimp.ImportGraph) -> None:
    for importer, imported in [
        ("sqlgate.migrations", "sqlgate.audit"),
        ("sqlgate.migrations", "sqlgate.demo"),
        ("sqlgate.db.reflect", "sqlgate.db.engines"),
        ("sqlgate.commands", "sqlgate.cli"),
    ]:
        chain = graph.find_shortest_chain(importer=importer, imported=imported, as_packages=True)
        assert chain is None, " -> ".join(chain or ())


SRC = ROOT / "src"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_exists(dotted: str) -> bool:
    path = SRC.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def private_name_uses(path: Path) -> list[str]:
    """``from sqlgate.x import _name`` and ``module._name`` where module is a sqlgate module."""
    import ast

    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found: list[str] = []
    modules: set[str] = set()  # local names bound to sqlgate modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sqlgate"):
            for alias in node.names:
                if _is_private(alias.name):
                    found.append(f"{where}:{node.lineno} from {node.module} import {alias.name}")
                elif _module_exists(f"{node.module}.{alias.name}"):
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sqlgate") and alias.asname:
                    modules.add(alias.asname)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute) and _is_private(node.attr)
            and isinstance(node.value, ast.Name) and node.value.id in modules
        ):
            found.append(f"{where}:{node.lineno} {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names() -> None:
    uses = [use for path in sorted(SRC.rglob("*.py")) for use in private_name_uses(path)]
    assert not uses, "import the public name instead:\n" + "\n".join(uses)


def test_the_private_name_check_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from sqlgate.safety import tables\nfrom sqlgate.errors import _x\n\ntables._key\n")
    assert len(private_name_uses(sample)) == 2


def test_every_top_level_module_has_a_layer() -> None:
    """A module outside the contract is unconstrained: place each new one in pyproject.toml."""
    placed = {
        name.strip().strip("()") for layer in contract("layers")["layers"]  # type: ignore[union-attr]
        for name in str(layer).split("|")
    }
    package = SRC / "sqlgate"
    modules = {
        f"sqlgate.{path.stem if path.is_file() else path.name}"
        for path in package.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    unplaced = sorted(modules - placed)
    assert not unplaced, f"add to [tool.importlinter] layers in pyproject.toml: {unplaced}"
