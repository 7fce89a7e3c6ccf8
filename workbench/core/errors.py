"""Errors the workbench raises: each names the problem and the fix, in one line a user can act on."""

from __future__ import annotations

import re


class WorkbenchError(Exception):
    """Base class. ``str(err)`` is ``"<problem> — fix: <fix>"`` when a fix is known."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} — fix: {fix}" if fix else problem)


class ModelFormatError(WorkbenchError, ValueError):
    """The file or folder is not a model the workbench can read (or it is damaged)."""


class UntrustedPickleError(WorkbenchError):
    """Loading the file would unpickle arbitrary objects and ``trust=True`` was not passed."""


class UntrustedCodeError(UntrustedPickleError):
    """Loading the model would run Python code shipped with it (a Hugging Face folder's ``auto_map``
    modules) and ``trust=True`` was not passed."""


class OfflineError(WorkbenchError, ConnectionError):
    """A hub model was asked for and the hub cannot be reached."""


class BackendUnavailable(WorkbenchError, RuntimeError):
    """The runtime is not installed or cannot run on this machine."""


class IncompatibleModel(WorkbenchError, ValueError):
    """The runtime cannot take this model's format (and no conversion path applies)."""


class InputError(WorkbenchError, ValueError):
    """Feeds given to ``Runner.infer`` do not match the model's inputs."""


class StepError(WorkbenchError, RuntimeError):
    """An export, convert or quantize step failed."""


class InferenceError(WorkbenchError, RuntimeError):
    """A runtime failed while running a model (its own exception, summarised on one line)."""


_SOURCE_LOCATION = re.compile(r"Exception from \S+?\.(?:cpp|cc|hpp|h):\d+:\s*")


def one_line(err: BaseException, limit: int = 600) -> str:
    """``err``'s message on one line, whole up to ``limit`` characters (runtimes put the cause after a
    first line that only says where: ``[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : ...``, OpenVINO's
    ``Exception from src/inference/src/cpp/core.cpp:84:``, which is dropped)."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    text = _SOURCE_LOCATION.sub("", text).strip() or type(err).__name__
    return text if len(text) <= limit else text[:limit] + " …"
