"""Long videos of dynamic scenes (Brooks et al., NeurIPS 2022), the super-resolution stage:
frames `scale` times larger made from windows of low-resolution frames, trained apart from
the low-resolution stage (`long_video`) on high-resolution frames alone. Its runs upscale
a low-resolution run's videos: `tlgen generate --workdir LOWRES --superres THIS_RUN` (and
`tlgen eval` the same way).

Model functions: `tlgen.models.long_video_sr`; training: `training.py`; the streaming pass
over a low-resolution video: `tlgen.families.long_video.inference.upscale`.
"""

from tlgen.errors import UserError
from tlgen.family import Command, Family
from tlgen.families.long_video.inference import add_eval_arguments, add_generate_arguments, upscale_benchmark
from tlgen.families.long_video_sr import training


def refuse(trained, args):
    """`tlgen generate` or `eval` with --workdir a super-resolution run: it upscales another
    run's videos, it does not make any."""
    raise UserError(f"{args.workdir} is a super-resolution run (long_video_sr); give it as "
                    f"--superres {args.workdir} with a low-resolution (long_video) run as --workdir.")


FAMILY = Family(
    name="long_video_sr",
    training=training.training,
    example_batch=training.example_batch,
    networks=(training.G,),
    inference_benchmark=upscale_benchmark,
    # long_video's options, so that a run given in the wrong place gets its sentence
    commands={"generate": Command(refuse, add_generate_arguments, listed=False),
              "eval": Command(refuse, add_eval_arguments, listed=False)},
)

__all__ = ["FAMILY"]
