"""``robusttrain train`` (and ``recipes/train.py``): flags and YAML in, a run folder out; a refusal is one line.

Every error caused by the input (flags, config files, callback options, metadata, files) prints
``<prog>: error: <what and where>`` on stderr and exits 2; tracebacks are for bugs (``ROBUSTTRAIN_DEBUG=1`` shows
them for input errors too).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .checkpoints import Interrupted

# Errors that describe the user's input or the machine (a file, a full disk, a read-only folder); anything else is
# a bug and keeps its traceback.
INPUT_ERRORS = (ValueError, OSError)


def refusing(prog: str, action: Callable[[], Any]) -> int:
    """Run ``action`` and return its exit code (0 unless it returns one); an input error becomes one line on stderr
    and exit code 2, Ctrl-C one line and 130. Scripts of ``recipes/`` wrap their ``main`` with it too."""
    try:
        code = action()
    except INPUT_ERRORS as error:
        if os.environ.get("ROBUSTTRAIN_DEBUG"):
            raise
        message = " ".join(str(error.strerror if isinstance(error, OSError) and error.filename is None
                                   and error.strerror else error).split()) or type(error).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        if os.environ.get("ROBUSTTRAIN_DEBUG"):
            raise
        said = "; ".join(part for part in (stop.where, stop.continue_with) if part) if isinstance(stop, Interrupted) \
            else ""
        print(f"{prog}: interrupted{' ' + said if said else ''}", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0


def main(argv: Sequence[str] | None = None, prog: str = "robusttrain train") -> int:
    """Parse, check and train; returns the exit code."""
    from .loop import train  # imported here: `--help` and refusals of bad flags stay fast
    from .options import TrainOptions

    def run() -> None:
        options, _ = TrainOptions.from_argv(argv, prog)
        train(options)

    code = refusing(prog, run)
    from accelerate import PartialState

    # NOTE: an exiting process whose gloo process group is still alive can abort in the group's threads
    # ("terminate called without an active exception"); destroy it before the interpreter shuts down.
    PartialState().destroy_process_group()
    return code
