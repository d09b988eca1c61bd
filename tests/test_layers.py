"""The layering of the README's Layout section, checked on every import (module level and inside
functions): a module imports only from its own layer and the ones below; `models` never touches
torch.distributed; no two modules import each other, directly or round a loop; `hpcgan status` and
`hpcgan report` run without importing torch. Entry points (`__main__` shims, hpcgan/submit.py) are
not layers."""

import ast
import subprocess
import sys

from tests.conftest import REPO

PACKAGE = REPO / "hpcgan"
BASE = {"atomic", "errors", "file_lock", "console", "__init__"}  # hpcgan/*.py: below every layer
LAYERS = ["runs", "data", "models", "eval", "train", "trained", "report", "launch", "cli", "bench"]
ENTRY_POINTS = {"__main__", "submit"}  # `python -m hpcgan`, `python -m hpcgan.submit`


def imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_name(path):
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_package_and_module_has_a_place():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.rglob("*.py"))}
    assert folders == set(LAYERS), f"folders without a layer: {folders - set(LAYERS)}; gone: {set(LAYERS) - folders}"
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= BASE | ENTRY_POINTS, f"top-level modules without a place: {top - BASE - ENTRY_POINTS}"


def test_each_layer_imports_only_from_below():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if path.name == "__main__.py" or (len(rel.parts) == 1 and path.stem in ENTRY_POINTS):
            continue
        own = LAYERS.index(rel.parts[0]) if len(rel.parts) > 1 else -1  # base modules: below every layer
        for name in imports(path):
            parts = name.split(".")
            if parts[0] == "hpcgan" and len(parts) > 1 and parts[1] in LAYERS and LAYERS.index(parts[1]) > own:
                wrong.append(f"{path.relative_to(REPO)} imports {name}")
            if rel.parts[0] == "models" and name.startswith("torch.distributed"):
                wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: {n for n in imports(p) if n in modules and n != m} for m, p in modules.items()}
    for m in graph:  # a package's __init__ is not an edge target of its own modules' imports
        graph[m] = {n for n in graph[m] if not m.startswith(n + ".")}
    state: dict[str, int] = {}

    def visit(m, trail):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(n):], n]))
            if n not in state:
                visit(n, [*trail, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_status_and_report_do_not_import_torch(tmp_path):
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"gan": "dcgan64", "data": "nowhere", "train": {"steps": 10}}')
    (run / "metrics.jsonl").write_text('{"step": 10, "loss_d": 1.0, "loss_g": 1.0}\n')
    script = (
        "import sys\n"
        "from hpcgan.cli.main import main\n"
        f"assert main(['status', {str(tmp_path / 'runs')!r}]) == 0\n"
        f"assert main(['report', {str(run)!r}]) == 0\n"
        "loaded = sorted(m for m in ('torch', 'submitit', 'accelerate') if m in sys.modules)\n"
        "print('loaded:', loaded)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "loaded: []" in proc.stdout
