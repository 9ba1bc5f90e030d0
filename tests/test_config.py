"""Config loading, overrides, unknown keys and workdir config checks."""

import json
import textwrap

import pytest

from tlgen import config as tlconfig
from tlgen.errors import UserError


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "toy.py"
    path.write_text(textwrap.dedent("""
        import ml_collections

        def get_config(arg="base"):
            cfg = ml_collections.ConfigDict()
            cfg.variant = arg
            cfg.total_steps = {"tiny": 10, "base": 1000}[arg]
            cfg.lr = 0.5
            cfg.use_ema = False
            cfg.name = "toy"
            cfg.widths = (8, 16)
            cfg.data = ml_collections.ConfigDict(dict(dir="", batch_size=4))
            return cfg
    """))
    return str(path)


def test_variant_and_typed_overrides(config_file):
    cfg = tlconfig.load(f"{config_file}:tiny", ["total_steps=7", "lr=1e-3", "use_ema=true",
                                                "name=other", "widths=(4, 8, 16)", "data.dir=/x"])
    assert cfg.variant == "tiny" and cfg.total_steps == 7 and cfg.lr == pytest.approx(1e-3)
    assert cfg.use_ema is True and cfg.name == "other"
    assert cfg.widths == (4, 8, 16) and cfg.data.dir == "/x"
    assert tlconfig.load(config_file).total_steps == 1000


def test_unknown_key_names_closest(config_file):
    with pytest.raises(UserError, match=r"data.batch_size"):
        tlconfig.load(f"{config_file}:tiny", ["data.bach_size=3"])
    with pytest.raises(UserError, match=r"total_steps"):
        tlconfig.load(f"{config_file}:tiny", ["total_step=3"])


def test_bad_values_and_files(config_file, tmp_path):
    with pytest.raises(UserError, match="expects an int"):
        tlconfig.load(f"{config_file}:tiny", ["total_steps=many"])
    with pytest.raises(UserError, match="expects a bool"):
        tlconfig.load(f"{config_file}:tiny", ["use_ema=maybe"])
    with pytest.raises(UserError, match="is a group"):
        tlconfig.load(f"{config_file}:tiny", ["data=3"])
    for override, says in (("lr=nan", "config key lr expects a finite float, got 'nan'."),
                           ("lr=-inf", "config key lr expects a finite float, got '-inf'."),
                           ("widths=('a', 8)", "config key widths holds whole numbers, got 'a'."),
                           ("widths=(4.5, 8)", "config key widths holds whole numbers, got 4.5."),
                           ("widths=8x16", 'config key widths expects a tuple, got \'8x16\'; e.g. '
                                           '--config.widths="(8, 16)".')):
        with pytest.raises(UserError) as error:
            tlconfig.load(f"{config_file}:tiny", [override])
        assert str(error.value) == says
    assert tlconfig.load(f"{config_file}:tiny", ["widths=(4.0, 8)"]).widths == (4, 8)
    with pytest.raises(UserError, match="does not exist"):
        tlconfig.load(str(tmp_path / "missing.py"))
    with pytest.raises(UserError, match="rejected variant"):
        tlconfig.load(f"{config_file}:huge")


def test_locked_after_load(config_file):
    cfg = tlconfig.load(f"{config_file}:tiny")
    with pytest.raises(AttributeError):
        cfg.new_field = 1


def test_save_read_and_check(config_file, tmp_path):
    cfg = tlconfig.load(f"{config_file}:tiny")
    path = str(tmp_path / "config.json")
    tlconfig.save(cfg, path)
    assert json.load(open(path))["widths"] == [8, 16]
    assert tlconfig.read(path).data.batch_size == 4
    tlconfig.check_matches(cfg, path)  # identical: no error
    changed = tlconfig.load(f"{config_file}:tiny", ["lr=0.25", "total_steps=99"])
    assert list(tlconfig.differences(changed, path)) == ["lr", "total_steps"]
    tlconfig.check_matches(changed, path, ignore=["lr", "total_steps"])
    with pytest.raises(UserError, match=r"differs from .* in lr \(0.5 there, 0.25 now\); resume"):
        tlconfig.check_matches(changed, path, ignore=["total_steps"])


