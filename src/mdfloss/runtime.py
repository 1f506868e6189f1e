"""How every command runs, under all of them: exit codes, scoped torch threads, the device.

* exit codes: 0 success, :data:`EXIT_RUNTIME` (1) a failure at run time, :data:`EXIT_USAGE` (2)
  a user's mistake, :data:`EXIT_INTERRUPTED` (130) Ctrl-C; :data:`USER_ERRORS` and
  :data:`RUNTIME_ERRORS` are the exceptions that map to 2 and 1;
* :func:`scoped_threads`: torch's intra-op thread count for one block;
* :func:`resolve_device`: ``auto``, ``cpu``, ``cuda`` or ``cuda:K`` as a torch device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ._checks import check_int

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               PermissionError)
RUNTIME_ERRORS = (RuntimeError, OSError, ArithmeticError)


@contextmanager
def scoped_threads(threads: int | None, argument: str = "--threads") -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` (if given) inside the block, restored after."""
    if threads is None:
        yield
        return
    check_int(argument, threads, minimum=1)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_device(choice: str | torch.device, argument: str = "device", local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` (``cuda:local_rank``) or ``cuda:K``.

    Raises:
        ValueError: naming ``argument``, for anything else or for CUDA when it is not available.
    """
    text = str(choice)
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"{argument}: {text!r} asked for, but CUDA is not available (use cpu or auto)")
        return torch.device(text if ":" in text else f"cuda:{local_rank}")
    raise ValueError(f"{argument}: expected auto, cpu, cuda or cuda:K, got {text!r}")
