"""What a ``multilb-manage`` command raises to fail in one line."""

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
# ``cluster list``: printed in full, and some cluster needs attention
EXIT_ATTENTION = 3


class CommandError(Exception):
    """A failure to report in one line, with the exit code to use."""

    def __init__(self, message, code=EXIT_USAGE):
        super().__init__(message)
        self.code = code
