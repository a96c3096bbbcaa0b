"""The grading machinery: checks, results and readable reports.

A grader is a list of checks. Each check either compares the student's function with a reference on
generated cases (smallest cases first, so the first failure is a small counterexample), or tests a
property with hypothesis (which shrinks a failure to a minimal example). A wrong solution never raises:
whatever it does (wrong numbers, wrong shapes, exceptions, `NotImplementedError`) becomes a failed check.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    message: str = ""
    counterexample: str = ""


@dataclass
class GradeResult:
    """Truthy when every check passed; `str(result)` is the report a student reads."""

    task_id: str
    checks: list[CheckOutcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def score(self) -> float:
        return sum(c.passed for c in self.checks) / max(len(self.checks), 1)

    def report(self) -> str:
        head = f"{self.task_id}: {'PASSED' if self.passed else 'FAILED'} "
        head += f"({sum(c.passed for c in self.checks)}/{len(self.checks)} checks)"
        lines = [head]
        for c in self.checks:
            lines.append(f"  [{'ok' if c.passed else 'FAIL'}] {c.name}")
            if not c.passed:
                if c.message:
                    lines.extend("        " + m for m in c.message.splitlines())
                if c.counterexample:
                    lines.append("        smallest failing input:")
                    lines.extend("          " + m for m in c.counterexample.splitlines())
        return "\n".join(lines)

    __str__ = report

    def _repr_pretty_(self, p, cycle):  # IPython / Jupyter display
        p.text(self.report())


class Mismatch(AssertionError):
    """Raised by a comparison to say how the student's answer differs."""


def fmt(value, limit: int = 600) -> str:
    """A short readable rendering of an argument or result."""
    if isinstance(value, np.ndarray):
        with np.printoptions(precision=4, suppress=True, threshold=60, edgeitems=3):
            s = f"array{value.shape} {value.dtype}: {np.array2string(value)}"
    elif isinstance(value, dict):
        s = "{" + ", ".join(f"{k}: {fmt(v, 200)}" for k, v in value.items()) + "}"
    elif isinstance(value, (list, tuple)):
        s = ("(" if isinstance(value, tuple) else "[") + ", ".join(fmt(v, 200) for v in value)
        s += ")" if isinstance(value, tuple) else "]"
    else:
        s = repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def assert_close(got, want, name="result", rtol=1e-5, atol=1e-6):
    got_a = np.asarray(got)
    want_a = np.asarray(want)
    if got_a.shape != want_a.shape:
        raise Mismatch(f"{name} has shape {got_a.shape}, expected {want_a.shape}")
    if got_a.size == 0:
        return
    try:
        ok = np.allclose(got_a.astype(np.float64), want_a.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
    except (TypeError, ValueError):
        raise Mismatch(f"{name} is not numeric: {fmt(got)}") from None
    if not ok:
        diff = np.abs(got_a.astype(np.float64) - want_a.astype(np.float64))
        i = np.unravel_index(int(np.nanargmax(diff)), diff.shape) if diff.ndim else ()
        raise Mismatch(f"{name} differs from the reference: largest difference {float(np.nanmax(diff)):.4g} at "
                       f"index {tuple(int(v) for v in i)} (got {got_a[i].item()!r}, expected {want_a[i].item()!r})")


def _call(fn, args, kwargs):
    return fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args], **kwargs)


def describe_exception(e: BaseException) -> str:
    if isinstance(e, NotImplementedError):
        return f"not implemented yet: {e}" if str(e) else "not implemented yet"
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (line {tb[-1].lineno} of {tb[-1].filename.rsplit('/', 1)[-1]})" if tb else ""
    return f"raised {type(e).__name__}: {e}{where}"


def compare_check(name: str, cases: Callable[[], Iterable[tuple[tuple, dict]]],
                  compare: Callable[[object, tuple, dict], None]) -> Callable[[Callable], CheckOutcome]:
    """Run fn on each case (smallest first); `compare(got, args, kwargs)` raises Mismatch when wrong."""

    def run(fn) -> CheckOutcome:
        for args, kwargs in cases():
            shown = "\n".join([f"arg {i}: {fmt(a)}" for i, a in enumerate(args)]
                              + [f"{k}={fmt(v)}" for k, v in kwargs.items()])
            try:
                got = _call(fn, args, kwargs)
                compare(got, args, kwargs)
            except Mismatch as e:
                return CheckOutcome(name, False, str(e), shown)
            except Exception as e:  # a wrong solution may raise anything; it is a failed check
                return CheckOutcome(name, False, describe_exception(e), shown)
        return CheckOutcome(name, True)

    return run


def property_check(name: str, strategy_factory: Callable, prop: Callable, max_examples: int = 60,
                   fallback_cases: Callable[[], Iterable] | None = None) -> Callable[[Callable], CheckOutcome]:
    """Check `prop(fn, example)` (raises Mismatch when violated) with hypothesis, which shrinks a failure.

    Without hypothesis installed, `fallback_cases()` (seeded examples) are used instead.
    """

    def run(fn) -> CheckOutcome:
        failure: dict = {}

        def test(example):
            try:
                prop(fn, example)
            except Exception as e:
                failure["example"] = example
                failure["error"] = e
                raise

        try:
            from hypothesis import HealthCheck, Verbosity, given, settings
        except ImportError:  # pragma: no cover - hypothesis is a dev dependency
            for ex in (fallback_cases() if fallback_cases else ()):
                try:
                    test(ex)
                except Exception as e:
                    return CheckOutcome(name, False, _prop_message(e), fmt(ex))
            return CheckOutcome(name, True)
        runner = settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                          suppress_health_check=list(HealthCheck), print_blob=False,
                          verbosity=Verbosity.quiet)(given(strategy_factory())(test))
        try:
            runner()
        except Exception as e:
            err = failure.get("error", e)
            return CheckOutcome(name, False, _prop_message(err), fmt(failure.get("example", "?")))
        return CheckOutcome(name, True)

    return run


def _prop_message(e: BaseException) -> str:
    return str(e) if isinstance(e, Mismatch) else describe_exception(e)