def test_one_folder_spelled_two_ways_is_the_same_config(config_file, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path)
    path = str(tmp_path / "config.json")
    tlconfig.save(tlconfig.load(f"{config_file}:tiny", ["data.dir=data"]), path)
    assert list(tlconfig.differences(tlconfig.load(f"{config_file}:tiny", [f"data.dir={tmp_path}/data/"]), path)) == []
    assert list(tlconfig.differences(tlconfig.load(f"{config_file}:tiny", ["data.dir=other"]), path)) == ["data.dir"]
    assert list(tlconfig.differences(tlconfig.load(f"{config_file}:tiny", ["data.dir=gone"]), path)) == ["data.dir"]


@pytest.mark.parametrize("name, group, key", [("time_flies_city", "data", "image_size"),
                                               ("stylegan_v_clouds", "model", "resolution")])
def test_a_frame_size_spelled_as_a_number_is_the_same_config(tmp_path, name, group, key):
    """Runs saved with a single-number frame size (before sizes took an aspect) resume with
    today's (N, N) default; another size is a difference."""
    path = str(tmp_path / "config.json")
    config = tlconfig.load(f"configs/{name}.py:tiny", [f"{group}.{key}=64"])        # (64,)
    saved = tlconfig.to_dict(config)
    for old, differs in ((64, []), ([64], []), ([64, 64], []), ([64, 96], [f"{group}.{key}"]),
                         ([64, 64, 3], [f"{group}.{key}"])):
        saved[group][key] = old
        with open(path, "w") as f:
            json.dump(saved, f)
        assert list(tlconfig.differences(config, path)) == differs, old


def test_paths_are_anchored_where_the_run_starts(config_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tlconfig.load(f"{config_file}:tiny", ["data.dir=data/city"])
    tlconfig.absolute_paths(cfg)
    assert cfg.data.dir == str(tmp_path / "data" / "city")
    for kept in ("", "gs://bucket/city", "/abs/city"):
        cfg = tlconfig.load(f"{config_file}:tiny", [f"data.dir={kept}"])
        tlconfig.absolute_paths(cfg)
        assert cfg.data.dir == kept


@pytest.mark.parametrize("text, variant, says", [
    ("def get_config(\n", ":x", "has a syntax error at line 1"),
    ("def get_config(arg):\n    return None\n", "", "needs a variant"),
    ("import nosuchmodule\n", ":x", "failed to load: ModuleNotFoundError: No module named 'nosuchmodule'"),
])
def test_config_files_that_cannot_load(text, variant, says, tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(text)
    with pytest.raises(UserError, match=says):
        tlconfig.load(f"{path}{variant}")
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(UserError, match="is not a Python file"):
        tlconfig.load(str(other))
    listed = tmp_path / "config.json"
    listed.write_text("[1, 2]")
    with pytest.raises(UserError, match="holds a JSON list"):
        tlconfig.read(str(listed))


def test_overrides_from_argv():
    overrides, rest = tlconfig.overrides_from(
        ["--workdir", "w", "--config.a.b=1", "--config.c", "2", "--config=x.py"])
    assert overrides == ["a.b=1", "c=2"]
    assert rest == ["--workdir", "w", "--config=x.py"]


def test_a_config_below_the_checkout_imports_its_configs_and_family(tmp_path):
    """`tlgen train --config /checkout/tests/toy_family/config.py:tiny` from anywhere: the
    config names the family `tests.toy_family`, imported from the checkout the file is in."""
    import os
    import subprocess
    import sys

    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("from tlgen import config, family; "
            f"print(family.of(config.load({checkout + '/tests/toy_family/config.py:tiny'!r})).name)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0 and done.stdout.strip() == "toy", done.stderr
