"""The timescale autoencoder family (Little, Kovac et al.): a binned latent, bin 0 the slowest
changes of a scene, trained by an in-batch contrastive loss and multi-level reconstruction;
`tlgen timelapse` renders timelapses that keep only the chosen timescales.

Model functions: `tlgen.models.timescale_ae`; training: `training.py`; levels and bands:
`levels.py`; timelapses and evaluation: `inference.py`.
"""

from tlgen.family import Command, Family
from tlgen.families.timescale_ae import inference, training
from tlgen.families.timescale_ae.levels import Levels, levels_for, make_levels

FAMILY = Family(
    name="timescale_ae",
    training=training.training,
    example_batch=training.example_batch,
    networks=(training.NET,),
    commands={"eval": Command(inference.eval_command),
              "timelapse": Command(inference.timelapse_command)},
    inference_benchmark=inference.decode_benchmark,
    explicit_mesh=True,
)

__all__ = ["FAMILY", "Levels", "levels_for", "make_levels"]
