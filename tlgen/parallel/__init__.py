"""Device mesh, sharding rules, global-batch assembly and multi-host start-up."""

from tlgen.parallel.compile import compiler_options
from tlgen.parallel.distributed import agree, initialize_distributed
from tlgen.parallel.mesh import AXES, make_mesh
from tlgen.parallel.sharding import (alike_leaves, batch_sharding, constrain, gather_params,
                                     global_batch, is_explicit, logical_spec, param_shardings,
                                     path_name, place, replicated)

__all__ = [
    "AXES", "agree", "alike_leaves", "batch_sharding", "compiler_options", "constrain",
    "gather_params", "global_batch", "initialize_distributed", "is_explicit", "logical_spec",
    "make_mesh", "param_shardings", "path_name", "place", "replicated",
]
