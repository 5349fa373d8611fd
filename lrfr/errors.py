"""lrfr's own error types: mistakes a user can fix (a config key, a dataset tree, a checkpoint file).

The tools print these as one ``error: <message>`` line and exit with status 2 (``--debug`` shows the traceback);
anything else is a bug and keeps its traceback. Each type also derives from the built-in type that code
catching lrfr's errors expected before these existed (``ValueError``, ``RuntimeError``), so such code still
works.
"""
import re
from typing import Tuple


class LRFRError(Exception):
    """Base of the errors the tools report in one line; the message names the file or key at fault."""


class ConfigError(LRFRError, ValueError):
    """A config that cannot be read or built: a missing file, a bad key or value, a bad ``--cfg-options``."""


class ConfigKeyError(ConfigError, KeyError):
    """A key the config was expected to have is missing (a ``KeyError`` too, printed without quotes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class DatasetError(LRFRError, ValueError):
    """A dataset that cannot be read: a missing folder, a tree in another layout, an unusable file."""


class ProtocolError(DatasetError):
    """An official TinyFace protocol file that is unreadable or inconsistent with the image names."""


class CheckpointError(LRFRError, RuntimeError):
    """A checkpoint that is unreadable (e.g. truncated), missing, or that does not fit the model."""


#: Built-in types that, raised while a tool reads its inputs, are the user's to fix (the tools wrap
#: them with the config key or file they were reading; see :func:`lrfr.utils.config_utils.check_config`).
INPUT_ERRORS: Tuple[type, ...] = (FileNotFoundError, NotADirectoryError, FileExistsError, KeyError,
                                  TypeError, ValueError)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` in one line, for ``error: <message>``.

    A DataLoader worker re-raises a worker's error with the worker's traceback in its message; only that
    traceback's last line (the original message) is kept. A ``KeyError``'s message loses its quotes. Other
    line breaks (e.g. an expected-layout hint) become ``' | '``.
    """
    text = str(exc)
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        text = exc.args[0]
    if 'Original Traceback' in text:
        lines = [line for line in text.splitlines() if line.strip()]
        # The traceback's last line is "<Type>: <message>".
        text = re.sub(r'^[\w.]+: ', '', lines[-1].strip()) if lines else text
    parts = [' '.join(part.split()) for part in text.splitlines() if part.strip()]
    return ' | '.join(parts) or type(exc).__name__


__all__ = ['LRFRError', 'ConfigError', 'ConfigKeyError', 'DatasetError', 'ProtocolError', 'CheckpointError', 'INPUT_ERRORS',
           'one_line']
