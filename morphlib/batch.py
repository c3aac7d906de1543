"""Deprecated module path: ``morph_batch`` lives in :mod:`morphlib.engine`
(``from morphlib import morph_batch``)."""

from .compat import forwarder

__getattr__ = forwarder("morphlib.batch", {"morph_batch": "morphlib.engine"})
