"""Write the student copy of the repository: every fenced solution becomes `raise NotImplementedError`.

A solution is fenced with nbgrader's markers, indented like the body they enclose::

    ### BEGIN SOLUTION
    # HINT: what to compute, in one line
    ...the reference code...
    ### END SOLUTION

The hint line (optional) becomes the exception message. Run as `make student` or
`python -m yolox_np.grading.student --out student`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_HINT = re.compile(r"^\s*#\s*HINT:\s*(.*)$")
_SKIP_DIRS = {".git", ".venv", "student", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "runs",
              "build", ".ipynb_checkpoints"}


class FenceError(ValueError):
    """A BEGIN without END (or the reverse), or fences that are nested."""


def strip_solutions(text: str, name: str = "<text>") -> tuple[str, int]:
    """Replace each fenced region of `text`; returns the new text and the number of regions replaced."""
    out, count, i = [], 0, 0
    lines = text.splitlines(keepends=True)
    while i < len(lines):
        line = lines[i]
        if line.strip() == END:
            raise FenceError(f"{name}:{i + 1}: '{END}' without a matching '{BEGIN}'")
        if line.strip() != BEGIN:
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        start = i
        hint = None
        i += 1
        while i < len(lines) and lines[i].strip() != END:
            if lines[i].strip() == BEGIN:
                raise FenceError(f"{name}:{i + 1}: nested '{BEGIN}' (the one at line {start + 1} is open)")
            m = _HINT.match(lines[i])
            if m and hint is None:
                hint = m.group(1).strip()
            i += 1
        if i == len(lines):
            raise FenceError(f"{name}:{start + 1}: '{BEGIN}' without a matching '{END}'")
        message = hint or "write this part of the exercise"
        out.append(f"{indent}raise NotImplementedError({message!r})\n")
        count += 1
        i += 1
    return "".join(out), count


def _repo_files(root: Path) -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, check=True,
                                capture_output=True, text=True).stdout.split("\n")
        files = [root / f for f in listed if f]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in root.rglob("*") if p.is_file()]
    return [f for f in files if f.is_file() and not (set(f.relative_to(root).parts) & _SKIP_DIRS)]


def make_student(out: str | Path, root: str | Path | None = None) -> dict[str, int]:
    """Copy the repository at `root` to `out`, stripping solutions from `yolox_np/**/*.py`.

    Returns {relative path: number of exercises stripped} for the files that had any.
    """
    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    out = Path(out).resolve()
    if out == root.resolve() or root.resolve() in out.parents and out.name != "student":
        raise ValueError(f"refusing to write the student copy inside the repository at {out}")
    if out.exists():
        shutil.rmtree(out)
    stripped: dict[str, int] = {}
    for f in _repo_files(root):
        rel = f.relative_to(root)
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if f.suffix == ".py" and rel.parts[0] == "yolox_np":
            text, n = strip_solutions(f.read_text(), str(rel))
            dest.write_text(text)
            if n:
                stripped[str(rel)] = n
        else:
            shutil.copy2(f, dest)
    return stripped


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="write the student copy of yolox-np (solutions removed)")
    p.add_argument("--out", default="student")
    args = p.parse_args(argv)
    stripped = make_student(args.out)
    for rel, n in sorted(stripped.items()):
        print(f"{rel}: {n} exercise(s)")
    print(f"student copy written to {Path(args.out).resolve()} ({sum(stripped.values())} exercises)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
