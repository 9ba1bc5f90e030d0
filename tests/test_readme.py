"""The README's promises: the test command CI runs, the import snippet, and every documented
command (README, configs) parsing."""

import os
import subprocess
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
    assert 'eval "$cmd"' in ci
    # the command CI extracts from the README is the whole of the README's (one line, not a part)
    extract = next(line for line in ci.splitlines() if line.startswith("cmd=$("))
    done = subprocess.run(["bash", "-c", f'{extract}; printf %s "$cmd"'], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == command


def test_import_snippet_runs():
    scope: dict = {}
    exec(compile(_block("snippet:import"), "README snippet", "exec"), scope)
    w, slow, halfway, score = scope["w"], scope["slow"], scope["halfway"], scope["score"]
    assert w.shape[:2] == (2, 6) and slow.shape == (2, 64, 64, 3)
    assert halfway.shape == w.shape[1:]
    assert score.shape == (2,) and all(0.0 <= float(s) <= 1.0 for s in score)


def _commands() -> list[list[str]]:
    """Every `tlgen ...` command of the README's bash blocks and of the configs' docstrings
    (continuations joined, comments dropped; the local launcher's command as the `tlgen train`
    it runs), but the ones abbreviated with "..."."""
    import ast
    import glob
    import shlex
    texts = re.findall(r"```bash\n(.*?)```", README, re.S)
    for path in sorted(glob.glob(os.path.join(ROOT, "tlgen", "configs", "*.py"))):
        texts.append(ast.get_docstring(ast.parse(open(path).read())) or "")
    commands = []
    for text in texts:
        for line in text.replace("\\\n", " ").splitlines():
            if not line.strip().startswith(("tlgen ", "python launch/")):
                continue
            words = shlex.split(line, comments=True)
            if words[:2] == ["python", "launch/local.py"]:
                words = ["tlgen", "train", *words[words.index("--") + 1:]]
            if words[:1] == ["tlgen"] and "..." not in words:
                commands.append(words[1:])
    return commands


def test_every_documented_command_parses_with_its_runs_family_options(tmp_path, capsys):
    """Each command (README, configs) is parsed as `tlgen` parses it, its --workdir standing for
    a run of the family the docs train there (so a family's own options count), and a train
    command's config loads with its overrides: a renamed flag or config key fails here."""
    from tlgen import config as config_lib
    from tlgen.cli.main import build_parser

    commands = _commands()
    assert len(commands) >= 30 and {c[0] for c in commands} >= {
        "prepare", "train", "timelapse", "eval", "animate", "generate", "convert-weights"}
    families = {}
    for argv in commands:
        overrides, rest = config_lib.overrides_from(argv)
        if argv[0] == "train":
            spec = rest[rest.index("--config") + 1]
            family = config_lib.load(spec, overrides).family
            assert families.setdefault(rest[rest.index("--workdir") + 1], family) == family, argv
    for workdir, family in families.items():
        os.makedirs(tmp_path / workdir)
        (tmp_path / workdir / "config.json").write_text(f'{{"family": "{family}"}}')
    for argv in commands:
        argv = [str(tmp_path / a) if a in families else a for a in argv]
        _, rest = config_lib.overrides_from(argv)
        try:
            build_parser(rest).parse_args(rest)
        except SystemExit:
            raise AssertionError(f"documented command `tlgen {' '.join(argv)}` does not parse: "
                                 f"{capsys.readouterr().err.strip()}") from None


def _docstring_example(module) -> str:
    """The indented code block of a module's docstring."""
    lines = [line[4:] for line in (module.__doc__ or "").splitlines() if line.startswith("    ")]
    assert lines, f"{module.__name__} has no example in its docstring"
    return "\n".join(lines)


def test_model_docstring_examples_run():
    """The 'plain functions for other JAX code' examples of the GAN models run as written, on
    a tiny config's `model`, with the shapes their comments state (traced: `jax.eval_shape`)."""
    import textwrap

    import jax
    import jax.numpy as jnp

    from tests.test_long_video_family import TINY, TINY_SR
    from tests.test_stylegan_v_family import TINY as TINY_SGV
    from tlgen import config as config_lib
    from tlgen.models import long_video, long_video_sr, stylegan_v
    from tlgen.models.pixels import frame_shape

    def model(name, overrides):
        keys = [o[len("--config."):] for o in overrides if o.startswith("--config.model.")]
        return config_lib.load(os.path.join(ROOT, "tlgen", "configs", f"{name}.py:tiny"), keys).model

    cases = [(stylegan_v, model("stylegan_v_clouds", TINY_SGV), "frames"),
             (long_video, model("long_video_city", TINY), "video"),
             (long_video_sr, model("long_video_sr_city", TINY_SR), "frames")]
    for module, cfg, out in cases:
        source = (f"def example(key):\n{textwrap.indent(_docstring_example(module), '    ')}\n"
                  f"    return {out}, logits\n")
        scope = {**vars(module), "jax": jax, "jnp": jnp, "cfg": cfg}
        exec(compile(source, f"{module.__name__} docstring", "exec"), scope)
        video, logits = jax.eval_shape(scope["example"], jax.random.PRNGKey(0))
        size = tuple(cfg.size) if "size" in cfg else frame_shape(cfg.resolution)
        assert video.shape[0] == 1 and video.shape[2:] == (*size, 3), module.__name__
        assert logits.shape == (1,) and logits.dtype == jnp.float32, module.__name__
