"""StyleGAN-V (Skorokhodov et al., CVPR 2022): a continuous-time video generator trained on
sparse frames; `tlgen generate` makes videos of any length, at any frame rate, chunk by chunk;
`tlgen eval` scores them against the capture (`tlgen.metrics.generator_eval`).

Model functions: `tlgen.models.stylegan_v`; training: `training.py`; generation: `inference.py`.
"""

from tlgen.family import Command, Family
from tlgen.families.stylegan_v import inference, training
from tlgen.metrics import generator_eval

FAMILY = Family(
    name="stylegan_v",
    training=training.training,
    example_batch=training.example_batch,
    networks=(training.G,),
    commands={"generate": Command(inference.generate_command, inference.add_generate_arguments),
              "eval": Command(generator_eval.command(inference.generate, training.frame_size),
                              generator_eval.add_arguments)},
    inference_benchmark=inference.generator_benchmark,
)

__all__ = ["FAMILY"]
