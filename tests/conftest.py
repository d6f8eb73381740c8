import sys
from pathlib import Path

from aifactory_operator.launcher import interrupt_on_sigterm

# The builders module sits beside the test folders; make it importable from both.
sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure() -> None:
    # A run stopped by `timeout` or CI's SIGTERM tears down like Ctrl-C: the session fixtures stop
    # the operator and the control plane they started, so no process of the run is left behind.
    interrupt_on_sigterm()
