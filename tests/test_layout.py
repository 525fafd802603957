"""The package's shape: no modules of ``tagger``, and no folders at any level of it, import
each other in a loop, directly or around a cycle; no module is longer than MAX_LINES.

A package and the modules inside it may import each other: its ``__init__`` re-exports
them, or holds what they share."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tagger"
MAX_LINES = 450


def module_files(package: Path) -> dict[str, Path]:
    """Every module under ``package`` by dotted name; a subpackage by its own name."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = (package.name, *path.relative_to(package).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``path`` (module ``name``) imports, at its top or
    inside a function: ``from M import N`` counts as importing M.N when that is a module,
    else M."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                source = ".".join(here[: len(here) - node.level + 1] + ([source] if source
                                                                        else []))
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in modules else source)
    return {m for m in found if m in modules and m != name}


def import_graph(package: Path) -> dict[str, set[str]]:
    """Which modules each module imports, leaving out imports between a package and the
    modules inside it."""
    modules = module_files(package)
    return {name: {m for m in imported_modules(name, path, modules)
                   if not (m.startswith(name + ".") or name.startswith(m + "."))}
            for name, path in modules.items()}


def folder_graph(graph: dict[str, set[str]], folder: str) -> dict[str, set[str]]:
    """The imports between the direct children of the package ``folder``, each subpackage
    standing for everything in it; the package's own ``__init__`` is left out."""
    depth = folder.count(".") + 1

    def child(module: str) -> str | None:
        inside = module.startswith(folder + ".")
        return ".".join(module.split(".")[: depth + 1]) if inside else None

    children: dict[str, set[str]] = {}
    for module, imported in graph.items():
        if (source := child(module)) is not None:
            targets = {child(m) for m in imported} - {None, source}
            children.setdefault(source, set()).update(t for t in targets if t is not None)
    return children


def first_loop(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its first node repeated at the end), or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(reversed(error.args[1]))
    return None


def loops_between_folders(package: Path) -> list[list[str]]:
    graph = import_graph(package)
    folders = [name for name, path in module_files(package).items()
               if path.name == "__init__.py"]
    return [loop for folder in folders if (loop := first_loop(folder_graph(graph, folder)))]


def write_modules(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root / "pkg"


def test_the_checks_find_loops_of_modules_and_of_folders(tmp_path: Path) -> None:
    package = write_modules(tmp_path, {
        "pkg/__init__.py": "from pkg import a\n",
        "pkg/a.py": "from pkg.b import thing\n",
        "pkg/b.py": "def f():\n    from . import c\n",
        "pkg/c.py": "import pkg.a\n",
        "pkg/one/__init__.py": "",
        "pkg/one/x.py": "from ..two.y import z\n",
        "pkg/two/__init__.py": "from pkg.two.y import z\n",
        "pkg/two/y.py": "z = 1\n",
        "pkg/two/w.py": "from pkg.one import x\n",
    })
    graph = import_graph(package)
    assert graph["pkg"] == set() and graph["pkg.b"] == {"pkg.c"}
    assert graph["pkg.one.x"] == {"pkg.two.y"}
    loop = first_loop(graph)
    assert loop is not None and set(loop) == {"pkg.a", "pkg.b", "pkg.c"}
    (package / "c.py").write_text("")
    assert first_loop(import_graph(package)) is None
    assert [set(loop) for loop in loops_between_folders(package)] == [{"pkg.one", "pkg.two"}]
    (package / "two" / "w.py").write_text("")
    assert loops_between_folders(package) == []


def test_no_modules_import_each_other_in_a_loop() -> None:
    loop = first_loop(import_graph(PACKAGE))
    assert loop is None, "modules that import each other: " + " -> ".join(loop or [])


def test_no_folders_import_each_other_in_a_loop() -> None:
    loops = loops_between_folders(PACKAGE)
    assert loops == [], "folders that import each other: " + "; ".join(
        " -> ".join(loop) for loop in loops)


def test_no_module_is_longer_than_the_limit() -> None:
    lengths = {name: len(path.read_text().splitlines())
               for name, path in module_files(PACKAGE).items()}
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert too_long == {}, f"modules over {MAX_LINES} lines: " + ", ".join(
        f"{name} ({n})" for name, n in sorted(too_long.items()))
