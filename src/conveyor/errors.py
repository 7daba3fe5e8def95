"""One error hierarchy for everything Conveyor raises on purpose.

Callers catch a family (``DefinitionError``, ``ConfigError``...) or the base
``ConveyorError``. Where callers would reasonably expect a builtin, the class
mixes it in (``CycleError`` is also a ``ValueError``). Messages name the thing
that is wrong and how to fix it.
"""

from __future__ import annotations

import traceback as _traceback


class ConveyorError(Exception):
    """Base of every error Conveyor raises on purpose."""


class DefinitionError(ConveyorError, ValueError):
    """A task, workflow or job is defined in a way that cannot work."""


class DuplicateTaskError(DefinitionError):
    """Two task invocations in one workflow ended up with the same key."""


class CycleError(DefinitionError):
    """The dependencies of a workflow form a cycle."""


class SelectionError(DefinitionError):
    """A task selection expression is malformed or names an unknown task."""


class WorkspaceError(DefinitionError):
    """A workspace file or module cannot be loaded, or holds conflicting jobs."""


class ScheduleError(DefinitionError):
    """A ``Schedule`` field is out of range, malformed, or conflicts with another."""


class ConfigError(ConveyorError, ValueError):
    """A value given by the user (run config, a duration, a memory size) is invalid."""


class ExecutionError(ConveyorError):
    """Running a job went wrong in a way that is not the user's code raising."""


class MissingInputError(ExecutionError, ValueError):
    """A selected task needs the output of an unselected one that was not provided."""


class TaskTimeoutError(ExecutionError, TimeoutError):
    """A task ran past its timeout and was stopped."""


class InfrastructureError(ExecutionError):
    """The machinery around a task failed, not its code: its process died, it ran out of
    memory, or it was stopped from outside."""


class WorkerLostError(InfrastructureError):
    """The process running a task died (os._exit, a segfault, SIGKILL...)."""


class TaskOutOfMemoryError(InfrastructureError, MemoryError):
    """A task used more memory than its ``memory=`` allows and was stopped."""


class RunCanceledError(ExecutionError):
    """A run was canceled on request before it could finish."""


class InsufficientResourcesError(ExecutionError):
    """A task asks for more cpu or memory than its executor can ever give."""


class UserCodeError(ExecutionError):
    """User code raised inside a task, a hook or a resource.

    Raised once, at the task boundary. ``original`` is the user's exception,
    with its own traceback; ``traceback_text`` keeps the formatted traceback
    so it survives storage and pickling.
    """

    def __init__(
        self, where: str, original: BaseException, traceback_text: str | None = None
    ) -> None:
        self.where = where
        self.original = original
        self.traceback_text = traceback_text or self.format(original)
        super().__init__(f"{where} raised {type(original).__name__}: {original}")

    @staticmethod
    def format(error: BaseException) -> str:
        """The formatted traceback of ``error``."""
        return "".join(_traceback.format_exception(type(error), error, error.__traceback__))


class StorageError(ConveyorError):
    """The instance's database or file stores cannot do what was asked."""


class InvalidTransitionError(StorageError, ValueError):
    """A run or task status change is not in the allowed transitions table."""


class LeaseLostError(StorageError):
    """A run's process wrote with a fencing token that is no longer the run's.

    The run was judged dead, or its start was handed to another worker, while
    this process was paused, partitioned or starved; the database refuses its
    writes, and the process stops its work.
    """


class JournalKeptError(StorageError):
    """A run could not write its records before its time to wait for the database ran out;
    they are kept in a local journal for ``conveyor runs recover``."""


class NotFoundError(ConveyorError, LookupError):
    """A run, task, job, log or result that was asked for does not exist."""
