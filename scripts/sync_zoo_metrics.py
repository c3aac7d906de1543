"""Copy the measured accuracies of the bundled models (assets/*/metrics.json) into zoo.yaml.

Usage: python scripts/sync_zoo_metrics.py   (after scripts/train_bundled.sh)

Also copies ``robust_curve`` (robust accuracy at several radii, from scripts/robust_eval.py)
and ``robust_check`` (the figure the tests recompute) where a metrics.json has them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    manifest = ROOT / "zoo.yaml"
    text = manifest.read_text()
    for metrics_file in sorted((ROOT / "assets").glob("*/metrics.json")):
        model_id = metrics_file.parent.name
        m = json.loads(metrics_file.read_text())
        keys = ("clean_accuracy", "robust_accuracy", "eval_eps", "eval_images", "eval_pgd_steps")
        # robust_curve: scripts/robust_eval.py's numbers, where it was run (JSON is YAML flow style).
        # A model without a gradient (the k-nearest-neighbour judge) has no robust numbers.
        # robust_check: the figure tests/test_drivers.py recomputes (robust_eval.py --check-images).
        keys = tuple(k for k in (*keys, "robust_curve", "robust_check") if k in m)
        line = "    metrics: {" + ", ".join(f"{k}: {json.dumps(m[k])}" for k in keys) + "}"
        # The metrics line of the entry whose weights are assets/<id>.
        pattern = re.compile(
            rf"(    weights: assets/{re.escape(model_id)}\n(?:    (?!metrics:).*\n)*?)    metrics: .*"
        )
        text, count = pattern.subn(lambda match, line=line: match.group(1) + line, text)
        print(f"{model_id}: {'updated' if count else 'no entry in zoo.yaml'}")
    manifest.write_text(text)


if __name__ == "__main__":
    main()
