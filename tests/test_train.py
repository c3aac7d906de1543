"""Training: seeded and reproducible, robust training runs, and the CLI writes a loadable model."""

import json

import torch
from safetensors.torch import load_file

from morphlib.cli import main
from morphlib.train import TrainConfig, train
from morphlib.zoo.loaders import load_timm_folder


def _quiet(*_args):
    pass


def test_training_is_deterministic():
    config = TrainConfig("digits", epochs=1, n_train=96, batch_size=32, robust_eps=0.5)
    a = train(config, log=_quiet)
    b = train(config, log=_quiet)
    assert not a.training
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_cli_writes_timm_folder_and_metrics(tmp_path, capsys):
    out = tmp_path / "digits-tiny"
    code = main(["train", "digits", "--epochs", "2", "--n-train", "256", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "epoch 2/2" in printed and "test accuracy" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["clean_accuracy"] <= 1 and 0 <= metrics["robust_accuracy"] <= 1
    assert metrics["eval_eps"] > 0 and metrics["config"]["dataset"] == "digits"
    assert all(t.dtype in (torch.float16, torch.int64) for t in load_file(out / "model.safetensors").values())
    net = load_timm_folder(out, num_classes=10).eval()
    assert net(torch.rand(1, 3, 32, 32)).shape == (1, 10)


def test_cli_rejects_bad_robust_spec(capsys):
    assert main(["train", "digits", "--robust", "linf:0.1", "--epochs", "1"]) == 2
    assert "l2:EPS" in capsys.readouterr().err


def test_cli_writes_a_knn_that_stores_its_training_split(tmp_path, capsys):
    out = tmp_path / "mnist-knn"
    assert main(["train", "mnist", "--arch", "knn", "--n-train", "50", "--out", str(out)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["clean_accuracy"] <= 1 and "robust_accuracy" not in metrics  # no gradient
    net = load_timm_folder(out, num_classes=10)
    assert net.train_images.dtype == torch.uint8 and net.train_images.shape == (50, 28 * 28)
    assert not net.differentiable and net(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert main(["train", "mnist", "--arch", "knn", "--noise", "0.3"]) == 2  # nothing to train


def test_noise_training_is_seeded_and_changes_what_the_network_sees():
    config = TrainConfig("mnist", arch="mlp", epochs=1, n_train=64, batch_size=32, noise=0.4)
    a, b = train(config, log=_quiet), train(config, log=_quiet)
    quiet = train(TrainConfig("mnist", arch="mlp", epochs=1, n_train=64, batch_size=32), log=_quiet)
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)
    assert not torch.equal(a.state_dict()["1.head.weight"], quiet.state_dict()["1.head.weight"])
