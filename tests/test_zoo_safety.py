"""Model safety: weights that do not fit their config, NaN weights, unknown architectures, and
manifests with paths out of their folder, non-finite normalisation or absurd sizes are refused."""

import json
import math

import pytest
import timm
import torch
from _hub_cache import snapshot
from safetensors.torch import load_file, save_file

from morphlib.zoo import ModelUnavailableError, load
from morphlib.zoo.manifest import ManifestError, parse_manifest, read_manifest

transformers = pytest.importorskip("transformers")


def _timm_folder(folder, num_classes=10):
    torch.manual_seed(0)
    net = timm.create_model("test_resnet", num_classes=num_classes).eval()
    timm.models.save_for_hf(net, str(folder), safe_serialization=True)
    return folder


def _edit_json(path, **changes):
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _local(tmp_path, folder_name="net"):
    (tmp_path / "zoo.yaml").write_text(f"models:\n  - {{id: mine, source: local, weights: {folder_name}}}\n")
    return tmp_path / "zoo.yaml"


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        (
            "everywhere",
            r"do not fit \(the model is made for 7 classes\).*mismatch for fc.weight: \(10, 96\) in the file",
        ),
        ("top", "holds a 10-class model, but its labels .* name 7 classes"),
    ],
)
def test_a_config_with_fewer_classes_than_the_weights_is_refused(tmp_path, where, problem):
    """timm would draw a new 7-class head at random (p changing between loads); we refuse."""
    folder = _timm_folder(tmp_path / "net", num_classes=10)
    _edit_json(folder / "config.json", num_classes=7)
    if where == "everywhere":
        _edit_json(folder / "config.json", model_args={"num_classes": 7})
    with pytest.raises(ModelUnavailableError, match=f"'mine' cannot be loaded: .*{problem}"):
        load("mine", manifest=_local(tmp_path))


def test_the_same_on_the_hub(hub_cache):
    folder = _timm_folder(snapshot(hub_cache, "someone/seven"), num_classes=10)
    _edit_json(folder / "config.json", num_classes=7, model_args={"num_classes": 7})
    with pytest.raises(ModelUnavailableError, match="made for 7 classes"):
        load("hf-hub:someone/seven")


def test_nan_weights_are_refused(tmp_path):
    folder = _timm_folder(tmp_path / "net")
    weights = load_file(folder / "model.safetensors")
    weights["fc.weight"][0, 0] = math.nan
    save_file(weights, folder / "model.safetensors")
    with pytest.raises(ModelUnavailableError, match=r"NaN or infinite values \(fc.weight\)"):
        load("mine", manifest=_local(tmp_path))


@pytest.mark.parametrize(
    ("architecture", "problem"),
    [("no_such_net", "timm .* cannot build it .*Unknown model"), ("resnet18", "the weights do not fit")],
)
def test_a_wrong_architecture_is_refused(tmp_path, architecture, problem):
    folder = _timm_folder(tmp_path / "net")
    _edit_json(folder / "config.json", architecture=architecture)
    with pytest.raises(ModelUnavailableError, match=problem):
        load("mine", manifest=_local(tmp_path))


def test_the_app_registry_says_what_is_wrong(tmp_path):
    from morphlib.app.registry import ModelRegistry

    folder = _timm_folder(tmp_path / "net")
    _edit_json(folder / "config.json", architecture="no_such_net")
    registry = ModelRegistry(manifest=_local(tmp_path), device="cpu")
    with pytest.raises(ModelUnavailableError, match="Unknown model"):
        registry.load("mine")


def test_transformers_weights_that_do_not_fit_are_refused(tmp_path):
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=10,
    )
    transformers.ViTForImageClassification(config).save_pretrained(tmp_path / "net")
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "net")
    labels = {str(i): f"class {i}" for i in range(7)}
    _edit_json(
        tmp_path / "net" / "config.json", id2label=labels, label2id={v: int(k) for k, v in labels.items()}
    )
    with pytest.raises(
        ModelUnavailableError, match=r"do not fit config.json: classifier.* \(10, 16\) in the file"
    ):
        load("mine", manifest=_local(tmp_path))


def test_transformers_nan_weights_and_bad_preprocessing_are_refused(tmp_path):
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_labels=3
    )
    net = transformers.ViTForImageClassification(config)
    with torch.no_grad():
        net.classifier.bias[1] = math.inf
    net.save_pretrained(tmp_path / "net")
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "net")
    with pytest.raises(ModelUnavailableError, match=r"NaN or infinite values \(classifier.bias\)"):
        load("mine", manifest=_local(tmp_path))
    _edit_json(tmp_path / "net" / "preprocessor_config.json", image_std=[0.5, float("nan"), 0.5])
    with pytest.raises(ManifestError, match="std must be finite and positive"):
        read_manifest(_local(tmp_path))
    _edit_json(
        tmp_path / "net" / "preprocessor_config.json",
        image_std=[0.5] * 3,
        size={"height": 100_000, "width": 32},
    )
    with pytest.raises(ManifestError, match=r"input size \(100000, 32\) is out of range"):
        read_manifest(_local(tmp_path))


def _entry(**changes):
    entry = {
        "id": "tiny",
        "name": "Tiny",
        "source": "bundled",
        "format": "timm",
        "architecture": "test_resnet",
        "weights": "assets/digits-cnn",
        "dataset": "digits",
        "input_size": [32, 32],
        "normalisation": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "robust": False,
        "licence": "MIT",
        "description": "a test model",
    }
    entry.update(changes)
    return {"models": [entry]}


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"weights": "assets/../../../etc"}, "weights", "no '..'"),
        ({"source": "hf-hub", "weights": "someone/.."}, "weights", "may not hold '..'"),
        (
            {"normalisation": {"mean": [0.5] * 3, "std": [0.25, math.nan, 0.25]}},
            "normalisation",
            "std must be finite",
        ),
        (
            {"normalisation": {"mean": [math.inf, 0.5, 0.5], "std": [0.25] * 3}},
            "normalisation",
            "mean must be finite",
        ),
        ({"input_size": [100_000, 32]}, "input_size", "out of range: each side must be 1 to 2048"),
        ({"robust": {"norm": "l2", "eps": math.inf}}, "robust", "eps must be a positive number"),
        ({"source": "package", "format": "ordered-state-dict", "weights": "pkg/../x.pth"}, "weights", "'..'"),
    ],
)
def test_manifest_values_are_sane(changes, field, problem):
    with pytest.raises(ManifestError, match=f"field '{field}': .*{problem}"):
        parse_manifest(_entry(**changes))


def test_nan_and_huge_values_in_a_yaml_manifest(tmp_path):
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(
        "models:\n  - {id: a, name: A, source: bundled, format: timm, architecture: test_resnet, "
        "weights: assets/digits-cnn, dataset: digits, input_size: [32, 32], robust: false, licence: MIT, "
        "description: x, normalisation: {mean: [0.5, 0.5, 0.5], std: [.nan, 0.25, 0.25]}}\n"
    )
    with pytest.raises(ManifestError, match="std must be finite and positive, got \\(nan"):
        read_manifest(manifest)


def test_a_hub_config_with_absurd_values_is_refused(hub_cache):
    folder = _timm_folder(snapshot(hub_cache, "someone/huge"))
    config = json.loads((folder / "config.json").read_text())
    config["pretrained_cfg"]["input_size"] = [3, 100_000, 100_000]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"input size \(100000, 100000\) is out of range"):
        load("hf-hub:someone/huge")
