"""Bring your own classifier: wrap() an nn.Module, a local folder in a manifest of your own
(MORPHLIB_ZOO), and transformers image classifiers by hf-hub id, from a Hub cache laid out here."""

import json
import shutil
import warnings

import pytest
import torch
from _hub_cache import snapshot
from torch import nn

from morphlib import MorphConfig, Strength, data, gradient, morph, morph_batch
from morphlib.app.registry import ModelRegistry
from morphlib.engine import auto_strength
from morphlib.zoo import (
    ModelUnavailableError,
    ProbabilitiesWarning,
    ZooModel,
    label_names,
    list_models,
    load,
    register,
    unregister,
    wrap,
)
from morphlib.zoo.manifest import REPO_ROOT, ManifestError, read_manifest

transformers = pytest.importorskip("transformers")

PETS = ["cat", "dog", "fish"]
DIGITS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def digits_net():
    """The bundled digits network itself (a timm ResNet on normalised 32 × 32 RGB), outside the zoo."""
    return load("digits-cnn").net


@pytest.fixture(scope="module")
def digits():
    images, labels, names = data.load("digits", "test", n=60, seed=0)
    return images, labels


def _wrapped_digits(net, **changes):
    settings = dict(labels=DIGITS, mean=[0.5] * 3, std=[0.25] * 3, input_size=(32, 32), name="my-digits")
    return wrap(net, **{**settings, **changes})


# ----------------------------------------------------------------------------- wrap


def test_wrapped_module_classifies_like_the_zoo_model(digits_net, digits):
    images, labels = digits
    model = _wrapped_digits(digits_net)
    assert isinstance(model, ZooModel) and model.labels == DIGITS and model.entry.id == "my-digits"
    assert model.entry.input_size == (32, 32) and model.entry.channels == 3 and model.entry.source == "module"
    with torch.no_grad():
        logits = model(images)
        assert torch.allclose(logits, load("digits-cnn")(images), atol=1e-5)
    assert (logits.argmax(1) == labels).float().mean() > 0.9
    assert model.predict(images[0], k=1)[0][0] == str(int(labels[0]))
    big = torch.nn.functional.interpolate(images[:2], size=(64, 48), mode="bilinear")
    x = (
        big[:, :1].clone().requires_grad_(True)
    )  # grey, of another size: fitted inside, gradient to the pixels
    model(x)[:, 3].sum().backward()
    assert x.grad.shape == (2, 1, 64, 48) and x.grad.abs().sum() > 0
    assert load(model) is model


def test_wrapped_module_goes_through_morph_strength_batches_and_the_app(digits):
    images, labels = digits
    model = _wrapped_digits(load("digits-cnn-robust").net)  # robust: its auto strength reaches the target
    source, target = images[0], (int(labels[0]) + 1) % 10
    result = morph(
        model,
        source,
        target,
        frames=3,
        config=MorphConfig(family="csp-phase", regime="frozen"),
        strength=Strength.budget(2.0),
    )
    assert result.target_probs[-1] > result.target_probs[0]
    first, _, _ = data.load("digits", "test", n=1, seed=0)  # the case of morphlib.engine.auto's example
    found = auto_strength(gradient(model, first[0], "4", config=MorphConfig(family="pixel")), Strength.auto())
    zoo_found = auto_strength(
        gradient(load("digits-cnn-robust"), first[0], "4", config=MorphConfig(family="pixel")),
        Strength.auto(),
    )
    assert found.reached and found.alpha == pytest.approx(zoo_found.alpha, rel=1e-4)
    targets = [DIGITS[target], DIGITS[target]]
    batch = morph_batch(
        model,
        images[:2],
        targets,
        frames=3,
        config=MorphConfig(family="pixel"),
        strength=Strength.budget(1.0),
    )
    assert all(r.target_probs[-1] > r.target_probs[0] for r in batch)

    registry = ModelRegistry(extra={"mine": model}, device="cpu")
    assert registry.load("mine") is model and registry.choice("mine").entry.input_size == (32, 32)
    assert "my-digits" in registry.describe("mine")


