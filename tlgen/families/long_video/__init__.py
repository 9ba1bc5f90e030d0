"""Long videos of dynamic scenes (Brooks et al., NeurIPS 2022), the low-resolution stage: a
video GAN whose temporal latents (filtered noise with cutoff periods up to thousands of
frames) carry change over long spans; `tlgen generate` makes videos of any length, chunk by
chunk; `tlgen eval` scores them against the capture, their change over long spans included
(`tlgen.metrics.generator_eval`), or with `--superres` their upscaled versions against the
super-resolution run's capture.

Model functions: `tlgen.models.long_video`; training: `training.py`; generation: `inference.py`.
"""

from tlgen.family import Command, Family
from tlgen.families.long_video import inference, training

FAMILY = Family(
    name="long_video",
    training=training.training,
    example_batch=training.example_batch,
    networks=(training.G,),
    commands={"generate": Command(inference.generate_command, inference.add_generate_arguments),
              "eval": Command(inference.eval_command, inference.add_eval_arguments)},
    inference_benchmark=inference.generator_benchmark,
)

__all__ = ["FAMILY"]
