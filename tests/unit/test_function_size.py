"""The reconcile and handler layers stay readable in one screen per function: no function there is
longer than 60 lines (complexity is held under radon's grade D by ruff's C901 in make lint)."""

import ast
from pathlib import Path

import aifactory_operator

PACKAGE = Path(aifactory_operator.__file__).parent
LAYERS = ("reconcile", "handlers")
MAX_LINES = 60


def function_lengths(source: str) -> dict[str, int]:
    """Lines per function or method (decorators excluded, docstring included), by name."""
    return {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None
    }


def test_function_lengths_counts_lines_of_each_function():
    source = (
        "def short():\n    return 1\n\n\nclass C:\n    def method(self):\n        a = 1\n        return a\n"
    )
    assert function_lengths(source) == {"short": 2, "method": 3}


def test_no_function_in_reconcile_or_handlers_is_over_60_lines():
    too_long = [
        f"{path.relative_to(PACKAGE)}:{name} ({lines} lines)"
        for layer in LAYERS
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name, lines in function_lengths(path.read_text()).items()
        if lines > MAX_LINES
    ]
    assert not too_long, too_long