def test_a_registered_wrapped_model_drives_an_evaluation(tmp_path, digits_net):
    from morphlib.evaluate import EvalConfig, evaluate

    settings = dict(mean=[0.5] * 3, std=[0.25] * 3, input_size=(32, 32), name="wrapped-digits")
    model = wrap(digits_net, dataset="digits", **settings)
    assert model.labels == DIGITS and model.entry.dataset == "digits"
    assert register(model) == "wrapped-digits" and load("wrapped-digits") is model
    try:
        config = EvalConfig(
            dataset="digits",
            model="wrapped-digits",
            judges=("digits-judge",),
            families=("pixel",),
            budgets=(1.0,),
            regimes=("frozen",),
            sources=2,
            frames=3,
        )
        rows = evaluate(config, tmp_path / "run")
    finally:
        unregister("wrapped-digits")
    assert len(rows) == 2 and all("digits-judge" in row["judges"] for row in rows)
    with pytest.raises(ValueError, match="unknown model 'wrapped-digits'"):
        load("wrapped-digits")
    with pytest.raises(ValueError, match="not both"):
        wrap(digits_net, dataset="digits", labels=DIGITS, **settings)
    with pytest.raises(ValueError, match="unknown label set 'cifar'"):
        wrap(digits_net, dataset="cifar", **settings)


class _Features(nn.Module):
    """A network answering ``(logits, features)``, or an object with ``.logits`` like transformers'."""

    def __init__(self, net, kind):
        super().__init__()
        self.net, self.kind = net, kind

    def forward(self, x):
        logits = self.net(x)
        if self.kind == "tuple":
            return logits, x.mean((2, 3))
        return transformers.modeling_outputs.ImageClassifierOutput(logits=logits)


@pytest.mark.parametrize("kind", ["tuple", "logits"])
def test_tuples_and_logits_attributes_are_read(digits_net, digits, kind):
    images, _ = digits
    with torch.no_grad():
        expected = _wrapped_digits(digits_net)(images[:4])
        assert torch.allclose(_wrapped_digits(_Features(digits_net, kind))(images[:4]), expected)


def test_probabilities_raise_a_warning(digits_net, digits):
    images, _ = digits
    softmax = nn.Sequential(digits_net, nn.Softmax(-1))
    with pytest.warns(ProbabilitiesWarning, match="probabilities.*remove the final softmax"):
        wrapped = _wrapped_digits(softmax)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _wrapped_digits(digits_net)(images[:2])  # logits: no warning
        wrapped(images[:2])  # said once, at wrap time
    built = ZooModel(softmax, load("digits-cnn").entry, DIGITS)  # a ZooModel made by hand: its first answer
    with pytest.warns(ProbabilitiesWarning):
        built(images[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        built(images[:2])


def test_wrap_refuses_what_the_module_cannot_take(digits_net):
    with pytest.raises(ValueError, match=r"first layer 'conv1.0' takes 3 channels, not 1; pass channels=3"):
        _wrapped_digits(digits_net, channels=1, mean=[0.5], std=[0.25])
    with pytest.raises(ValueError, match="grey \\(channels=1\\) or RGB \\(channels=3\\)"):
        _wrapped_digits(digits_net, channels=4)
    with pytest.raises(ValueError, match="answers 10 classes but labels has 3 names"):
        _wrapped_digits(digits_net, labels=PETS)
    with pytest.raises(ValueError, match="std must be finite and positive"):
        _wrapped_digits(digits_net, std=[0.25, 0.0, 0.25])
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))  # takes 28 × 28 grey only
    with pytest.raises(ValueError, match=r"fails on a \(1, 1, 32, 32\) batch .*pass the input_size=\(H, W\)"):
        wrap(mlp, channels=1, input_size=(32, 32))
    model = wrap(mlp, channels=1, input_size=(28, 28))
    assert model.labels == DIGITS and model(torch.rand(2, 3, 40, 40)).shape == (
        2,
        10,
    )  # RGB of any size: fitted
    with pytest.raises(TypeError, match=r"morphlib.zoo.wrap\(module, labels="):
        load(digits_net)
    with pytest.raises(TypeError, match="nn.Module"):
        wrap("resnet50")


# ------------------------------------------------------------------ your own manifest


def _copy_bundled(model_id, folder):
    shutil.copytree(REPO_ROOT / "assets" / model_id, folder, ignore=shutil.ignore_patterns("metrics.json"))


