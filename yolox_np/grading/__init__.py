"""Auto-graded exercises: `check(task_id, fn)` grades a student's function and returns a readable result.

>>> from yolox_np.grading import check, tasks          # doctest: +SKIP
>>> result = check("box_iou", my_box_iou)              # doctest: +SKIP
>>> bool(result), print(result)                        # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from .core import CheckOutcome, GradeResult
from .graders import GRADERS

TASKS_FILE = Path(__file__).with_name("tasks.toml")


@dataclass(frozen=True)
class Task:
    id: str
    lesson: str
    function: str  # "module:attribute"
    title: str

    def reference(self):
        """The package function this task mirrors (the solution, in the teacher's copy)."""
        module, attr = self.function.split(":")
        return getattr(importlib.import_module(module), attr)


def _parse_toml(text: str) -> dict[str, dict[str, str]]:
    try:
        import tomllib
    except ImportError:  # Python 3.10: the file only uses [section] and key = "string"
        out: dict[str, dict[str, str]] = {}
        section = None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip() if not line.strip().startswith(("title", "function")) else line
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line.strip("[]").strip()
                out[section] = {}
            elif "=" in line and section is not None:
                key, value = (s.strip() for s in line.split("=", 1))
                out[section][key] = value.strip('"')
        return out
    return tomllib.loads(text)


def tasks() -> dict[str, Task]:
    """All tasks of tasks.toml, by id."""
    data = _parse_toml(TASKS_FILE.read_text())
    return {tid: Task(tid, d["lesson"], d["function"], d.get("title", tid)) for tid, d in data.items()}


def check(task_id: str, fn) -> GradeResult:
    """Grade `fn` for `task_id`. Never raises for a wrong solution: failures are in the result."""
    if task_id not in GRADERS:
        raise ValueError(f"unknown task {task_id!r}; tasks are: {', '.join(sorted(GRADERS))}")
    if not callable(fn):
        return GradeResult(task_id, [CheckOutcome("the answer is a function", False,
                                                  f"got {type(fn).__name__}, not a function")])
    return GradeResult(task_id, [run(fn) for run in GRADERS[task_id]])


__all__ = ["GradeResult", "Task", "check", "tasks"]
