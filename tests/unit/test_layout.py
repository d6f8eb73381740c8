"""Repository rules that keep `make test` collectable."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_modules_have_unique_basenames():
    # pytest's default import mode puts each test folder on sys.path, so two test files with one
    # basename in tests/unit and tests/e2e cannot both be collected.
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
