"""One error hierarchy. Every user-facing failure is a MobilegenError: the CLI prints its message as
one line on stderr and exits non-zero; anything else is a bug and shows a traceback."""


class MobilegenError(Exception):
    """Base of all errors that are the user's input, not a bug in mobilegen."""

    exit_code = 2


class ModelFormatError(MobilegenError):
    """The file is not a readable .tflite flatbuffer (truncated, wrong identifier, bad offsets)."""


class ModelValidationError(MobilegenError):
    """The model parses but is inconsistent: shapes, quantization, buffers, graph structure."""


class UnsupportedOpError(MobilegenError):
    """An operator (or an operator configuration) that the plan cannot lower."""


class UserInputError(MobilegenError):
    """A bad option, input file or argument."""


class ToleranceExceeded(MobilegenError):
    """`compare` found a difference larger than the tolerance."""

    exit_code = 1
