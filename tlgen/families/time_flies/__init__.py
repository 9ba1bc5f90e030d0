"""Time Flies (Cheng et al.): a still image animated by a reference time-lapse — the
reference's temporal variation transferred region class by region class through classwise
AdaIN and NoiseAdaIN, on a WCT²-style encoder-decoder over VGG-19 features.

Model functions: `tlgen.models.time_flies`; losses: `tlgen.losses.style`; training:
`training.py`; animation: `inference.py`; `tlgen eval`: `evaluation.py`. VGG-19's weights are a frozen network the user
supplies (`config.model.vgg19`).
"""

from tlgen.family import Command, Family
from tlgen.families.time_flies import evaluation, inference, training

FAMILY = Family(
    name="time_flies",
    training=training.training,
    example_batch=training.example_batch,
    networks=(training.G,),
    frozen=lambda config: {"vgg19": lambda: training.load_vgg19(config)},
    commands={"animate": Command(inference.animate_command, inference.add_animate_arguments),
              "eval": Command(evaluation.eval_command, evaluation.add_eval_arguments)},
    inference_benchmark=inference.generator_benchmark,
)

__all__ = ["FAMILY"]
