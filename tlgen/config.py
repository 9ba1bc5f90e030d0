"""Configs: `get_config(arg)` files, `--config.key=value` overrides, `config.json` in a workdir.

A config is selected as ``path/to/file.py:variant`` (the part after the colon is passed to
the file's ``get_config``) and overridden with ``key.sub=value`` strings, whose values are
parsed by the type of the field they replace. Unknown keys are errors that name the
closest valid keys.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence

import ml_collections

from tlgen.errors import UserError
from tlgen.files import not_a_file, write_text


def load(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """Loads `file.py[:arg]`, applies `key=value` overrides and returns the locked config."""
    path, _, arg = spec.partition(":")
    path = resolve_path(path)
    module, root = _import_file(path)
    if not hasattr(module, "get_config"):
        raise UserError(f"config file {path} defines no get_config(arg) function.")
    if not arg:
        try:
            inspect.signature(module.get_config).bind()
        except TypeError as e:
            raise UserError(f"config file {path} needs a variant ({e}); pass --config "
                            f"{path}:VARIANT.") from None
    try:
        config = module.get_config(arg) if arg else module.get_config()
    except (KeyError, ValueError) as e:
        said = str(e).strip("'\"").rstrip(".")
        raise UserError(f"config file {path}: {said}." if repr(arg) in said else
                        f"config file {path} rejected variant {arg!r}: {said}.") from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise UserError(f"get_config in {path} must return an ml_collections.ConfigDict.")
    family = str(config.get("family", ""))
    if "." in family:          # a family outside tlgen: the run's commands import it from here
        with config.unlocked():
            config.family_path = _package_root(path, family) or root
    apply_overrides(config, overrides)
    config.lock()
    return config


def shipped_configs() -> str:
    """The folder of tlgen's own configs, the package `tlgen.configs`."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def resolve_path(path: str) -> str:
    """A config path as given, else `configs/<file>.py` as one of tlgen's own configs (so
    it works from any folder, with tlgen installed or in a checkout)."""
    if os.path.isfile(path):
        return path
    parts = os.path.normpath(path).split(os.sep)
    if parts[0] == "configs" and len(parts) > 1 and os.path.isfile(os.path.join(shipped_configs(), *parts[1:])):
        return os.path.join(shipped_configs(), *parts[1:])
    names = ", ".join(sorted(f[:-3] for f in os.listdir(shipped_configs())
                             if f.endswith(".py") and f not in ("__init__.py", "common.py")))
    raise UserError(f"config file {path} {not_a_file(path)}; pass --config configs/<file>.py:<variant> "
                    f"(tlgen's own: {names}) or the path of your own.")


def _nearest_above(path: str, holds: Callable[[str], bool]) -> str | None:
    """The nearest folder at or above file `path`'s own for which `holds(folder)`; None if none."""
    folder = os.path.dirname(os.path.abspath(path))
    while not holds(folder):
        if os.path.dirname(folder) == folder:
            return None
        folder = os.path.dirname(folder)
    return folder


def _package_root(path: str, module: str) -> str | None:
    """Where dotted `module` (`config.family`) imports from: the nearest folder at or above
    config file `path`'s that holds it (a module file or a package folder)."""
    where = lambda folder: os.path.join(folder, *module.split("."))
    return _nearest_above(path, lambda f: os.path.isfile(where(f) + ".py")
                          or os.path.isfile(os.path.join(where(f), "__init__.py")))


def _import_file(path: str):
    """Imports a config file: (module, root). The root, the nearest folder above it that holds
    a `configs` folder (else its folder's parent), goes on sys.path, so the file may import
    modules of the project it is in (tlgen's own package folder never does: its modules would
    shadow top-level names)."""
    root = (_nearest_above(path, lambda f: os.path.isdir(os.path.join(f, "configs")))
            or os.path.dirname(os.path.dirname(os.path.abspath(path))))
    if root not in sys.path and root != os.path.dirname(os.path.abspath(__file__)):
        sys.path.insert(0, root)
    name = "tlgen_config_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise UserError(f"config file {path} is not a Python file; pass --config "
                        "configs/<file>.py:<variant>.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # dataclasses and Flax modules defined in a config need this
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise UserError(f"config file {path} has a syntax error at line {e.lineno}: {e.msg}.") from None
    except Exception as e:  # noqa: BLE001  (whatever a user's file raises is its error)
        raise UserError(f"config file {path} failed to load: {type(e).__name__}: {e}.") from None
    return module, root


def flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """All leaf keys of `config` as dotted paths."""
    keys = []
    for key, value in config.items():
        path = prefix + key
        if isinstance(value, ml_collections.ConfigDict):
            keys.extend(flat_keys(value, path + "."))
        else:
            keys.append(path)
    return keys


