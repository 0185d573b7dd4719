"""Documentation that names tests must name tests that exist."""

from __future__ import annotations

import ast
import re

import pytest

from portal.settings import PROJECT_ROOT

_REFERENCE = re.compile(r"`(tests/(?:[a-z_]+/)*test_[a-z0-9_]+\.py)(?:::(test_[a-z0-9_]+))?`")


def _tests_in(file_name: str) -> set[str]:
    tree = ast.parse((PROJECT_ROOT / file_name).read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


@pytest.mark.parametrize("doc", ["docs/compliance.md", "docs/threat-model.md"])
def test_every_test_named_in_the_docs_exists(doc: str) -> None:
    text = (PROJECT_ROOT / doc).read_text()
    references = _REFERENCE.findall(text)
    assert len(references) > 20, f"{doc} should cite its proofs"
    missing = []
    for file_name, test_name in references:
        path = PROJECT_ROOT / file_name
        if not path.exists():
            missing.append(file_name)
        elif test_name and test_name not in _tests_in(file_name):
            missing.append(f"{file_name}::{test_name}")
    assert missing == [], f"{doc} names tests that do not exist: {missing}"
