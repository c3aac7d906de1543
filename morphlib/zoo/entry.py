"""One model of the zoo, as described by a manifest entry, a Hub config, a local folder or
:func:`~morphlib.zoo.wrap`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo, as a manifest (``zoo.yaml``) describes it.

    Attributes
    ----------
    id, name : str
        Short identifier (``load(id)``) and display name.
    source : {"bundled", "hf-hub", "local", "package", "module"}
        Shipped under ``assets/``; downloaded from the Hugging Face Hub; a folder of the
        user's (beside their manifest); a file inside an installed Python package; or a
        module wrapped in code (:func:`~morphlib.zoo.wrap`).
    format : {"timm", "transformers", "robustness-ckpt", "ordered-state-dict", "module"}
        A timm Hugging Face folder (``config.json`` + ``model.safetensors``), a transformers
        one (``config.json`` + ``preprocessor_config.json`` + ``model.safetensors``), a
        checkpoint file of the Madry lab ``robustness`` library, or a plain state dict whose
        tensors come in the order of the timm architecture's own (names aside).
    architecture : str
        The timm architecture name, or the transformers class.
    weights : str
        ``assets/...`` folder (bundled), ``org/repo`` (Hub folder), ``org/repo/file.ckpt``
        (Hub checkpoint), the resolved folder (local) or ``package/path/file.pth`` (package).
    dataset : str
        The label set: a :mod:`morphlib.data` set, ``imagenet-1k``, or the model's own
        (its id; then :attr:`labels` names the classes).
    input_size : (int, int)
        ``(H, W)`` the network expects; other sizes are resized in the model.
    mean, std : tuple of floats
        Per-channel normalisation applied to ``[0, 1]`` pixels: 3 values for an RGB
        network, 1 for a grey one (their length is :attr:`channels`).
    robust : bool
        Adversarially trained or not; if so ``robust_norm``/``robust_eps`` say
        against what and ``robust_method`` how.
    licence, description : str
    metrics : dict
        Measured numbers (e.g. clean and robust accuracy), if any.
    labels, label_ids : tuple of str
        Class names and the label set's own ids (WordNet ids for ImageNet) that the
        manifest or the model's config gives; empty: those of :attr:`dataset`.
    differentiable : bool
        Whether its input gradient means anything: ``False`` for a judge such as a
        k-nearest-neighbour classifier, which can score images but not drive a morph.
    view : str
        How the model sees its data set (input and augmentation), e.g. ``"pixels, random
        shifts"``; ``"standard"`` when the manifest does not say.  Two models of one data set
        with the same view and architecture are siblings (:mod:`morphlib.zoo.judges`).
    """

    id: str
    name: str
    source: str
    format: str
    architecture: str
    weights: str
    dataset: str
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    robust: bool
    licence: str
    description: str
    robust_norm: str | None = None
    robust_eps: float | None = None
    robust_method: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    label_ids: tuple[str, ...] = ()
    differentiable: bool = True
    view: str = "standard"

    @property
    def channels(self) -> int:
        """How many channels the network takes (1: grey, 3: RGB)."""
        return len(self.mean)

    @property
    def hub_repo(self) -> str:
        """The Hub repository (``org/name``) of a Hub model."""
        return "/".join(self.weights.split("/")[:2])

    @property
    def hub_filename(self) -> str | None:
        """The file inside :attr:`hub_repo` for checkpoint models (else ``None``)."""
        parts = self.weights.split("/")
        return "/".join(parts[2:]) or None
