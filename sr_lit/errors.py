"""The one error family of sr_lit, and the exit codes the commands derive from it (by ``isinstance``).

Import-light on purpose (standard library only): every layer raises these, and the CLIs classify them without
importing torch or Lightning.

    SrLitError
    ├── UserError            something the user can fix: one ``<prog>: error: ...`` line, exit 2
    │   ├── ConfigError      a config key / command-line option (the message names the key)
    │   ├── DataError        data folders and settings
    │   │   └── ImageError   one image file (``path``, ``reason``)
    │   ├── CheckpointError  a model file (``path``, ``reason``)
    │   └── ExportError      an export that cannot be made or does not match PyTorch
    └── TrainingFault        training itself failed (non-finite losses ...): one line, exit 1

Every class pickles with its arguments (DataLoader workers, spawned DDP processes). torch's spawn launcher sends
a worker's exception back as traceback *text* only; ``from_spawned`` rebuilds the sr_lit class from that text by
looking the class up in this family (see docs/DESIGN.md, "Errors and exit codes").
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator

EXIT_OK = 0
EXIT_TRAINING_FAULT = 1
EXIT_USER_ERROR = 2  # argparse's code for bad usage; also every bad input (config, data, checkpoint)
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_PREEMPTED = 128 + 15  # 128 + SIGTERM: schedulers see a job that did not finish


class SrLitError(Exception):
    """Base of every error sr_lit raises on purpose; ``str()`` is the one line a command prints."""

    def __reduce__(self):  # picklable with the message whatever the subclass's __init__ takes
        return (_rebuild, (type(self).__module__, type(self).__qualname__, str(self)))


class UserError(SrLitError, ValueError):
    """A problem the user can fix (config, paths, data, checkpoint): one clear line, exit code 2."""


class ConfigError(UserError):
    """A config key or command-line option with a value that cannot work; the message names the key."""


class DataError(UserError):
    """Data folders, files or data settings that cannot work."""


class _AboutAFile:
    """Mixin: an error about one file; ``str(err)`` is ``"<path>: <reason>"``, both kept as attributes."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")  # type: ignore[call-arg]

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class ImageError(_AboutAFile, DataError):
    """A file that cannot be used as an image."""


class CheckpointError(_AboutAFile, UserError):
    """A model file that cannot be loaded."""


class ExportError(UserError):
    """An export that cannot be made, or whose file does not match PyTorch."""


class TrainingFault(SrLitError, RuntimeError):
    """Training failed for a reason in the numbers, not the inputs (one line, exit code 1)."""


def _family() -> Iterator[type[SrLitError]]:
    stack: list[type[SrLitError]] = [SrLitError]
    while stack:
        cls = stack.pop()
        yield cls
        stack.extend(cls.__subclasses__())


def _rebuild(module: str, qualname: str, message: str) -> SrLitError:
    """An instance of the family class ``module.qualname`` carrying ``message`` (its __init__ is bypassed)."""
    cls = next((c for c in _family() if c.__module__ == module and c.__qualname__ == qualname), None)
    if cls is None:  # the defining module was not imported in this process
        __import__(module)
        cls = next((c for c in _family() if c.__module__ == module and c.__qualname__ == qualname), UserError)
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    return err


def from_spawned(e: BaseException) -> BaseException:
    """The sr_lit error a spawned DDP worker raised, rebuilt from torch's ``ProcessRaisedException`` text.

    torch.multiprocessing re-raises a worker's exception in the parent as that text (the class is lost). The
    last exception line of the traceback names the class (``pkg.module.Class: message``); when it is a class of
    this family the same class is rebuilt with the message. Anything else is returned unchanged.
    """
    if type(e).__name__ != "ProcessRaisedException":
        return e
    lines = str(e).rsplit("Traceback (most recent call last):", 1)[-1].splitlines()
    for i, line in enumerate(lines):
        if line and not line[0].isspace():  # the first unindented line after the frames starts the exception
            m = re.match(r"^([\w.]+): ?(.*)$", line)
            if m is None:
                return e
            module, _, qualname = m.group(1).rpartition(".")
            message = "\n".join([m.group(2), *lines[i + 1 :]]).strip()
            for cls in _family():
                if cls.__qualname__ == qualname and (not module or cls.__module__ == module):
                    return _rebuild(cls.__module__, cls.__qualname__, message)
            return e
    return e


def _foreign_user_error(e: BaseException) -> bool:
    """Errors of the libraries that are config mistakes: Hydra's instantiation errors name the key, Lightning's
    MisconfigurationException is a bad Trainer argument, OmegaConf's are missing values / bad interpolations."""
    for module, name in (
        ("hydra.errors", "InstantiationException"),
        ("omegaconf.errors", "OmegaConfBaseException"),
        ("lightning_fabric.utilities.exceptions", "MisconfigurationException"),
    ):
        mod = sys.modules.get(module)  # never imported here: if it is not loaded, nothing raised it
        cls = getattr(mod, name, None) if mod is not None else None
        if cls is not None and isinstance(e, cls):
            return True
    return isinstance(e, FileNotFoundError)


def exit_code(e: BaseException) -> int | None:
    """The exit code a command gives for ``e``: 2 user error, 1 training fault, None: unexpected (traceback)."""
    e = from_spawned(e)
    seen: set[int] = set()
    cause: BaseException | None = e
    while cause is not None and id(cause) not in seen:  # Hydra wraps the target's error: look at the causes
        seen.add(id(cause))
        if isinstance(cause, UserError):
            return EXIT_USER_ERROR
        if isinstance(cause, TrainingFault):
            return EXIT_TRAINING_FAULT
        cause = cause.__cause__
    return EXIT_USER_ERROR if _foreign_user_error(e) else None


def one_line(e: BaseException) -> str:
    """The message a command prints for ``e`` (a spawned worker's error as the worker raised it)."""
    return str(from_spawned(e))


__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PREEMPTED",
    "EXIT_TRAINING_FAULT",
    "EXIT_USER_ERROR",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "ExportError",
    "ImageError",
    "SrLitError",
    "TrainingFault",
    "UserError",
    "exit_code",
    "from_spawned",
    "one_line",
]