def test_local_folder_in_a_manifest_of_your_own(tmp_path, monkeypatch, digits):
    images, _ = digits
    with torch.no_grad():
        bundled = load("digits-cnn")(images)
    _copy_bundled("digits-cnn", tmp_path / "models" / "digits")
    (tmp_path / "models" / "digit-names.txt").write_text("\n".join(f"digit {i}" for i in range(10)) + "\n")
    manifest = tmp_path / "models" / "my-zoo.yaml"
    manifest.write_text(
        "models:\n"
        "  - {id: mine, source: local, weights: digits, labels: digit-names.txt}\n"
        "  - {id: mine-digits, source: local, weights: digits, dataset: digits, name: My digits}\n"
    )
    monkeypatch.setenv("MORPHLIB_ZOO", str(manifest))
    entries = read_manifest()
    assert list(entries) == ["mine", "mine-digits"]
    mine = entries["mine"]
    assert (mine.format, mine.architecture, mine.input_size) == ("timm", "test_resnet", (32, 32))
    assert mine.mean == (0.5, 0.5, 0.5) and mine.std == (0.25, 0.25, 0.25)  # from the folder's config.json
    assert [s.location for s in list_models()] == ["local", "local"]
    assert (
        label_names(mine)[3] == "digit 3" and label_names(entries["mine-digits"]) == DIGITS
    )  # nothing loaded
    with pytest.raises(ValueError, match="unknown label set 'mine'.*pass its ZooEntry"):
        label_names(mine.dataset)
    model = load("mine")
    assert model.labels[3] == "digit 3"
    with torch.no_grad():
        assert torch.allclose(model(images), bundled, atol=1e-6)
    with pytest.raises(ValueError, match="unknown model 'digits-cnn'; known models: mine, mine-digits"):
        load("digits-cnn")  # MORPHLIB_ZOO replaces the repository's zoo.yaml
    assert load("mine-digits").entry.name == "My digits" and load("mine-digits").labels == DIGITS


def test_evaluation_of_a_local_model_named_by_morphlib_zoo(tmp_path, monkeypatch):
    from morphlib.evaluate import EvalConfig, evaluate

    _copy_bundled("digits-cnn", tmp_path / "digits")
    (tmp_path / "zoo.yaml").write_text(
        "models:\n  - {id: mine, source: local, weights: digits, dataset: digits}\n"
    )
    monkeypatch.setenv("MORPHLIB_ZOO", str(tmp_path / "zoo.yaml"))
    config = EvalConfig(
        dataset="digits",
        model="mine",
        judges=(),
        families=("pixel",),
        budgets=(1.0,),
        regimes=("frozen",),
        sources=2,
        frames=3,
    )
    rows = evaluate(config, tmp_path / "run")
    assert len(rows) == 2 and all(0 <= row["target"] < 10 for row in rows)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{id: a, source: local, weights: ../outside}", "field 'weights': .*inside"),
        ("{id: a, source: local, weights: /etc}", "field 'weights': .*not absolute"),
        ("{id: a, source: local, weights: link}", "field 'weights': .*leads outside"),
        ("{id: a, source: local, weights: empty}", "field 'weights': .*has no config.json"),
        (
            "{id: a, source: local, weights: digits, labels: [a, b]}",
            "field 'labels': 2 names, but .* 10 classes",
        ),
        ("{id: a, source: local, weights: digits, labels: ../names.txt}", "field 'labels': cannot read"),
        ("{id: a, source: local, weights: digits, labels: [a, a]}", "field 'labels': .*distinct"),
        (
            "{id: a, source: local, weights: digits, format: transformers}",
            "field 'format': 'transformers', but",
        ),
        (
            "{id: a, source: local, weights: digits, dataset: digits, labels: [a]}",
            "field .labels.: .*not both",
        ),
    ],
)
def test_local_entries_are_checked(tmp_path, line, problem):
    root = tmp_path / "zoo"
    _copy_bundled("digits-cnn", root / "digits")
    (root / "empty").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "names.txt").write_text("a\n")
    (root / "link").symlink_to(tmp_path / "outside")
    (root / "zoo.yaml").write_text(f"models:\n  - {line}\n")
    with pytest.raises(ManifestError, match=f"entry #1 'a': {problem}"):
        read_manifest(root / "zoo.yaml")


# ---------------------------------------------------------------- transformers models


