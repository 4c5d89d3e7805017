"""Exception types shared by every layer; the CLI turns them into one-line errors."""

from __future__ import annotations


class NitedrError(Exception):
    """Base class for errors with a message meant for the user (no traceback needed)."""


class ConfigError(NitedrError):
    """A network, configuration, parameter or path that cannot be used, with the reason."""


class OutputExistsError(NitedrError):
    """An output file exists and ``--force`` was not given; nothing was overwritten."""

    def __init__(self, path: object) -> None:
        super().__init__(f'{path} exists; pass --force to overwrite it')
        self.path = path


class FrameError(NitedrError):
    """A frame the pipeline cannot process: names the stream and the problem.

    The caller decides whether to drop the frame or pass it through unchanged.
    """

    def __init__(self, stream: str, problem: str) -> None:
        super().__init__(f'{stream}: {problem}')
        self.stream = stream
        self.problem = problem


class BackendUnavailableError(NitedrError):
    """An inference backend that cannot run here (no CUDA device, package missing, ...)."""
