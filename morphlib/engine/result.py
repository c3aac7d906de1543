"""What a morph returns: frames with their amplification, distance and class probabilities."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from .auto import AutoStrength

#: Classes listed per frame.
TOPK = 5

__all__ = ["TOPK", "MorphResult"]


@dataclass
class MorphResult:
    """A morph: frames with their amplification, distance and class probabilities.

    Attributes
    ----------
    frames : Tensor
        ``(F, C, H, W)`` in ``[0, 1]``; frame 0 is the input, exactly.
    alphas : Tensor
        ``(F,)`` amplification of each frame (normalised units, see the module notes).
    l2 : Tensor
        ``(F,)`` L2 distance of each frame from the input.
    probs : Tensor
        ``(F, N)`` class probabilities of each frame.
    labels : list of str
        Class names.
    target, source : int
        Target class and source class (moved away from).
    params : dict
        Every setting used (family, regime, loss, budget, alpha_max, gradient scale, ...).
    auto : AutoStrength or None
        With an auto strength, what its search found (goal reached or not, and why).
    """

    frames: Tensor
    alphas: Tensor
    l2: Tensor
    probs: Tensor
    labels: list[str]
    target: int
    source: int
    params: dict = field(default_factory=dict)
    auto: AutoStrength | None = None

    @property
    def target_probs(self) -> Tensor:
        """``(F,)`` probability of the target class per frame."""
        return self.probs[:, self.target]

    @property
    def source_probs(self) -> Tensor:
        """``(F,)`` probability of the source class per frame."""
        return self.probs[:, self.source]

    @property
    def topk(self) -> list[list[tuple[str, float]]]:
        """Per frame, the top-5 ``(label, probability)`` pairs."""
        k = min(TOPK, self.probs.shape[1])
        values, indices = self.probs.topk(k, dim=1)
        return [
            [(self.labels[i], float(v)) for v, i in zip(vs, idx, strict=True)]
            for vs, idx in zip(values.tolist(), indices.tolist(), strict=True)
        ]

    @property
    def top1(self) -> list[str]:
        """Per frame, the predicted label."""
        return [self.labels[i] for i in self.probs.argmax(dim=1).tolist()]

    def table(self) -> str:
        """A per-frame text table: alpha, L2, source and target probability, top-1."""
        src, tgt = self.labels[self.source], self.labels[self.target]
        head = f"{'frame':>5} {'alpha':>9} {'L2':>8} {'p(' + src + ')':>12} {'p(' + tgt + ')':>12}  top-1"
        rows = [head]
        for k in range(len(self.alphas)):
            rows.append(
                f"{k:>5} {float(self.alphas[k]):>9.4g} {float(self.l2[k]):>8.4f} "
                f"{float(self.source_probs[k]):>12.4f} {float(self.target_probs[k]):>12.4f}  {self.top1[k]}"
            )
        return "\n".join(rows)

    def summary(self) -> dict:
        """A JSON-serialisable summary: settings and per-frame numbers."""
        return dict(
            params=self.params,
            source=dict(index=self.source, label=self.labels[self.source]),
            target=dict(index=self.target, label=self.labels[self.target]),
            frames=[
                dict(
                    index=k,
                    alpha=float(self.alphas[k]),
                    l2=float(self.l2[k]),
                    p_source=float(self.source_probs[k]),
                    p_target=float(self.target_probs[k]),
                    top5=[[label, p] for label, p in self.topk[k]],
                )
                for k in range(len(self.alphas))
            ],
        )

    def _repr_html_(self) -> str:
        """In a notebook: the animated morph and the per-frame numbers (:func:`morphlib.render.html_view`)."""
        from morphlib.render import html_view

        return html_view(self)

    def save(self, out_dir: str | Path, **kwargs: Any) -> dict[str, Path]:
        """Write frames, GIF, MP4, contact sheet, probability plot and JSON summary to ``out_dir``.

        Keyword arguments go to :func:`morphlib.render.save_result`.
        """
        from morphlib.render import save_result

        return save_result(self, out_dir, **kwargs)
