"""The model zoo: manifest checks, bundled models, and Hub loading from a cache laid out here."""

import copy
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest
import timm
import torch
import torchvision
from _hub_cache import snapshot

from morphlib import data
from morphlib.attacks import robust_accuracy
from morphlib.zoo import ManifestError, ModelUnavailableError, ZooModel, list_models, load, read_manifest
from morphlib.zoo.manifest import parse_manifest

MANIFEST = read_manifest()
BUNDLED = [e.id for e in MANIFEST.values() if e.source == "bundled"]
ROBUST_TWINS = [(e.id, e.id.removesuffix("-robust")) for e in MANIFEST.values() if e.id.endswith("-robust")]
# Accuracy floors; digits is a small real data set, the synthetic ones are easy by design.
MIN_ACCURACY = {"shapes": 0.95, "orientation": 0.95, "digits": 0.93, "mnist": 0.96}
# Per model where the architecture, not the data, sets the bar: a ViT from scratch on 4,000 digits,
# a 5-nearest-neighbour vote in raw pixel distance (93.6 %).
MIN_ACCURACY_OF = {"mnist-judge-vit": 0.92, "mnist-judge-knn": 0.92}


def _test_split(dataset: str, n: int):
    # Synthetic sets: a seed training never used. Digits, MNIST: the held-out split of the training seed.
    if dataset in ("digits", "mnist"):
        return data.load(dataset, "test", seed=0)
    return data.load(dataset, "test", n=n, seed=2024)


# ----------------------------------------------------------------------------- manifest


def _valid_entry(**changes):
    entry = {
        "id": "tiny",
        "name": "Tiny",
        "source": "hf-hub",
        "format": "timm",
        "architecture": "test_resnet",
        "weights": "someone/tiny",
        "dataset": "imagenet-1k",
        "input_size": [64, 64],
        "normalisation": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "robust": False,
        "licence": "MIT",
        "description": "a test model",
    }
    entry.update(changes)
    return entry


def test_valid_entry_parses():
    entries = parse_manifest({"models": [_valid_entry(robust={"norm": "l2", "eps": 3, "method": "PGD"})]})
    entry = entries["tiny"]
    assert entry.input_size == (64, 64) and entry.std == (0.25, 0.25, 0.25)
    assert entry.robust and entry.robust_norm == "l2" and entry.robust_eps == 3.0


@pytest.mark.parametrize(
    ("entry", "field", "problem"),
    [
        (_valid_entry(colour="red"), "colour", "unknown key"),
        ({k: v for k, v in _valid_entry().items() if k != "licence"}, "licence", "missing"),
        (_valid_entry(source="ftp"), "source", "must be one of"),
        (_valid_entry(input_size=[0, 64]), "input_size", "out of range"),
        (_valid_entry(input_size=[64]), "input_size", "two whole numbers"),
        (_valid_entry(normalisation={"mean": [0.5] * 3, "std": [0, 1, 1]}), "normalisation", "positive"),
        (_valid_entry(robust={"norm": "l2", "eps": -1}), "robust", "eps"),
        (_valid_entry(robust="yes"), "robust", "must be false"),
        (_valid_entry(dataset="cifar"), "dataset", "must be one of"),
        (_valid_entry(id="Bad Id"), "id", "bad value"),
        (_valid_entry(format="robustness-ckpt"), "weights", "bad value"),
        (_valid_entry(source="bundled", weights="/etc/passwd"), "weights", "bad value"),
    ],
)
def test_bad_entries_name_entry_and_field(entry, field, problem):
    with pytest.raises(ManifestError, match=problem) as info:
        parse_manifest({"models": [_valid_entry(id="first"), entry]})
    message = str(info.value)
    assert "entry #2" in message and f"field {field!r}" in message


def test_duplicate_id():
    with pytest.raises(ManifestError, match=r"entry #2 'tiny': field 'id': duplicate"):
        parse_manifest({"models": [_valid_entry(), _valid_entry()]})


