"""The family interface: what a model family gives tlgen, and how tlgen finds it.

A family is one package. Built-in ones live in `tlgen/families/<name>/`; any other importable
module works too, named by its dotted path in `config.family` (e.g. "mylab.families.vae").
The package's module-level `FAMILY` is a `Family`: the one spec that the trainer,
`tlgen bench`, the generic loader (`tlgen.trained.load`) and the user commands (`tlgen eval`,
`generate`, `animate`, `timelapse`) read. Adding a family touches no file outside its package.

What a spec holds:

* `training(config) -> Training`: the pure functions the one generic trainer runs: `init`,
  `train_step`, `make_pipeline`, and optionally `eval_step`, `sample` and `evaluators`;
* `example_batch(config, batch_size)`: arrays shaped like one global batch (benchmarks and
  shape inference need no dataset);
* `networks`: the entries of `TrainState.params` that inference needs; the loader restores
  only those (their EMA copy when the run keeps one) and the state's `extra`;
* `frozen(config)`: pretrained networks (VGG, Inception, I3D) loaded once from user-supplied
  files, placed like parameters, passed to the family's functions as `frozen=`; never
  checkpointed, optimized or finite-checked;
* `sharding_rules`: (regex, partition spec) pairs that override the size rule per parameter;
* `commands`: what the family does for the user commands ("eval", "generate", "animate",
  "timelapse"), each a `Command`;
* `explicit_mesh`: whether it trains on a mesh of Explicit axis types.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import pkgutil
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tlgen.errors import UserError


def number(text: str) -> float:
    """argparse type of the commands' real-valued options: a finite float (inf and nan are
    refused as bad input, not carried into frame counts and encoders)."""
    value = float(text)
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


SEEDS = 2 ** 32      # JAX's keys hold 32 bits of a seed: larger ones repeat smaller ones


def seed(text: str) -> int:
    """argparse type of the commands' --seed: a whole number from 0 to 2**32 - 1 (each gives
    its own draws; outside that range seeds would repeat or fail)."""
    value = int(text)
    if not 0 <= value < SEEDS:
        raise argparse.ArgumentTypeError(f"{text} is not a seed from 0 to {SEEDS - 1}")
    return value


def spoken(items: Sequence[str], conjunction: str = "and") -> str:
    """Items as a sentence lists them: "a", "a and b", "a, b and c"."""
    items = list(items)
    return f" {conjunction} ".join(filter(None, [", ".join(items[:-1]), items[-1]])) if items else ""


# User commands a family may implement, with what each asks of it (see `Command`).
COMMANDS = {
    "eval": "evaluate a run",
    "generate": "generate videos",
    "animate": "animate a still image",
    "timelapse": "render timelapses",
}


@dataclasses.dataclass(frozen=True)
class Evaluator:
    """A metric over the eval split, accumulated batch by batch and finalized once.

    compute(state, batch) -> pytree of arrays: jitted by the trainer with its outputs
      replicated, so every process sees the values of the whole global batch (per-sample
      features, sums, ...). Receives `frozen=` when the family has frozen networks.
    accumulate(total, outputs) -> total: on the host, numpy outputs; `total` is None at the
      first batch.
    finalize(total) -> {name: float}: logged as eval/<name>; `train.keep_best` may name it.
    """
    compute: Callable[..., Any]
    accumulate: Callable[[Any, Any], Any]
    finalize: Callable[[Any], dict[str, float]]


def mean_of(eval_step: Callable[..., dict]) -> Evaluator:
    """The evaluator of a per-batch `eval_step` (scalar metrics): their mean over batches."""
    def accumulate(total, metrics):
        total = total or {"count": 0, "sums": {}}
        for name, value in metrics.items():
            total["sums"][name] = total["sums"].get(name, 0.0) + float(value)
        total["count"] += 1
        return total

    def finalize(total):
        return {name: value / total["count"] for name, value in total["sums"].items()}
    return Evaluator(eval_step, accumulate, finalize)


@dataclasses.dataclass(frozen=True)
class Training:
    """The training side of a family for one config: pure functions (no I/O inside jit).

    init(rng, batch) -> state at step 0 (usually a `tlgen.train.state.TrainState`); like the
      functions below it receives `frozen=` when the family has frozen networks (a network
      may start from a pretrained one).
    train_step(state, batch, rng) -> (state, metrics): fp32 scalars including "loss"; the
      trainer advances `state.step` and drops updates whose loss or state is not finite.
    make_pipeline(split, shard_index, shard_count) -> grain IterDataset of this process's part
      of each global batch (training pipelines repeat forever).
    eval_step(state, batch) -> scalar metrics, averaged over `config.train.eval_batches`.
    sample(state, batch, rng) -> {name: uint8 images (N, H, W, 3) or videos (N, T, H, W, 3)}.
    evaluators: {name: Evaluator} run beside eval_step on the same batches.
    regularize_every: k > 0 makes train_step take `regularize=` (a Python bool): True at the
      steps divisible by k (lazy regularization, e.g. StyleGAN2's R1), False at the others; the
      trainer compiles the two programs and picks one per step on the host (a branch taken
      inside the step, `lax.cond`, runs its convolutions ~30x slower on XLA:CPU).
    """
    init: Callable[..., Any]
    train_step: Callable[..., tuple[Any, dict]]
    make_pipeline: Callable[[str, int, int], Any]
    eval_step: Callable[..., dict] | None = None
    sample: Callable[..., dict] | None = None
    evaluators: Mapping[str, Evaluator] = dataclasses.field(default_factory=dict)
    regularize_every: int = 0

    def all_evaluators(self) -> dict[str, Evaluator]:
        """`evaluators` plus `eval_step` as the mean evaluator "eval_step"."""
        found = dict(self.evaluators)
        if self.eval_step is not None:
            found["eval_step"] = mean_of(self.eval_step)
        return found


@dataclasses.dataclass(frozen=True)
class Command:
    """One user command of a family.

    run(trained, args) -> the command's result, by command:
      "eval": a report dict (tables are lists of row dicts; "notes" a list of sentences),
        its PNG plots written into `args.out_dir` (a folder of this report's alone); the CLI
        puts them beside report.json / report.md.
        `args.networks` holds the metric networks the user gave (`tlgen.metrics.protocol`);
      "generate": an iterable of uint8 chunks (videos, frames, H, W, 3), in time order;
      "animate": a `tlgen.family.Animation`;
      "timelapse": the family's timelapse result (see tlgen.cli.timelapse).
    add_arguments(parser): the family's own options for that command (shown by
      `tlgen <command> --workdir W --help`).
    """
    run: Callable[[Any, argparse.Namespace], Any]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    listed: bool = True
    """False for a command that only tells where the family's runs go instead (other families'
    errors then do not offer it)."""


@dataclasses.dataclass(frozen=True)
class Animation:
    """What an "animate" command returns: uint8 frames (N, H, W, 3), arrays for `--npz`, and
    one phrase on where the motion came from (printed)."""
    frames: np.ndarray
    arrays: Mapping[str, np.ndarray]
    description: str


@dataclasses.dataclass(frozen=True)
class Family:
    """The spec of a model family (see the module docstring)."""
    name: str
    training: Callable[[Any], Training]
    example_batch: Callable[[Any, int], dict]
    networks: tuple[str, ...] = ()
    frozen: Callable[[Any], Mapping[str, Callable[[], Any]]] | None = None
    sharding_rules: Sequence[tuple[str, tuple]] = ()
    commands: Mapping[str, Command] = dataclasses.field(default_factory=dict)
    inference_benchmark: Callable[[Any, dict], tuple[Callable[[], Any], int, str]] | None = None
    """(trained, batch) -> (call, frames per call, what it measures) for `tlgen bench`;
    without it the bench times `sample`."""
    explicit_mesh: bool = False
    """Whether the family's functions run on a mesh of Explicit axis types (`config.mesh.
    axis_types = "explicit"`, where every reshape and concatenation must say how its output is
    sharded); runs of other families with it are refused."""

    def command(self, name: str) -> Command:
        """The family's `name` command, else UserError naming the built-in families that have it."""
        if name in self.commands:
            return self.commands[name]
        able = list(offering(name))
        which = (f"runs of the {spoken(able, 'or')} famil{'y' if len(able) == 1 else 'ies'}"
                 if able else "no built-in family yet")
        raise UserError(f"the {self.name} family cannot {COMMANDS[name]}; `tlgen {name}` works "
                        f"with {which}.")


BUILTIN_PACKAGE = "tlgen.families"


def module_name(name: str) -> str:
    """`config.family` -> module: a bare name is a built-in family, a dotted path is used as is."""
    return name if "." in name else f"{BUILTIN_PACKAGE}.{name}"


def builtin_names() -> list[str]:
    """Names of the built-in families (the packages of tlgen.families)."""
    package = importlib.import_module(BUILTIN_PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__)
                  if m.ispkg and not m.name.startswith("_"))


def offering(name: str) -> dict[str, Command]:
    """The built-in families' `name` commands by family, those that do the work only."""
    return {f: spec.commands[name] for f, spec in builtin().items()
            if name in spec.commands and spec.commands[name].listed}


def builtin() -> dict[str, Family]:
    """The built-in families' specs by name."""
    return {name: get(name) for name in builtin_names()}


def _import(target: str, path: str | None):
    """Module `target`, imported again with the folder `path` first on sys.path when it is not
    found as it is."""
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError:
        if not path or path in sys.path:
            raise
    sys.path.insert(0, path)
    return importlib.import_module(target)


def get(name: str, path: str | None = None) -> Family:
    """The spec of family `name` (a built-in name or a dotted module path, imported from the
    folder `path` when it is not importable as it is); UserError if none."""
    target = module_name(str(name))
    try:
        module = _import(target, path)
    except ModuleNotFoundError as e:
        if not e.name or not (target == e.name or target.startswith(e.name + ".")):
            raise                        # the family imports a module that is missing
        if "." not in str(name):
            raise UserError(f"config.family {name!r} is unknown; built-in families: "
                            f"{', '.join(builtin_names())} (or a module path like pkg.module)."
                            ) from None
        where = f"is found neither in {path} nor" if path else "is not found"
        raise UserError(f"config.family {name!r} {where} on the Python path; give "
                        "--config.family_path=FOLDER, the folder that holds its top package "
                        f"{target.split('.')[0]!r} (or put the family's config file below it)."
                        ) from None
    spec = getattr(module, "FAMILY", None)
    if not isinstance(spec, Family):
        raise UserError(f"config.family {name!r}: module {target} defines no FAMILY = "
                        "tlgen.family.Family(...).")
    return spec


def of(config) -> Family:
    """The spec of `config.family` (from `config.family_path` when the config file set it)."""
    return get(config.family, config.get("family_path"))
