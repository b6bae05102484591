"""Every dependency between posecore's modules is one-way: no two modules import each other."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "posecore"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The posecore modules a file imports, anywhere in it (lazy imports in functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module in known:
            # `from posecore.qc import plots` imports the module posecore.qc.plots
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & known
            found |= submodules or {node.module}
    return found


def test_no_two_modules_import_each_other():
    files = {module_name(path): path for path in ROOT.rglob("*.py")}
    imports = {name: imported_modules(path, set(files)) - {name} for name, path in files.items()}
    cycles = sorted((a, b) for a in imports for b in imports[a] if a < b and a in imports[b])
    assert cycles == [], f"modules that import each other: {cycles}"


def test_the_checker_sees_a_cycle(tmp_path):
    # The check itself: two modules that import each other are found.
    (tmp_path / "a.py").write_text("from posecore.b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from posecore.a import y\n")
    known = {"posecore.a", "posecore.b"}
    assert imported_modules(tmp_path / "a.py", known) == {"posecore.b"}
    assert imported_modules(tmp_path / "b.py", known) == {"posecore.a"}
