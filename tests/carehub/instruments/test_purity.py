"""The definition and scoring modules are pure Python: the check-in flow, staff entry and the
pathway facts can use them without Django."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PURE = ("definition.py", "loader.py", "scoring.py", "texts.py", "__init__.py")
FORBIDDEN = ("django", "celery", "kombu", "redis", "rest_framework", "config")


def test_the_pure_modules_import_no_django() -> None:
    offenders = []
    for name in PURE:
        path = ROOT / "carehub" / "instruments" / name
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                inside = module.startswith("carehub.") and not module.startswith(
                    "carehub.instruments."
                )
                if top in FORBIDDEN or inside:
                    offenders.append(f"{name}:{node.lineno} imports {module}")
    assert offenders == []


def test_scoring_runs_without_django_in_the_process() -> None:
    code = (
        "import builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] in ('django', 'celery'):\n"
        "        raise ImportError('imported ' + name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "from pathlib import Path\n"
        "from carehub.instruments.loader import load_directories\n"
        "from carehub.instruments.scoring import score\n"
        "library = load_directories([Path('carehub/instruments/library')])\n"
        "result = score(library.get('peg'), {'pain': 8, 'enjoyment': 7, 'activity': 6})\n"
        "print(result.total)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "7.0", result.stderr