def _unknown_key(config, key: str) -> UserError:
    close = difflib.get_close_matches(key, flat_keys(config), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return UserError(f"unknown config key {key!r}.{hint}")


def _like(item, example, key: str):
    """A tuple override's element as the default's elements are: ints stay ints, floats take
    numbers; other kinds (nested tuples, strings) are checked by their users."""
    number = isinstance(item, (int, float)) and not isinstance(item, bool)
    if isinstance(example, int) and not isinstance(example, bool):
        if not (number and float(item).is_integer()):
            raise UserError(f"config key {key} holds whole numbers, got {item!r}.")
        return int(item)
    if isinstance(example, float):
        if not number or not math.isfinite(item):
            raise UserError(f"config key {key} holds finite numbers, got {item!r}.")
        return float(item)
    return item


def _parse_value(text: str, current, key: str):
    try:
        if isinstance(current, bool):
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError
            return lowered in ("true", "1")
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
        if isinstance(current, str):
            return text
        if isinstance(current, (tuple, list)):
            value = ast.literal_eval(text)
            value = value if isinstance(value, (tuple, list)) else (value,)
            if not current:
                return type(current)(value)
            return type(current)(_like(item, current[0], key) for item in value)
    except (ValueError, SyntaxError):
        kind = type(current).__name__
        kind = "finite float" if kind == "float" else kind
        example = (f"; e.g. --config.{key}=\"{tuple(current)}\"" if isinstance(current, (tuple, list))
                   and current else "")
        raise UserError(f"config key {key} expects {'an' if kind[0] in 'aeiou' else 'a'} {kind}, "
                        f"got {text!r}{example}.") from None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parent(config: ml_collections.ConfigDict, key: str):
    """(the group holding dotted `key`, its last part); (None, ...) when a group is missing."""
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
        node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
    return (node if isinstance(node, ml_collections.ConfigDict) else None), leaf


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> None:
    """Sets each `a.b=value` in place; values are parsed by the existing field's type."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"config override {item!r} must look like key=value.")
        node, leaf = _parent(config, key)
        if node is None or leaf not in node:
            raise _unknown_key(config, key)
        current = node[leaf]
        if isinstance(current, ml_collections.ConfigDict):
            raise UserError(f"config key {key} is a group; set one of its keys, e.g. {key}.{next(iter(current.keys()), '...')}.")
        try:
            node[leaf] = _parse_value(text, current, key)
        except TypeError as e:
            raise UserError(f"config key {key} cannot take {text!r}: {e}") from None


# Keys that name a local file or folder; `absolute_paths` anchors them where a run starts.
PATH_KEYS = ("data.dir", "model.vgg19", "eval.inception", "eval.i3d", "eval.lpips")
# The weights files a model reads (frozen networks), which a run must keep using.
MODEL_FILE_KEYS = tuple(k for k in PATH_KEYS if k.startswith("model."))


def named_paths(config: ml_collections.ConfigDict) -> dict[str, str]:
    """{key: path} of the PATH_KEYS that `config` sets (to a non-empty string)."""
    found = {}
    for key in PATH_KEYS:
        node, leaf = _parent(config, key)
        value = None if node is None else node.get(leaf)
        if isinstance(value, str) and value:
            found[key] = value
    return found


def absolute_paths(config: ml_collections.ConfigDict) -> None:
    """Makes the relative paths under PATH_KEYS absolute, so that a work directory's saved
    config resumes from any current directory (URLs such as gs://... stay as they are)."""
    for key, value in named_paths(config).items():
        if "://" not in value:
            node, leaf = _parent(config, key)
            node[leaf] = os.path.abspath(value)


def check_at_least(config: ml_collections.ConfigDict, least: Mapping[str, float],
                   positive: Iterable[str] = ()) -> None:
    """UserError naming the first dotted key of `least` whose value in `config` (a number, or
    each number of a tuple) is below its least value, or of `positive` that is not above 0:
    sizes, counts, periods and scales a model cannot be built with."""
    for key, bound in [(k, None) for k in positive] + list(least.items()):
        node, leaf = _parent(config, key)
        value = node[leaf]
        values = value if isinstance(value, (tuple, list)) else (value,)
        if not values:
            raise UserError(f"config.{key} is empty; give at least one entry.")
        if not all(v > 0 if bound is None else v >= bound for v in values):
            each = " in each entry" if values is value else ""
            use = "a positive number" if bound is None else f"{bound:g} or more"
            raise UserError(f"config.{key} is {value}; use {use}{each}.")


def check_frame_size(config: ml_collections.ConfigDict, key: str, divisor: int, why: str,
                     least: int = 8) -> tuple[int, int]:
    """(height, width) of the frame size at dotted `key` (N or (N,) is N x N); UserError unless
    it is one or two whole numbers, each `least` or more and a multiple of `divisor` (`why`:
    what halves it), naming the nearest size that is."""
    from tlgen.models.pixels import frame_shape

    node, leaf = _parent(config, key)
    try:
        size = frame_shape(node[leaf])
    except ValueError as e:
        raise UserError(f"config.{key} is {node[leaf]}: {e}.") from None
    if min(size) < least:
        raise UserError(f"config.{key} is {size_text(size)}; use {least} or more pixels a side.")
    if any(side % divisor for side in size):
        smallest = -(-least // divisor) * divisor
        near = [max(smallest, round(side / divisor) * divisor) for side in size]
        raise UserError(f"config.{key} is {size_text(size)}; it must be a multiple of {divisor}: "
                        f"{why} (the nearest such size is {size_text(near)}).")
    return size


def size_text(size) -> str:
    """A frame size (height, width) as the messages write it: N when square, else HxW."""
    h, w = size
    return f"{h}" if h == w else f"{h}x{w}"


def compute_dtype(config):
    """The activation dtype of `config.dtype` ("float32" or "bfloat16"); parameters stay fp32."""
    import jax.numpy as jnp

    dtypes = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
    if config.dtype not in dtypes:
        raise UserError(f"config.dtype is {config.dtype!r}; use float32 or bfloat16.")
    return dtypes[config.dtype]


def to_dict(config: ml_collections.ConfigDict) -> dict:
    """The config as plain JSON-compatible data (tuples become lists)."""
    return json.loads(config.to_json(sort_keys=True))


def save(config: ml_collections.ConfigDict, path: str) -> None:
    """Writes `config` as JSON to `path` atomically."""
    write_text(path, config.to_json(indent=2, sort_keys=True))


def read(path: str) -> ml_collections.ConfigDict:
    """Reads a config saved by `save` (e.g. a workdir's config.json)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read config {path}: {e}.") from None
    if not isinstance(data, dict):
        raise UserError(f"cannot read config {path}: it holds a JSON {type(data).__name__}, not "
                        "a config object.")
    return ml_collections.ConfigDict(data)


# The sections of every run's config: configs/common.py's `base`, and the family's data and model.
RUN_SECTIONS = ("family", "variant", "seed", "total_steps", "dtype", "train", "mesh", "data", "model")


def missing_sections(config) -> list[str]:
    """The RUN_SECTIONS (and `data.batch_size`) a run's config lacks."""
    missing = [key for key in RUN_SECTIONS if key not in config]
    if "data" in config and "batch_size" not in config.data:
        missing.append("data.batch_size")
    return missing


def read_run(path: str) -> ml_collections.ConfigDict:
    """`read` of a run's saved config, checked to hold every section of a family's config."""
    config = read(path)
    missing = missing_sections(config)
    if missing:
        raise UserError(f"{path} has no {', '.join(missing)}: it is not a whole `tlgen train` "
                        "config; restore it, or train in a new --workdir.")
    return config


def differences(config: ml_collections.ConfigDict, path: str, ignore: Iterable[str] = ()) -> dict:
    """{dotted key: (value saved at `path`, value in `config`)} of the keys where they differ."""
    saved = flatten(to_dict(read(path)))
    now = flatten(to_dict(config))
    ignored = tuple(ignore)
    keys = sorted(set(saved) | set(now))
    return {k: (saved.get(k), now.get(k)) for k in keys if not _same(saved.get(k), now.get(k), k)
            and not any(k == i or k.startswith(i + ".") for i in ignored)}


# Keys of frame sizes that were single numbers before they took (height, width).
FRAME_SIZE_KEYS = ("image_size", "resolution")


def _same(a, b, key: str) -> bool:
    """Equal values, two spellings (relative, absolute, a link) of one existing path, or of one
    frame size (N, (N,) and (N, N); sizes were single numbers before they took an aspect)."""
    if a == b:
        return True
    if key.rsplit(".", 1)[-1] in FRAME_SIZE_KEYS and a is not None and b is not None:
        from tlgen.models.pixels import frame_shape

        try:
            return frame_shape(a) == frame_shape(b)
        except ValueError:
            return False
    return (isinstance(a, str) and isinstance(b, str) and bool(a) and bool(b)
            and os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b))


def check_matches(config: ml_collections.ConfigDict, path: str, ignore: Iterable[str] = ()) -> None:
    """Raises UserError when `config` differs from the one saved at `path` (keys in `ignore` may)."""
    diff = differences(config, path, ignore)
    if diff:
        shown = ", ".join(f"{k} ({old} there, {new} now)" for k, (old, new) in list(diff.items())[:8])
        shown += " ..." if len(diff) > 8 else ""
        raise UserError(f"the config differs from {path} in {shown}; resume with the same "
                        "config or use a new --workdir.")


def flatten(data, prefix: str = "") -> dict:
    """{dotted key: value} of the leaves of a nested dict (`to_dict` of a config)."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def add_config_arguments(parser, required: bool = True) -> None:
    """Adds `--config FILE.py:variant`; the command line also accepts `--config.key=value`."""
    parser.add_argument("--config", required=required, metavar="FILE.py:VARIANT",
                        help="config file and variant, e.g. configs/timescale_ae_synthetic.py:tiny; "
                             "override any field with --config.key=value")
    parser.set_defaults(accepts_config_overrides=True)


def overrides_from(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Splits leftover arguments into (`key=value` overrides, everything else).

    Accepts both `--config.key=value` and `--config.key value`.
    """
    overrides, rest = [], []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item.startswith("--config."):
            body = item[len("--config."):]
            if "=" not in body:
                if i + 1 >= len(items):
                    raise UserError(f"{item} needs a value: {item}=VALUE.")
                body = f"{body}={items[i + 1]}"
                i += 1
            overrides.append(body)
        else:
            rest.append(item)
        i += 1
    return overrides, rest
