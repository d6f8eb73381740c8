import os
from collections.abc import Callable, Mapping

import pytest

from aifactory_operator.settings import ENV_PREFIX, Settings, read_settings


@pytest.fixture
def settings_from(monkeypatch: pytest.MonkeyPatch) -> Callable[[Mapping[str, str]], Settings]:
    """The operator's settings as read from an environment holding only the given AIFACTORY_*
    variables: the end-to-end fixtures set some in this process, and they must not leak in here."""
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)

    def read(variables: Mapping[str, str]) -> Settings:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return read_settings()

    return read
