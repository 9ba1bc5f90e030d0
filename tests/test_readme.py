"""The README's promises: the test command CI runs and the import snippet."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md")).read()


def _block(marker: str) -> str:
    section = README.split(f"<!-- {marker} -->")[1].split(f"<!-- /{marker} -->")[0]
    return re.search(r"```(?:bash|python)\n(.*?)```", section, re.S).group(1)


def test_ci_runs_the_readme_test_command():
    command = _block("test-command").strip()
    assert command.startswith("pip install -e '.[test]'") and "pytest" in command
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert "test-command" in ci and 'eval "$cmd"' in ci


def test_import_snippet_runs():
    scope: dict = {}
    exec(compile(_block("snippet:import"), "README snippet", "exec"), scope)
    w, slow, halfway, score = scope["w"], scope["slow"], scope["halfway"], scope["score"]
    assert w.shape[:2] == (2, 6) and slow.shape == (2, 64, 64, 3)
    assert halfway.shape == w.shape[1:]
    assert score.shape == (2,) and all(0.0 <= float(s) <= 1.0 for s in score)
