"""The one error the devcluster raises: its message is a full sentence that says what to do."""


class DevClusterError(Exception):
    """A problem the user can fix; the CLI prints the message on one line, without a traceback."""
