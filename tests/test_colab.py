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


def test_on_colab_the_install_cell_takes_the_jax_build_of_the_runtime(monkeypatch, tmp_path):
    """Without tlgen installed, every notebook clones it and installs it with the setup.py extra
    of the runtime's accelerator: Colab's GPU runtime has a CUDA plugin built for its own JAX,
    and a plain install that moves JAX into tlgen's range would leave JAX on the CPU."""
    import glob
    import importlib.metadata
    import importlib.util
    import shutil
    import subprocess
    import sys
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    extras = set(importlib.metadata.metadata("tlgen").get_all("Provides-Extra"))
    for nvidia_smi, devices, extra in (("/usr/bin/nvidia-smi", [], "[cuda12]"),
                                       (None, ["/dev/vfio/0"], "[tpu]"), (None, [], "")):
        monkeypatch.setattr(shutil, "which", lambda cmd: nvidia_smi if cmd == "nvidia-smi" else None)
        monkeypatch.setattr(glob, "glob", lambda pattern: devices if pattern.startswith("/dev/vfio") else [])
        for name in ("quickstart.ipynb", "animate.ipynb", "fgla.ipynb", "generate.ipynb"):
            book = nbformat.read(os.path.join(COLAB, name), as_version=4)
            install, = (c for c in book.cells if c.source.startswith("# Install tlgen"))
            commands = []
            monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: commands.append(cmd))
            exec(install.source, {"REPO": "https://example.com/tlgen"})
            clone, pip = commands
            assert clone[:2] == ["git", "clone"] and clone[-2:] == ["https://example.com/tlgen", "tlgen-src"]
            assert pip[1:] == ["-m", "pip", "install", "-q", "-e", "tlgen-src" + extra]
            assert extra.strip("[]") in extras | {""}
