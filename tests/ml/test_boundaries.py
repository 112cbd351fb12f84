import ast
from pathlib import Path

ML_DIR = Path(__file__).resolve().parents[2] / "ml"
FORBIDDEN = ("django", "webapp", "workers", "rest_framework", "celery", "channels")


def test_ml_imports_nothing_from_the_web_side() -> None:
    offenders = []
    for path in sorted(ML_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not offenders, offenders