def test_manifest_file_errors(tmp_path):
    bad = tmp_path / "zoo.yaml"
    bad.write_text("models:\n  - id: a\n    name: x: y\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        read_manifest(bad)
    bad.write_text("entries: []\n")
    with pytest.raises(ManifestError, match="models"):
        read_manifest(bad)


def test_shipped_manifest():
    for dataset in data.DATASETS:
        for role in ("cnn", "cnn-robust", "judge"):
            assert f"{dataset}-{role}" in MANIFEST
    assert {e.id for e in MANIFEST.values() if e.source == "hf-hub"} >= {"resnet50", "resnet50-l2-eps3"}
    statuses = {s.entry.id: s for s in list_models()}
    assert all(statuses[i].available and statuses[i].location == "bundled" for i in BUNDLED)


def test_unknown_model_lists_known_ids():
    with pytest.raises(ValueError, match="known models: .*shapes-cnn"):
        load("no-such-model")


# ------------------------------------------------------------------------ bundled models


@pytest.mark.parametrize("model_id", BUNDLED)
def test_bundled_model_accuracy(model_id):
    model = load(model_id)
    assert isinstance(model, ZooModel) and not model.training
    images, labels, names = _test_split(model.entry.dataset, n=300)
    assert model.labels == names
    with torch.no_grad():
        acc = (model(images).argmax(1) == labels).float().mean().item()
    floor = MIN_ACCURACY_OF.get(model_id, MIN_ACCURACY[model.entry.dataset])
    assert acc >= floor, f"{model_id}: accuracy {acc:.3f}"


@pytest.mark.parametrize(("robust_id", "standard_id"), ROBUST_TWINS)
def test_robust_models_beat_their_twins_under_attack(robust_id, standard_id):
    robust, standard = load(robust_id), load(standard_id)
    eps = robust.entry.robust_eps
    images, labels, _ = _test_split(robust.entry.dataset, n=100)
    images, labels = images[:100], labels[:100]
    acc_robust = robust_accuracy(robust, images, labels, eps, steps=7)
    acc_standard = robust_accuracy(standard, images, labels, eps, steps=7)
    assert acc_robust > acc_standard + 0.3, (acc_robust, acc_standard)


def test_gradients_reach_pixels_of_any_size():
    model = load("shapes-cnn-robust")
    x = torch.rand(2, 3, 100, 80, requires_grad=True)  # not the network's 64x64
    logits = model(x)
    assert logits.shape == (2, 5)
    logits[:, 1].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_predict_top_k():
    model = load("digits-cnn")
    images, labels, _ = data.load("digits", "test", n=1)
    top = model.predict(images[0], k=3)
    assert len(top) == 3 and top[0][0] == str(labels[0].item())
    assert all(0 <= p <= 1 for _, p in top) and top[0][1] >= top[1][1] >= top[2][1]
    assert model.predict(images, k=50)[0][0] == top[0][0] and len(model.predict(images, k=50)) == 10
    with pytest.raises(ValueError, match="one image"):
        model.predict(torch.rand(2, 3, 32, 32))


# --------------------------------------------------------------------- Hub, offline cache


def _entry_for(repo_weights, fmt, architecture):
    return parse_manifest(
        {
            "models": [
                _valid_entry(id="hub-model", weights=repo_weights, format=fmt, architecture=architecture)
            ]
        }
    )


def test_timm_hub_model_from_cache(hub_cache):
    torch.manual_seed(0)
    reference = timm.create_model("test_resnet", num_classes=1000).eval()
    timm.models.save_for_hf(reference, str(snapshot(hub_cache, "someone/tiny")), safe_serialization=True)
    entries = _entry_for("someone/tiny", "timm", "test_resnet")
    assert [(s.available, s.location) for s in list_models(entries)] == [(True, "cached")]

    model = load("hub-model", manifest=entries)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference((x - 0.5) / 0.25)
        assert torch.allclose(model(x), expected, atol=1e-5)
    assert len(model.labels) == 1000 and model.labels[0].startswith("tench")


def test_robustness_checkpoint_from_cache(hub_cache):
    """The shipped resnet50-l2-eps3 entry, its checkpoint laid out in the cache in the Madry lab format."""
    entry = MANIFEST["resnet50-l2-eps3"]
    torch.manual_seed(0)
    reference = torchvision.models.resnet50().eval()
    weights = reference.state_dict()
    checkpoint = {
        "model": {
            **{f"module.model.{k}": v for k, v in weights.items()},
            **{f"module.attacker.model.{k}": v for k, v in weights.items()},
            "module.normalizer.new_mean": torch.tensor(entry.mean).view(3, 1, 1),
            "module.normalizer.new_std": torch.tensor(entry.std).view(3, 1, 1),
        },
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
        "epoch": 90,
    }
    torch.save(checkpoint, snapshot(hub_cache, entry.hub_repo) / entry.hub_filename)

    model = load("resnet50-l2-eps3")
    mean, std = torch.tensor(entry.mean).view(1, 3, 1, 1), torch.tensor(entry.std).view(1, 3, 1, 1)
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model(x), reference((x - mean) / std), atol=1e-4)
    assert model.entry.robust and model.entry.robust_eps == 3.0