def _tiny_vit(folder, labels=PETS, processor=None):
    """A tiny random ViT image classifier saved as save_pretrained writes it; returned in eval mode."""
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    net = transformers.ViTForImageClassification(config).eval()
    net.save_pretrained(folder)
    if processor is None:
        transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    else:
        (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return net


def test_transformers_hub_model_by_id(hub_cache):
    reference = _tiny_vit(snapshot(hub_cache, "someone/tiny-vit"))
    model = load("hf-hub:someone/tiny-vit")
    entry = model.entry
    assert (entry.format, entry.architecture, entry.source) == (
        "transformers",
        "ViTForImageClassification",
        "hf-hub",
    )
    assert (
        model.labels == PETS and entry.input_size == (32, 32) and entry.mean == entry.std == (0.5, 0.5, 0.5)
    )
    assert [s.location for s in list_models({entry.id: entry})] == ["cached"]
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    logits = model(x)
    with torch.no_grad():
        assert torch.allclose(logits, reference(pixel_values=(x - 0.5) / 0.5).logits, atol=1e-5)
    logits[:, 2].sum().backward()
    assert x.grad.abs().sum() > 0  # gradients with respect to [0, 1] pixels
    result = morph(
        model,
        torch.rand(3, 48, 40),
        "fish",
        frames=3,
        config=MorphConfig(family="pixel"),
        strength=Strength.budget(1.0),
    )
    assert result.target_probs[-1] > result.target_probs[0]


def test_transformers_preprocessing_is_folded_into_pixels(tmp_path):
    """Rescaled by 1/127.5, minus 1 (a [-1, 1] network), centre-crop size: as mean = std = 0.5."""
    processor = {
        "do_resize": True,
        "size": {"shortest_edge": 40},
        "do_center_crop": True,
        "crop_size": {"height": 32, "width": 32},
        "do_rescale": True,
        "rescale_factor": 1 / 127.5,
        "do_normalize": True,
        "image_mean": [1.0, 1.0, 1.0],
        "image_std": [1.0, 1.0, 1.0],
    }
    reference = _tiny_vit(tmp_path / "vit", labels=["a", "b"], processor=processor)
    (tmp_path / "zoo.yaml").write_text("models:\n  - {id: vit, source: local, weights: vit, licence: MIT}\n")
    model = load("vit", manifest=tmp_path / "zoo.yaml")
    assert model.entry.input_size == (32, 32) and model.entry.licence == "MIT" and model.labels == ["a", "b"]
    assert torch.allclose(torch.tensor(model.entry.mean), torch.tensor(0.5)) and model.entry.std[
        0
    ] == pytest.approx(0.5)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(pixel_values=x * 2 - 1).logits, atol=1e-5)


def test_transformers_default_labels_are_indices_and_manifest_hub_entries_work(hub_cache):
    _tiny_vit(snapshot(hub_cache, "someone/plain"), labels=[f"LABEL_{i}" for i in range(4)])
    assert load("hf-hub:someone/plain").labels == ["0", "1", "2", "3"]
    from morphlib.zoo.manifest import parse_manifest

    entries = parse_manifest(
        {
            "models": [
                {
                    "id": "plain",
                    "name": "Plain",
                    "source": "hf-hub",
                    "format": "transformers",
                    "architecture": "ViTForImageClassification",
                    "weights": "someone/plain",
                    "labels": ["w", "x", "y", "z"],
                    "input_size": [32, 32],
                    "normalisation": {"mean": [0.5] * 3, "std": [0.5] * 3},
                    "robust": False,
                    "licence": "MIT",
                    "description": "a tiny ViT",
                }
            ]
        }
    )
    assert load("plain", manifest=entries).labels == ["w", "x", "y", "z"]


def test_transformers_model_without_its_files_is_unavailable(hub_cache):
    folder = snapshot(hub_cache, "someone/no-weights")
    _tiny_vit(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelUnavailableError, match="model.safetensors.*not in the local cache"):
        load("hf-hub:someone/no-weights")


def test_the_app_takes_a_manifest_of_your_own(tmp_path):
    """What ``python app.py --zoo my.yaml`` does: the registry reads the manifest, the engine predicts."""
    from morphlib.app.engine import Engine

    _copy_bundled("digits-cnn", tmp_path / "digits")
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    (tmp_path / "my.yaml").write_text(
        f"models:\n  - {{id: mine, source: local, weights: digits, labels: [{', '.join(names)}]}}\n"
    )
    engine = Engine(registry=ModelRegistry(manifest=tmp_path / "my.yaml", device="cpu"))
    assert [(c.id, c.location, c.available) for c in engine.registry.choices()] == [("mine", "local", True)]
    prediction = engine.predict(str(REPO_ROOT / "assets" / "examples" / "digit-3.png"), "mine")
    assert prediction.top[0][0] == "three" and prediction.labels == names


def test_the_commands_take_a_manifest_of_your_own(tmp_path, monkeypatch, capsys):
    from morphlib.cli import main

    _copy_bundled("digits-cnn", tmp_path / "digits")
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text("models:\n  - {id: mine, source: local, weights: digits, dataset: digits}\n")
    monkeypatch.delenv("MORPHLIB_ZOO", raising=False)  # restored after: the command sets it for its run
    morph_args = ["morph", "data:digits:0", "--zoo", str(manifest), "--model", "mine", "--target", "3"]
    assert main([*morph_args, "--budget", "1", "--frames", "3"]) == 0
    assert "mine: 6 -> 3" in capsys.readouterr().out
    evaluate_args = ["evaluate", "--zoo", str(manifest), "--dataset", "digits", "--model", "mine"]
    more = ["--families", "pixel", "--budgets", "1", "--regime", "frozen", "--sources", "2", "--frames", "3"]
    assert main([*evaluate_args, *more, "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "report.md").is_file()
