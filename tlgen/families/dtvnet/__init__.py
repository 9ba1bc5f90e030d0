"""DTVNet (Zhang et al., ECCV 2020): a still image animated into a time-lapse clip by a
generator driven by a motion vector, sampled or encoded from a reference video's optical flow.

Model functions: `tlgen.models.dtvnet`; training: `training.py`; animation and evaluation:
`inference.py`.
"""

from tlgen.family import Command, Family
from tlgen.families.dtvnet import inference, training

FAMILY = Family(
    name="dtvnet",
    training=training.training,
    example_batch=training.example_batch,
    networks=(training.G,),
    frozen=training.frozen,
    commands={"eval": Command(inference.eval_command, inference.add_eval_arguments),
              "animate": Command(inference.animate_command, inference.add_animate_arguments)},
    inference_benchmark=inference.generator_benchmark,
)

__all__ = ["FAMILY"]
