"""A model family that lives only in tests/: proof that a family is one package and nothing
else. It trains, evaluates (with an accumulate-then-finalize metric on a frozen network read
from a user-supplied weights file), generates and benchmarks through the public CLI.

Data: 8x8 videos of a bright bar sweeping right, one column per frame, each video from its own
phase. Model: an MLP from (phase, time) to a frame, so it renders any frame of any video.
"""

import grain
import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from tlgen.family import Command, Evaluator, Family, Training
from tlgen.metrics.report import save_png, video_strips
from tlgen.models.pixels import to_model_range, to_uint8
from tlgen.train.state import TrainState, make_optimizer
from tlgen.weights import load_weights

SIZE, FEATURES = 8, 16


def videos(phases: np.ndarray, times: np.ndarray) -> np.ndarray:
    """uint8 (N, T, 8, 8, 3): the bar of video n at time t sits at column (phase_n + t) mod 8."""
    column = (phases[:, None] + times[None, :]) % SIZE
    distance = np.abs((np.arange(SIZE) - column[..., None] + SIZE / 2) % SIZE - SIZE / 2)
    bar = np.exp(-distance ** 2)[:, :, None, :, None]                     # (N, T, 1, W, 1)
    return np.broadcast_to(np.round(255 * bar), phases.shape + (len(times), SIZE, SIZE, 3)).astype(np.uint8)


class Net(nn.Module):
    @nn.compact
    def __call__(self, phase, times):                                      # (B,), (T,) -> (B, T, 8, 8, 3)
        angle = 2 * jnp.pi * (phase[:, None] + times[None, :]) / SIZE
        x = jnp.stack([jnp.sin(angle), jnp.cos(angle), jnp.sin(2 * angle), jnp.cos(2 * angle)], -1)
        x = nn.relu(nn.Dense(32)(x))
        return jnp.tanh(nn.Dense(SIZE * SIZE * 3)(x)).reshape(x.shape[:2] + (SIZE, SIZE, 3))


def features(frozen, frames):
    """The frozen network: per-frame ReLU of a fixed projection, averaged over time."""
    flat = frames.reshape(frames.shape[:2] + (-1,))
    return jnp.mean(jax.nn.relu(flat @ frozen["features"]["projection"]), axis=1)


def training(config) -> Training:
    net, tx = Net(), make_optimizer(config.optim, total_steps=config.total_steps)

    def init(rng, batch, frozen):       # frozen networks reach init too (unused by the toy)
        return TrainState.create({"net": net.init(rng, batch["phase"], batch["time"][0])["params"]},
                                 {"net": tx})

    def mse(params, batch):
        return jnp.mean((net.apply({"params": params}, batch["phase"], batch["time"][0])
                         - to_model_range(batch["frames"])) ** 2)

    def train_step(state, batch, rng, frozen):
        loss, grads = jax.value_and_grad(mse)(state.params["net"], batch)
        return state.apply_gradients("net", grads, tx), {"loss": loss}

    def compute(state, batch, frozen):
        fake = net.apply({"params": state.params["net"]}, batch["phase"], batch["time"][0])
        return {"real": features(frozen, to_model_range(batch["frames"])), "fake": features(frozen, fake)}

    def make_pipeline(split, shard_index, shard_count):
        rng = np.random.default_rng(config.seed + (split != "train"))
        phases = rng.uniform(0, SIZE, config.data.num_videos).astype(np.float32)
        times = np.arange(config.data.frames, dtype=np.float32)
        per = config.data.batch_size // shard_count
        part = lambda idx: idx[shard_index * per:(shard_index + 1) * per]
        ds = grain.MapDataset.range(config.data.num_videos).shuffle(seed=config.seed).repeat()
        ds = ds.batch(config.data.batch_size, drop_remainder=True).map(lambda idx: {
            "phase": phases[part(idx)], "time": np.tile(times, (per, 1)),
            "frames": videos(phases[part(idx)], times)})
        return ds.to_iter_dataset()

    def sample(state, batch, rng, frozen):
        return {"video": to_uint8(net.apply({"params": state.params["net"]}, batch["phase"], batch["time"][0]))}

    return Training(init, train_step, make_pipeline, sample=sample,
                    eval_step=lambda state, batch, frozen: {"mse": mse(state.params["net"], batch)},
                    evaluators={"features": Evaluator(
                        compute, lambda total, out: (total or []) + [out],
                        lambda total: {"feature_distance": float(np.sum(np.square(
                            np.mean(np.concatenate([o["real"] for o in total]), 0)
                            - np.mean(np.concatenate([o["fake"] for o in total]), 0))))})})


def render(trained, phases, times) -> np.ndarray:
    return np.asarray(to_uint8(jax.jit(Net().apply)({"params": trained.params["net"]}, phases, times)))


def generate(trained, args):
    phases = np.random.default_rng(args.seed).uniform(0, SIZE, args.num).astype(np.float32)
    for start in range(0, args.frames, 16):
        yield render(trained, phases, np.arange(start, min(start + 16, args.frames), dtype=np.float32))


def evaluate(trained, args):
    phases = np.linspace(0, SIZE, 4, endpoint=False, dtype=np.float32)
    times = np.arange(8, dtype=np.float32)
    fake, real = render(trained, phases, times), videos(phases, times)
    save_png(f"{args.out_dir}/videos.png", video_strips(list(real) + list(fake)))
    dist = features(trained.frozen, to_model_range(real)) - features(trained.frozen, to_model_range(fake))
    return {"step": trained.step, "feature_distance": float(jnp.sum(jnp.mean(dist, 0) ** 2)),
            "videos": [{"phase": float(p), "mse": float(np.mean((f / 255.0 - r / 255.0) ** 2))}
                       for p, f, r in zip(phases, fake, real)]}


FAMILY = Family(
    name="toy", training=training, networks=("net",),
    example_batch=lambda config, n: {"phase": np.zeros(n, np.float32),
                                     "time": np.zeros((n, config.data.frames), np.float32),
                                     "frames": np.zeros((n, config.data.frames, SIZE, SIZE, 3), np.uint8)},
    frozen=lambda config: {"features": lambda: load_weights(
        config.model.features, {"projection": (SIZE * SIZE * 3, FEATURES)}, key="config.model.features")},
    sharding_rules=[(r"net/Dense_0/kernel$", ("fsdp", None))],
    commands={"eval": Command(evaluate), "generate": Command(generate)})
