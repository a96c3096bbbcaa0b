"""Project-level consistency: dependency lists, CI entry point, Makefile targets, README quick start."""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# environment.yml entries that are not Python packages of the project
CONDA_ONLY = {"python", "pip"}


def normalise(requirement: str) -> str:
    """Bare package name: no version, extras or markers; lower case with '-' for '_' and '.'."""
    name = re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject():
    with open(REPO / "pyproject.toml", "rb") as f:
        tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
        return tomllib.load(f)


def environment_sections(path: Path = REPO / "environment.yml"):
    """Parse the `dependencies:` list of environment.yml: {section comment: [names]} and the pip items.

    A comment line such as `# runtime` or `# dev` inside the list starts a section; the nested `- pip:`
    list is returned separately.
    """
    sections: dict[str, list[str]] = {}
    pip_items: list[str] = []
    current, in_deps, in_pip, pip_indent = "", False, False, 0
    for raw in path.read_text().splitlines():
        if not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip())
        line = raw.strip()
        if indent == 0:
            in_deps, in_pip = line.startswith("dependencies:"), False
            continue
        if not in_deps:
            continue
        if in_pip and indent > pip_indent and line.startswith("-"):
            pip_items.append(line[1:].strip())
            continue
        in_pip = False
        if line.startswith("#"):
            current = re.split(r"[\s,:;(]", line.lstrip("#").strip(), maxsplit=1)[0].lower()
            continue
        if line.startswith("-"):
            item = line[1:].split("#")[0].strip()
            if item.rstrip(":") == "pip" and item.endswith(":"):
                in_pip, pip_indent = True, indent
                continue
            sections.setdefault(current, []).append(item)
    return sections, pip_items


def test_environment_parser_on_its_own_format(tmp_path):
    text = ("name: x\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip\n  # runtime\n"
            "  - numpy>=2\n  # dev, for tests\n  - pytest  # comment\n  - pip:\n      - -e .\n      - foo\n")
    (tmp_path / "environment.yml").write_text(text)
    sections, pip_items = environment_sections(tmp_path / "environment.yml")
    assert sections == {"": ["python=3.11", "pip"], "runtime": ["numpy>=2"], "dev": ["pytest"]}
    assert pip_items == ["-e .", "foo"]
    assert normalise("numpy>=2") == "numpy" and normalise("Foo_Bar[x]==1") == "foo-bar"


def test_runtime_and_dev_dependencies_agree_between_pyproject_and_environment():
    project = pyproject()["project"]
    runtime = {normalise(r) for r in project["dependencies"]}
    extras = {k: {normalise(r) for r in v} for k, v in project.get("optional-dependencies", {}).items()}
    sections, pip_items = environment_sections()
    env = {k: {normalise(r) for r in v} - CONDA_ONLY for k, v in sections.items()}
    assert env.get("runtime") == runtime, "runtime dependencies differ"
    assert env.get("dev") == extras.get("dev"), "dev dependencies differ"
    # nothing else hides in the environment: every conda package is runtime, dev or an optional extra
    all_env = set().union(*env.values())
    assert all_env == runtime.union(*extras.values())
    # the pip section only installs the project itself
    assert [p for p in pip_items if p.replace(" ", "") != "-e."] == []


def test_ci_entry_point_runs_make_test():
    run = REPO / ".ci" / "run"
    assert os.access(run, os.X_OK), f"{run} is not executable"
    commands = [ln.strip() for ln in run.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert any(re.fullmatch(r"(exec\s+)?make\s+test", c) for c in commands), commands


def test_makefile_has_the_documented_targets():
    text = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, flags=re.M))
    missing = {"demo", "test", "bench", "lint", "lessons", "figures"} - targets
    assert not missing, f"Makefile lacks targets {sorted(missing)}"


def test_readme_quick_start_comes_before_the_layout_section():
    lines = (REPO / "README.md").read_text().splitlines()
    layout = [i for i, ln in enumerate(lines) if re.match(r"#+\s.*\blayout\b", ln, flags=re.I)]
    assert layout, "README.md has no layout section heading"
    before = "\n".join(lines[:layout[0]])
    assert "make demo" in before and "make test" in before
