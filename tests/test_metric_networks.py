"""The metric networks in Flax equal PyTorch references of the same architectures (with the
published module names) from the same random weights, through `tlgen convert-weights`; the
loader rejects a file with a missing or mis-shaped layer in one sentence per problem."""

import os
import re

import jax
import numpy as np
import pytest
from safetensors.numpy import save_file

torch = __import__("torch") if os.environ.get("TLGEN_REQUIRE_TORCH") else pytest.importorskip("torch")

from bench.peers import metrics as ref  # noqa: E402
from tlgen.cli.main import main  # noqa: E402
from tlgen.errors import UserError  # noqa: E402
from tlgen.metrics.perceptual import I3D, LPIPS, Inception  # noqa: E402


def _convert(tmp_path, kind, *modules) -> str:
    """Saves each module's state dict as a .pth and converts them with the CLI."""
    paths = []
    for i, module in enumerate(modules):
        paths.append(str(tmp_path / f"{kind}{i}.pth"))
        torch.save(module.state_dict(), paths[-1])
    out = str(tmp_path / f"{kind}.safetensors")
    assert main(["convert-weights", "--kind", kind, *paths, "--out", out]) == 0
    return out


def _images(n, size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _nchw(x):
    return torch.from_numpy(x.astype(np.float32) / 255.0).permute(0, 3, 1, 2)


def test_inception_features_equal_the_pytorch_reference(tmp_path):
    torch.manual_seed(0)
    net = ref.randomize_batch_norms(ref.FIDInceptionV3())
    images = _images(3, 64)
    with torch.no_grad():
        want = net(_nchw(images)).numpy()
    got = Inception.load(_convert(tmp_path, "inception", net)).features(images)
    assert got.shape == (3, 2048)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_i3d_logits_equal_the_pytorch_reference(tmp_path):
    torch.manual_seed(1)
    net = ref.randomize_batch_norms(ref.InceptionI3d())
    clips = np.stack([_images(16, 64, seed) for seed in range(2)])      # (2, 16, 64, 64, 3)
    with torch.no_grad():
        x = torch.from_numpy(clips.astype(np.float32) / 127.5 - 1).permute(0, 4, 1, 2, 3)
        want = net(x).numpy()
    got = I3D.load(_convert(tmp_path, "i3d", net)).features(clips, size=64)
    assert got.shape == (2, 400)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_equals_the_pytorch_reference(tmp_path, net):
    torch.manual_seed(2)
    model = ref.LPIPS(net).eval()
    with torch.no_grad():                        # positive heads, as trained ones are
        for i in range(5):
            getattr(model, f"lin{i}").model[1].weight.abs_()
    a, b = _images(2, 64, 3), _images(2, 64, 4)
    with torch.no_grad():
        want = model(_nchw(a), _nchw(b)).numpy()
    backbone = torch.nn.Module()
    backbone.features = model.features
    heads = torch.nn.Module()
    for i in range(5):
        setattr(heads, f"lin{i}", getattr(model, f"lin{i}"))
    lpips = LPIPS.load(_convert(tmp_path, f"lpips-{net}", backbone, heads))
    assert lpips.net == net
    got = lpips.distance(a, b)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    np.testing.assert_allclose(lpips.distance(a, a), 0.0, atol=1e-6)


def test_the_loader_names_every_missing_or_misshaped_layer(tmp_path):
    torch.manual_seed(3)
    state = {k: v.numpy() for k, v in ref.LPIPS("alex").state_dict().items()}
    state["features.3.weight"] = state["features.3.weight"][:10]
    del state["lin2.model.1.weight"]
    state["features.0.bias"][2] = np.nan
    path = str(tmp_path / "broken.safetensors")
    save_file(state, path)
    with pytest.raises(UserError) as error:
        LPIPS.load(path, key="--lpips")
    message = str(error.value)
    assert message.startswith("--lpips does not hold the expected weights: ")
    assert f"{path}: 'features.3.weight' has shape (10, 64, 5, 5), expected (192, 64, 5, 5)." in message
    assert f"{path} has no array 'lin2.model.1.weight' (expected shape (1, 384, 1, 1))." in message
    assert f"{path}: 'features.0.bias' holds NaN or infinite values (a damaged file?)." in message
    other = str(tmp_path / "other.safetensors")            # another network's file: one sentence
    save_file({"conv.weight": np.zeros((2, 2), np.float32)}, other)
    with pytest.raises(UserError) as error:
        LPIPS.load(other, key="--lpips")
    assert re.fullmatch(f"--lpips does not hold the expected weights: {re.escape(other)} has none of "
                        r"the 15 arrays they need \(such as 'features\.0\.\w+'\); is it the file of "
                        "another network\\?", str(error.value)), str(error.value)


def test_convert_weights_refuses_a_folder_a_pickled_module_a_non_pickle_and_an_out_in_no_folder(tmp_path, capsys):
    module = str(tmp_path / "module.pth")
    torch.save(torch.nn.Linear(2, 2), module)          # the module pickled, not its state dict
    weights = str(tmp_path / "ok.pth")
    torch.save(torch.nn.Linear(2, 2).state_dict(), weights)
    empty, text = str(tmp_path / "empty.pth"), str(tmp_path / "notes.pth")
    open(empty, "w").close()
    with open(text, "w") as f:
        f.write("not weights")
    for inputs, out, says in [([str(tmp_path)], "x.safetensors", f"{tmp_path} is a folder;"),
                              ([module], "x.safetensors", f"{module} is a pickled module, which is not "
                               "read (that would run its code): save its state_dict() and convert that."),
                              ([empty], "x.safetensors", f"{empty} is empty (0 bytes); give a state "
                               "dict saved by torch.save or a TorchScript file."),
                              ([text], "x.safetensors", f"{text} is not a readable PyTorch save (damaged, "),
                              ([weights], str(tmp_path / "none" / "x.safetensors"),
                               f"--out {tmp_path}/none/x.safetensors: its folder {tmp_path}/none does not exist")]:
        assert main(["convert-weights", "--kind", "vgg19", *inputs, "--out", out]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "none").exists()
    bare = str(tmp_path / "bare.pth")
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, bare)
    assert main(["convert-weights", "--kind", "vgg19", bare, "--out", "x.safetensors"]) == 2
    assert (f"{bare} holds no tensors, but 'epoch', 'optimizer'; save the network's "
            "state_dict() and convert that." in capsys.readouterr().err)


