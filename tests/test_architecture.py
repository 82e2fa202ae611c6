"""kdlib's wings keep one layer order (issue 21): base < blocks < data < train < runs < book, then the launcher.

Every import of kdlib is read from the source, those inside functions too: a module may import from its own
wing or a lower one, never a higher one, and no two modules may import each other round a cycle. The checker
is run on the real package and on a small planted package whose upward import and cycle it must report.
"""
from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kdlib"
WINGS = ["base", "blocks", "data", "train", "runs", "book"]  # lowest first
TOP = len(WINGS)  # kdlib/__init__.py and kdlib/__main__.py: the launcher, above every wing
MAX_LINES = 450
TORCH_FREE = {"base"}  # wings that import neither torch nor numpy when loaded (the launcher's floor); a function
# may (base.cli.check_device imports torch only to ask whether a CUDA device named on the command line exists)


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str, root: str) -> int:
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in WINGS:
        return WINGS.index(parts[1])
    return TOP


def imports_of(path: Path, package: Path):
    """(line, imported kdlib module or None, external top-level name or None, at module level) for every import
    in ``path``."""
    root = package.name
    here = module_name(path, package)
    is_pkg = path.name == "__init__.py"
    modules = {module_name(p, package) for p in package.rglob("*.py")}
    tree = ast.parse(path.read_text(), str(path))
    deferred = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                for n in ast.walk(f)}
    for node in ast.walk(tree):
        top = id(node) not in deferred
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root:
                    yield node.lineno, alias.name, None, top
                else:
                    yield node.lineno, None, alias.name.split(".")[0], top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".") if is_pkg else here.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
                if target.split(".")[0] != root:
                    yield node.lineno, None, target.split(".")[0], top
                    continue
            for alias in node.names:  # `from kdlib.data import cache` imports the module kdlib.data.cache
                sub = f"{target}.{alias.name}"
                yield node.lineno, (sub if sub in modules else target), None, top


def check_package(package: Path) -> list[str]:
    """Every violation of the layer order in ``package``, as ``file:line: what``."""
    root = package.name
    problems, graph, where = [], {}, {}
    for path in sorted(package.rglob("*.py")):
        here = module_name(path, package)
        rel = path.relative_to(package.parent)
        graph.setdefault(here, set())
        for line, target, external, top in imports_of(path, package):
            if external is not None:
                if top and rank(here, root) < TOP and WINGS[rank(here, root)] in TORCH_FREE and external in ("torch", "numpy"):
                    problems.append(f"{rel}:{line}: {here} imports {external}; the {WINGS[rank(here, root)]} wing "
                                    f"stays torch- and numpy-free")
                continue
            if target == root or target == here:
                continue
            if rank(target, root) > rank(here, root):
                problems.append(f"{rel}:{line}: {here} imports {target} from a higher wing "
                                f"({WINGS[rank(here, root)] if rank(here, root) < TOP else 'launcher'} < "
                                f"{WINGS[rank(target, root)] if rank(target, root) < TOP else 'launcher'})")
            if target.split(".")[-1] in WINGS and target.count(".") == 1:
                continue  # the wing's package itself (its __init__ holds only a docstring)
            graph[here].add(target)
            where.setdefault((here, target), f"{rel}:{line}")
    problems += [f"import cycle {' -> '.join(c + [c[0]])} (first edge at {where[(c[0], c[1 % len(c)])]})"
                 for c in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), or a self-loop."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(path_round(graph, sorted(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def path_round(graph, comp):
    """A cycle through the first module of a strongly connected component, for the message."""
    start, members = comp[0], set(comp)
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return path[::-1]
                if w in members and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def test_kdlib_keeps_its_layer_order_and_has_no_import_cycle():
    problems = check_package(PACKAGE)
    assert not problems, "\n".join(problems)


def test_every_module_sits_in_a_wing():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert not loose, f"modules outside the wings: {loose}; move each into one of {WINGS}"
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(WINGS)


def test_no_module_over_450_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split each by idea): {long}"


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    pkg = tmp_path / "kdlib"
    for name in ["__init__.py", *(f"{w}/__init__.py" for w in WINGS)]:
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text('"""."""\n')
    for name, text in files.items():
        (pkg / name).write_text(textwrap.dedent(text))
    return pkg


def test_the_checker_reports_a_planted_upward_import_with_its_file_and_line(tmp_path):
    pkg = _plant(tmp_path, {
        "blocks/metrics.py": "import math\n\n\ndef f():\n    from ..book.report import g  # upward, in a function\n",
        "book/report.py": "from ..blocks.metrics import f\n\n\ndef g():\n    return f\n",
    })
    problems = check_package(pkg)
    assert problems == ["kdlib/blocks/metrics.py:5: kdlib.blocks.metrics imports kdlib.book.report from a higher "
                        "wing (blocks < book)",
                        "import cycle kdlib.blocks.metrics -> kdlib.book.report -> kdlib.blocks.metrics (first edge "
                        "at kdlib/blocks/metrics.py:5)"]


def test_the_checker_reports_a_cycle_inside_one_wing_and_torch_in_base(tmp_path):
    pkg = _plant(tmp_path, {
        "runs/plan.py": "def a():\n    from kdlib.runs import store\n",
        "runs/store.py": "from .plan import a\n",
        "base/paths.py": "import torch\n",
        "base/cli.py": "def check_device():\n    import torch  # deferred: allowed\n",
    })
    problems = check_package(pkg)
    assert "kdlib/base/paths.py:1: kdlib.base.paths imports torch; the base wing stays torch- and numpy-free" in problems
    assert any(p.startswith("import cycle kdlib.runs.plan -> kdlib.runs.store -> kdlib.runs.plan") for p in problems)
    assert len(problems) == 2


@pytest.mark.parametrize("legal", ["from ..base.paths import REPO\n", "from kdlib.blocks import metrics\n",
                                   "import kdlib.data.registry as REG\n"])
def test_the_checker_accepts_imports_from_lower_wings(tmp_path, legal):
    pkg = _plant(tmp_path, {"base/paths.py": "REPO = 1\n", "blocks/metrics.py": "X = 1\n",
                            "data/registry.py": "Y = 1\n", "train/loop.py": legal})
    assert check_package(pkg) == []


def unannotated(package: Path) -> list[str]:
    """Public functions and methods (of public classes) with a parameter or the return left unannotated."""
    out = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent)

        def visit(body, cls=None):
            for node in body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    visit(node.body, node.name)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_") \
                        or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and cls and node.name in (
                            "__init__", "__call__"):
                    args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                    if cls and args and args[0].arg in ("self", "cls"):
                        args = args[1:]
                    bare = [a.arg for a in args + [a for a in (node.args.vararg, node.args.kwarg) if a]
                            if a.annotation is None]
                    if node.returns is None and node.name != "__init__":
                        bare.append("return")
                    if bare:
                        out.append(f"{rel}:{node.lineno} {cls + '.' if cls else ''}{node.name}: {', '.join(bare)}")
        visit(ast.parse(path.read_text()).body)
    return out


def test_every_public_function_is_fully_annotated():
    missing = unannotated(PACKAGE)
    assert not missing, f"{len(missing)} public functions lack annotations:\n" + "\n".join(missing)


def test_the_annotation_check_sees_a_bare_parameter_and_return(tmp_path):
    pkg = _plant(tmp_path, {"blocks/m.py": "def f(x: int, y):\n    return x\n\n\ndef _private(z):\n    return z\n\n\n"
                                           "class A:\n    def g(self, v: int) -> int:\n        return v\n"})
    assert unannotated(pkg) == ["kdlib/blocks/m.py:1 f: y, return"]
