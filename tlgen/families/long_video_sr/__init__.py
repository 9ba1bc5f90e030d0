"""Long videos of dynamic scenes (Brooks et al., NeurIPS 2022), the super-resolution stage:
frames `scale` times larger made from windows of low-resolution frames, trained apart from
the low-resolution stage (`long_video`) on high-resolution frames alone. Its runs upscale
a low-resolution run's videos: `tlgen generate --workdir LOWRES --superres THIS_RUN` (and
`tlgen eval` the same way); `tlgen eval --workdir THIS_RUN` scores it alone, on real frames
reduced and upscaled again (`evaluation.py`).

Model functions: `tlgen.models.long_video_sr`; training: `training.py`; the streaming pass
over a low-resolution video: `tlgen.families.long_video.inference.upscale`.
"""

from tlgen.family import Command, Family
from tlgen.families.long_video.inference import add_generate_arguments, not_lowres, upscale_benchmark
from tlgen.families.long_video_sr import evaluation, training


def refuse_generate(trained, args):
    """`tlgen generate --workdir` on a super-resolution run: it upscales, it does not generate."""
    raise not_lowres(args.workdir)


FAMILY = Family(
    name="long_video_sr",
    training=training.training,
    example_batch=training.example_batch,
    networks=(training.G,),
    inference_benchmark=upscale_benchmark,
    # long_video's options, so that a run given in the wrong place gets its sentence
    commands={"generate": Command(refuse_generate, add_generate_arguments, listed=False),
              "eval": Command(evaluation.eval_command, evaluation.add_eval_arguments)},
)

__all__ = ["FAMILY"]
