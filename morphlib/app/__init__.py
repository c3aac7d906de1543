"""What the Gradio app (``app.py``) is built from, tested on its own (only ``ui`` and ``handlers``
import Gradio).

* :mod:`~morphlib.imaging`: decoding uploads safely (size and decompression-bomb limits,
  every common mode) and fitting them to a model;
* :mod:`~morphlib.app.settings`: the app's settings, validated, and their permalinks
  (URL query parameters);
* :mod:`~morphlib.app.examples`: the example images under ``assets/examples``;
* :mod:`~morphlib.app.engine`: models, the cached gradients, and one call per UI action
  (predict, morph, compare families) that returns files ready to show;
* :mod:`~morphlib.app.ui`: the Gradio plumbing: the raw image input, errors as messages, and
  the settings' widgets and handler signatures built from the settings;
* :mod:`~morphlib.app.handlers`: what each event and API endpoint of the page does, in
  Gradio's terms (``app.py`` lays the page out and wires its events to them).
"""
