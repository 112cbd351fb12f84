"""The code's shape, checked: settings are the one reader of the environment, modules stay small
and functions short (docs/architecture.md)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("webapp", "workers", "ml", "deploy", "bench")
MAX_MODULE_LINES = 450  # under webapp/
MAX_FUNCTION_LINES = 80
ENVIRONMENT = {"os.environ", "os.getenv"}
ENTRY_POINT_LINE = 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings")'


def _modules(*roots: str) -> list[Path]:
    return [
        path
        for root in roots
        for path in sorted((ROOT / root).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_only_settings_read_the_environment():
    readers = []
    for path in _modules("webapp"):
        if _name(path) == "webapp/config/settings.py":
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            reads = isinstance(node, ast.Attribute) and ast.unparse(node) in ENVIRONMENT
            # An entry point may name its settings module; nothing else reads the environment.
            if reads and ENTRY_POINT_LINE not in lines[node.lineno - 1]:
                readers.append(f"{_name(path)}:{node.lineno}")
    assert readers == []


def test_no_webapp_module_is_over_its_length():
    long = {
        _name(path)
        for path in _modules("webapp")
        if len(path.read_text().splitlines()) > MAX_MODULE_LINES
    }
    assert long == set(), f"over {MAX_MODULE_LINES} lines: {sorted(long)}"


def test_no_function_outside_the_tests_is_over_its_length():
    long = set()
    for path in _modules(*SOURCES):
        for node in ast.walk(ast.parse(path.read_text())):
            is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if is_function and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                long.add(f"{_name(path)}:{node.name}")
    assert long == set(), f"over {MAX_FUNCTION_LINES} lines: {sorted(long)}"


def test_the_import_contracts_of_the_architecture_page_hold():
    # pyproject.toml's [tool.importlinter] contracts: docs/architecture.md's package table.
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout
