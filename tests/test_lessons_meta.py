"""Lessons: each has the required sections, and every graded task is graded in the lesson tasks.toml names."""

import re
from pathlib import Path

import pytest

from yolox_np.grading import tasks

REPO = Path(__file__).resolve().parents[1]
LESSON_DIR = REPO / "lessons"
LESSONS = sorted(LESSON_DIR.glob("[0-9][0-9]_*.py"))
NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.(py|ipynb)$")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_there_are_lessons():
    assert len(LESSONS) >= 3


# made by running the lessons and gitignored: Jupyter checkpoints, hypothesis's cache (the grader uses hypothesis)
GENERATED_DIRS = {".ipynb_checkpoints", ".hypothesis", "__pycache__"}


def test_lessons_folder_holds_only_lessons():
    # besides the lessons: their generated notebooks (gitignored) and the generated folders above
    strays = [p.name for p in LESSON_DIR.iterdir() if p.name not in GENERATED_DIRS and not NAME.match(p.name)]
    assert not strays, f"only NN_topic.py lessons belong in lessons/, found {strays}"
    notebooks = {p.stem for p in LESSON_DIR.glob("*.ipynb")}
    assert notebooks <= {p.stem for p in LESSONS}, "an .ipynb without its .py lesson"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_has_header_title_and_sections(path):
    text = _text(path)
    assert text.startswith("# ---\n# jupyter:"), "a lesson starts with the jupytext header"
    assert "format_name: percent" in text
    titles = re.findall(r"^# # (\d\d) · \S.*$", text, flags=re.M)
    assert titles == [path.name[:2]], f"one title line '# NN · Topic' with NN = {path.name[:2]}, found {titles}"
    positions = []
    for heading in ("**Goals**", "## Summary", "## Exercises"):
        pattern = re.escape(heading) if heading.startswith("*") else "^# " + re.escape(heading) + r"\s*$"
        found = re.search(pattern, text, flags=re.M)
        assert found, f"{path.name} lacks the section {heading}"
        positions.append(found.start())
    assert positions == sorted(positions), "sections must come in the order Goals, Summary, Exercises"
    exercises = text[positions[2]:]
    assert re.search(r"^# \d+\. ", exercises, flags=re.M), "the Exercises section lists numbered exercises"


def test_every_task_has_an_existing_lesson():
    lessons = {p.stem for p in LESSONS}
    orphans = {tid: t.lesson for tid, t in tasks().items() if t.lesson not in lessons}
    assert not orphans, f"tasks.toml names lessons that do not exist: {orphans}"


@pytest.mark.parametrize("task_id", sorted(tasks()))
def test_task_is_graded_in_its_lesson(task_id):
    task = tasks()[task_id]
    path = LESSON_DIR / f"{task.lesson}.py"
    if not path.is_file():
        pytest.fail(f"lesson {task.lesson} of task {task_id} does not exist")
    text = _text(path)
    attr = task.function.split(":")[1]
    calls = re.findall(r'print\(check\("' + re.escape(task_id) + r'",\s*([\w.]+)\)\)', text)
    assert calls, f'{path.name} must grade the task with print(check("{task_id}", <function>))'
    assert any(c.split(".")[-1] == attr for c in calls), f"{task_id} must be graded with {attr}, got {calls}"
    exercises = text[text.index("## Exercises"):]
    assert f"**`{task_id}`** (graded)" in exercises, f"the Exercises of {path.name} must list **`{task_id}`** (graded)"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_grades_only_known_tasks(path):
    graded = re.findall(r'check\("(\w+)"', _text(path))
    unknown = [t for t in graded if t not in tasks()]
    assert not unknown, f"{path.name} grades tasks that tasks.toml does not define: {unknown}"
    wrong_lesson = [t for t in graded if t in tasks() and tasks()[t].lesson != path.stem and path.stem != "00_tour"]
    assert not wrong_lesson, f"{path.name} grades tasks of other lessons: {wrong_lesson}"
