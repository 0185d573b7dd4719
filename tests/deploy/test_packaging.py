"""pyproject.toml's [build-system] and [project]: the licence is a PEP 639 SPDX expression, with
a setuptools that reads it, so installing prints no deprecation banner (issue 14)."""

from __future__ import annotations

import re
import tomllib

from portal.settings import PROJECT_ROOT

#: The first setuptools that reads ``project.license`` as an SPDX string (and warns about the
#: table form).
PEP_639_SETUPTOOLS = (77, 0)


def _pyproject() -> dict[str, object]:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def test_the_licence_is_an_spdx_expression() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert project["license"] == "AGPL-3.0-or-later"
    # A "License ::" classifier next to an expression is an error under PEP 639.
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")]


def test_the_build_requires_a_setuptools_that_reads_it() -> None:
    build = _pyproject()["build-system"]
    assert isinstance(build, dict)
    (setuptools,) = [r for r in build["requires"] if re.match(r"setuptools\b", r)]
    found = re.fullmatch(r"setuptools>=(\d+)(?:\.(\d+))?", setuptools)
    assert found, setuptools
    assert (int(found.group(1)), int(found.group(2) or 0)) >= PEP_639_SETUPTOOLS
