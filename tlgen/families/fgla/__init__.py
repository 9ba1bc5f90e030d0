"""FGLA (Xue et al., ACM MM 2021): a landscape photo animated region by region — a partial-
convolution encoder gives each semantic region its own motion latent, a U-Net turns the
photo and the painted latent map into a flow, and every frame is the photo warped by the
flow accumulated from frame 0. `--config.model.per_region=False` is the global-latent "AL"
variant of the paper's ablation.

Model functions: `tlgen.models.fgla`; training: `training.py`; animation and evaluation:
`inference.py`.
"""

from tlgen.family import Command, Family
from tlgen.families.fgla import inference, training

FAMILY = Family(
    name="fgla",
    training=training.training,
    example_batch=training.example_batch,
    networks=(training.NET,),
    commands={"eval": Command(inference.eval_command, inference.add_eval_arguments),
              "animate": Command(inference.animate_command, inference.add_animate_arguments)},
    inference_benchmark=inference.generator_benchmark,
)

__all__ = ["FAMILY"]