def test_convert_weights_reads_a_checkpoint_dict_and_dataparallel_names(tmp_path):
    torch.manual_seed(2)
    net = ref.LPIPS("alex")
    plain = LPIPS.load(_convert(tmp_path, "lpips-alex", net))
    wrapped = str(tmp_path / "wrapped.pth")            # {"model": DataParallel's state dict, ...}
    torch.save({"epoch": 7, "model": {f"module.{k}": v for k, v in net.state_dict().items()}}, wrapped)
    out = str(tmp_path / "wrapped.safetensors")
    assert main(["convert-weights", "--kind", "lpips-alex", wrapped, "--out", out]) == 0
    a, b = _images(2, 32, 1), _images(2, 32, 2)
    np.testing.assert_array_equal(LPIPS.load(out).distance(a, b), plain.distance(a, b))
    with pytest.raises(TypeError, match="images must be uint8 \\(0..255\\) or floats in \\[0, 1\\], not int"):
        plain.distance(a.astype(np.int64), b)


def test_features_split_over_the_devices_of_a_mesh(tmp_path):
    import ml_collections

    from tlgen.parallel import make_mesh
    torch.manual_seed(4)
    path = _convert(tmp_path, "lpips-alex", ref.LPIPS("alex"))
    a, b = _images(11, 64, 5), _images(11, 64, 6)
    one = LPIPS.load(path).distance(a, b)
    mesh = make_mesh(ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1)))
    sharded = LPIPS.load(path, mesh=mesh)
    np.testing.assert_allclose(sharded.distance(a, b), one, rtol=1e-5)
    assert len(jax.devices()) == 8 and mesh.size == 8