class _NotATensor:
    pass


def test_checkpoint_with_arbitrary_objects_is_refused(hub_cache):
    entries = _entry_for("someone/robust/model.ckpt", "robustness-ckpt", "test_resnet")
    weights = timm.create_model("test_resnet", num_classes=1000).state_dict()
    checkpoint = {"model": {f"module.model.{k}": v for k, v in weights.items()}, "args": _NotATensor()}
    torch.save(checkpoint, snapshot(hub_cache, "someone/robust") / "model.ckpt")
    with pytest.raises(ValueError, match="plain tensors"):
        load("hub-model", manifest=entries)


def test_missing_hub_model_fails_fast_offline(hub_cache):
    assert {s.entry.id: s.location for s in list_models()}["resnet50"] == "download"
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match=r"'resnet50'.*timm/resnet50.a1_in1k.*HF_HUB_OFFLINE"):
        load("resnet50")
    assert time.perf_counter() - start < 5


def test_missing_hub_model_fails_fast_without_network(hub_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: no network
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match=r"'resnet50-l2-eps3'.*cannot be reached"):
        load("resnet50-l2-eps3")
    assert time.perf_counter() - start < 5


def test_models_do_not_share_state():
    a, b = load("digits-cnn"), load("digits-cnn")
    a_copy = copy.deepcopy(a)
    with torch.no_grad():
        a.net.fc.weight.zero_()
    assert torch.equal(b.net.fc.weight, a_copy.net.fc.weight)


def test_grey_model_takes_grey_or_rgb():
    model = load("mnist-cnn")
    assert model.entry.channels == 1 and model.preprocess.channels == 1
    grey, labels, _ = data.load("mnist", "test", n=50, seed=0)
    with torch.no_grad():
        from_grey = model(grey)
        from_rgb = model(grey.expand(-1, 3, -1, -1))  # an RGB image with equal channels is the same grey
    assert torch.allclose(from_grey, from_rgb, atol=1e-5)
    assert (from_grey.argmax(1) == labels).float().mean() > 0.9
    with pytest.raises(ValueError, match="1 or 3"):
        model(torch.rand(1, 2, 28, 28))


def test_rgb_model_takes_grey():
    model = load("digits-cnn")
    grey, _, _ = data.load("digits", "test", n=8, seed=0)
    with torch.no_grad():
        assert torch.allclose(model(grey[:, :1]), model(grey), atol=1e-5)


# ------------------------------------------------------------- any timm Hub model by id

PETS = ["cat", "dog", "fish"]


def _timm_repo(cache, repo_id, num_classes=1000, data_config=None, **model_config):
    """A tiny random timm network saved as timm pushes to the Hub, in the cache; returned in eval mode."""
    torch.manual_seed(0)
    net = timm.create_model("test_resnet", num_classes=num_classes).eval()
    folder = str(snapshot(cache, repo_id))
    timm.models.save_for_hf(
        net, folder, model_config=model_config, data_config=data_config, safe_serialization=True
    )
    return net


