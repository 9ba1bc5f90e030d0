"""The Colab notebooks: how the tests run them, and their shape (stripped, with a badge)."""

import ast
import os

import nbformat
from nbclient import NotebookClient

COLAB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "colab")


def execute(name: str, workdir, **params) -> None:
    """Runs colab/<name> in `workdir` with the parameters cell replaced by `params`, on one
    CPU device as on Colab (the tests' eight fake devices only slow a notebook down)."""
    book = nbformat.read(os.path.join(COLAB, name), as_version=4)
    cells = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "a notebook has exactly one cell tagged 'parameters'"
    cells[0].source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
    NotebookClient(book, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute(env=one_device_env())
    for cell in book.cells:   # a failing cell raises above; none may print a traceback either
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error"


def one_device_env() -> dict:
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    return dict(os.environ, XLA_FLAGS=" ".join(flags))


def test_notebooks_are_stripped_and_open_with_a_badge():
    names = sorted(n for n in os.listdir(COLAB) if n.endswith(".ipynb"))
    assert {"quickstart.ipynb", "animate.ipynb", "fgla.ipynb", "generate.ipynb"} <= set(names)
    for name in names:
        book = nbformat.read(os.path.join(COLAB, name), as_version=4)
        assert "colab-badge.svg" in book.cells[0].source
        for cell in book.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
                assert not literal_braces(cell.source), f"{name}: {cell.source.splitlines()[0]}"


def literal_braces(source: str) -> list[str]:
    """The f-strings of `source` that print a brace ("{{x}}" where "{x}" was meant); sections
    a test cannot run (a user's own video) are checked this way."""
    return [ast.unparse(node) for node in ast.walk(ast.parse(source)) if isinstance(node, ast.JoinedStr)
            and any(isinstance(v, ast.Constant) and ("{" in v.value or "}" in v.value) for v in node.values)]


def test_a_doubled_brace_in_an_f_string_is_found():
    assert literal_braces('x = f"--dir={{DATA}}"') and not literal_braces('x = f"--dir={DATA}"; y = "{{}}"')
