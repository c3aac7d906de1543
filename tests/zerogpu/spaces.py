"""A stand-in for Hugging Face's ``spaces`` package, as ZeroGPU runs it: ``@spaces.GPU`` runs the
function in a forked child process and hands its pickled result back, so whatever the function
loads or caches in the child is gone when it returns. (Put this folder on ``PYTHONPATH``.)"""

from __future__ import annotations

import functools
import os
import pickle
import sys


def GPU(fn=None, duration=None):  # noqa: N802 - the real package's name
    def decorate(func):
        @functools.wraps(func)
        def run(*args, **kwargs):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: run, send the result (or the error), leave without cleanup
                os.close(read)
                try:
                    payload = pickle.dumps((True, func(*args, **kwargs)))
                except BaseException as err:  # noqa: BLE001 - handed to the parent as is
                    payload = pickle.dumps((False, err))
                with os.fdopen(write, "wb") as out:
                    out.write(payload)
                print(
                    f"spaces stand-in: {func.__name__} ran in child {os.getpid()}",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(0)
            os.close(write)
            with os.fdopen(read, "rb") as inp:
                ok, value = pickle.loads(inp.read())
            os.waitpid(pid, 0)
            if not ok:
                raise value
            return value

        return run

    return decorate(fn) if fn is not None else decorate