def test_any_timm_hub_model_by_id(hub_cache):
    reference = _timm_repo(hub_cache, "timm/test_resnet.r160_in1k")
    model = load("hf-hub:timm/test_resnet.r160_in1k")
    entry = model.entry
    assert (entry.id, entry.architecture) == ("hf-hub:timm/test_resnet.r160_in1k", "test_resnet")
    assert entry.dataset == "imagenet-1k"
    assert entry.input_size == (160, 160) and entry.mean == entry.std == (0.5, 0.5, 0.5)  # its pretrained_cfg
    x = torch.rand(2, 3, 160, 160)
    with torch.no_grad():
        assert torch.allclose(model(x), reference((x - 0.5) / 0.5), atol=1e-5)
    assert model.labels[0].startswith("tench") and model.label_ids[:2] == ["n01440764", "n01443537"]


def test_hub_model_by_id_with_its_own_labels_and_input_size(hub_cache):
    _timm_repo(hub_cache, "someone/pets", 3, data_config={"input_size": (3, 40, 48)}, label_names=PETS)
    model = load("hf-hub:someone/pets")
    assert model.labels == model.label_ids == PETS
    assert model.entry.dataset == "hf-hub:someone/pets" and model.entry.input_size == (40, 48)
    assert model(torch.rand(1, 3, 20, 20)).shape == (1, 3)


def test_hub_model_by_id_with_wordnet_label_names(hub_cache):
    """A config naming ImageNet classes by WordNet id only: the descriptions come from timm."""
    from timm.data import ImageNetInfo

    synsets = ImageNetInfo().label_names()
    _timm_repo(hub_cache, "someone/in1k", label_names=synsets[::-1])
    model = load("hf-hub:someone/in1k")
    assert model.label_ids[-1] == "n01440764" and model.labels[-1].startswith("tench")


def test_hub_id_errors(hub_cache):
    with pytest.raises(ModelUnavailableError, match=r"hf-hub:timm/not_cached.*config.json.*HF_HUB_OFFLINE"):
        load("hf-hub:timm/not_cached")
    with pytest.raises(ValueError, match="expected hf-hub:ORG/NAME"):
        load("hf-hub:no-slash")
    (snapshot(hub_cache, "someone/broken") / "config.json").write_text('{"num_classes": 3}')
    with pytest.raises(ValueError, match="not a timm model config"):
        load("hf-hub:someone/broken")
    with pytest.raises(ValueError, match="or any timm or transformers model of the Hub as hf-hub:ORG/NAME"):
        load("convnext_small")


def test_morph_command_takes_a_hub_id(hub_cache, tmp_path, capsys):
    from morphlib.cli import main

    _timm_repo(hub_cache, "someone/pets", 3, data_config={"input_size": (3, 32, 32)}, label_names=PETS)
    argv = ["morph", "data:digits:0", "--model", "hf-hub:someone/pets", "--target", "fish", "--family"]
    argv += ["pixel", "--frames", "3", "--budget", "1", "--out", str(tmp_path / "out"), "--no-video"]
    assert main(argv) == 0
    assert "hf-hub:someone/pets:" in capsys.readouterr().out and (tmp_path / "out" / "morph.gif").is_file()


# ------------------------------------------------------------------ behind a proxy


class _Proxy(BaseHTTPRequestHandler):
    """An HTTP proxy on 127.0.0.1 that is the only way out: ``CONNECT`` gets ``connect_status``
    (it has no route to anywhere), plain-HTTP requests for the Hub files it holds are answered."""

    files: dict[str, bytes] = {}
    connect_status = 502
    seen: list[str] = []
    COMMIT = "fedcba9876543210fedcba9876543210fedcba98"

    def log_message(self, *args):
        pass

    def do_CONNECT(self):
        self.seen.append(f"CONNECT {self.path}")
        self.send_response(self.connect_status)
        self.end_headers()

    def do_HEAD(self, body=False):
        self.seen.append(f"{self.command} {self.path}")
        # A forward proxy is sent the whole URL; the Hub serves /{repo}/resolve/{revision}/{file}.
        repo, _, rest = urlparse(self.path).path.lstrip("/").partition("/resolve/")
        content = self.files.get(f"{repo}/{rest.partition('/')[2]}")
        if content is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
        self.send_header("X-Repo-Commit", self.COMMIT)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if body:
            self.wfile.write(content)

    def do_GET(self):
        self.do_HEAD(body=True)


@pytest.fixture
def proxy(monkeypatch):
    """Start :class:`_Proxy`; the proxy settings point at it and at nothing else."""
    _Proxy.files, _Proxy.seen, _Proxy.connect_status = {}, [], 502
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{server.server_port}"
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", address)
    monkeypatch.setenv("HTTP_PROXY", address)
    yield address
    server.shutdown()
    server.server_close()


def test_probe_goes_through_the_proxy(hub_cache, proxy, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens there: only the proxy answers
    with pytest.raises(ModelUnavailableError, match=rf"cannot be reached through the proxy {proxy} .*502"):
        load("resnet50")
    assert _Proxy.seen == ["CONNECT 127.0.0.1:9"]  # asked the proxy, not the unreachable Hub directly


def test_a_proxy_that_is_the_only_way_out_is_enough(hub_cache, proxy, monkeypatch, tmp_path):
    """Straight to the endpoint, nothing answers; through the proxy the model downloads."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    reference = timm.create_model("test_resnet", num_classes=3).eval()
    timm.models.save_for_hf(
        reference, str(tmp_path / "pets"), model_config={"label_names": PETS}, safe_serialization=True
    )
    _Proxy.files = {f"someone/pets/{f.name}": f.read_bytes() for f in (tmp_path / "pets").iterdir()}
    model = load("hf-hub:someone/pets")
    assert model.labels == PETS
    x = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        assert torch.allclose(model(x), reference((x - 0.5) / 0.5), atol=1e-5)
    assert any(line.startswith("GET http://127.0.0.1:9/someone/pets/") for line in _Proxy.seen)


def test_evaluation_of_a_hub_model_on_an_image_folder(hub_cache, tmp_path):
    """A Hub model by id, its classes named by WordNet id in its config, drives an evaluation on a folder."""
    import numpy as np
    from PIL import Image

    from morphlib.evaluate import EvalConfig, evaluate

    synsets = ["n02123045", "n02085620", "n01443537"]
    descriptions = dict(
        zip(synsets, ["tabby, tabby cat", "Chihuahua", "goldfish, Carassius auratus"], strict=True)
    )
    torch.manual_seed(0)
    net = timm.create_model("test_resnet", num_classes=3).eval()
    with torch.no_grad():
        net.fc.bias.copy_(torch.tensor([3.0, 0.0, 0.0]))  # random weights that still call everything a cat
    timm.models.save_for_hf(
        net,
        str(snapshot(hub_cache, "someone/pets")),
        model_config={"label_names": synsets, "label_descriptions": descriptions},
        data_config={"input_size": (3, 32, 32)},
        safe_serialization=True,
    )
    rng = np.random.default_rng(0)
    for folder in ("n02123045", "Chihuahua", "goldfish", "7"):  # by WordNet id, name, synonym; 7: no class
        (tmp_path / "images" / folder).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / folder / f"{i}.jpg")

    config = EvalConfig(
        dataset=None,
        images=str(tmp_path / "images"),
        model="hf-hub:someone/pets",
        judges=(),
        families=("pixel",),
        budgets=(1.0,),
        regimes=("frozen",),
        sources=2,
        frames=3,
    )
    rows = evaluate(config, tmp_path / "run")
    assert len(rows) == 2 and {row["label"] for row in rows} == {0}
    assert all(row["target"] in (1, 2) for row in rows)
    record = json.loads((tmp_path / "run" / "sources.json").read_text())
    assert record["matched"] == {"Chihuahua": 1, "goldfish": 2, "n02123045": 0}
    assert list(record["unmatched"]) == ["7"]
    assert all(s["path"].startswith("n02123045/") for s in record["sources"])
    assert "Edit families on" in (tmp_path / "run" / "report.md").read_text()
