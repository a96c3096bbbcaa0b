"""The graders: the reference passes, the student stubs fail, deliberately wrong solutions are rejected."""

import inspect
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO

from yolox_np import boxes, loss
from yolox_np.grading import check, tasks
from yolox_np.grading.graders import GRADERS
from yolox_np.grading.student import FenceError, make_student, strip_solutions

TASKS = tasks()


def test_tasks_toml_and_graders_agree():
    assert set(TASKS) == set(GRADERS)
    assert len(TASKS) >= 12
    required = {"conv_forward", "conv_backward", "batchnorm_backward", "box_iou", "box_giou", "decode",
                "bce_with_logits", "dynamic_k", "simota_assign", "nms", "soft_nms", "average_precision", "hflip"}
    assert required <= set(TASKS)


@pytest.mark.parametrize("task_id", sorted(TASKS))
def test_reference_passes(task_id):
    result = check(task_id, TASKS[task_id].reference())
    assert result, result.report()
    assert result.score == 1.0


@pytest.mark.parametrize("task_id", sorted(TASKS))
def test_fenced_solution_exists_in_the_package(task_id):
    fn = TASKS[task_id].reference()
    body = inspect.getsource(fn)
    where = inspect.getsourcefile(fn)
    assert "### BEGIN SOLUTION" in body and "### END SOLUTION" in body, f"{fn.__name__} in {where} is not fenced"


def _iou_plus_one(a, b):
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1, 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    inter = iw * ih
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _bce_naive(z, t):
    with np.errstate(all="ignore"):
        p = 1 / (1 + np.exp(-np.asarray(z, float)))
        return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def _nms_agnostic(boxes_, scores, classes, thr):
    from yolox_np.postprocess import nms

    return nms(boxes_, scores, thr)


def _nms_no_sort(boxes_, scores, thr):
    keep = []
    for i in range(len(scores)):
        if all(boxes.box_iou(boxes_[i:i + 1], boxes_[j:j + 1])[0, 0] <= thr for j in keep):
            keep.append(i)
    return np.array(keep)


def _soft_nms_linear_everywhere(b, s, method="gaussian", sigma=0.5, iou_threshold=0.3, score_threshold=0.001):
    from yolox_np.postprocess import soft_nms

    return soft_nms(b, s, method="linear", sigma=sigma, iou_threshold=0.0, score_threshold=score_threshold)


def _ap_no_envelope(recall, precision):
    total = 0.0
    for t in np.linspace(0, 1, 101):
        j = np.searchsorted(recall, t, side="left")
        total += precision[j] if j < len(precision) else 0.0
    return total / 101


def _hflip_no_swap(img, b):
    out = np.array(b, float)
    out[:, [0, 2]] = img.shape[1] - out[:, [0, 2]]
    return img[:, ::-1], out


def _dynamic_k_round(iou, n_candidate_k=10):
    top = -np.sort(-iou, axis=1)[:, :n_candidate_k]
    return np.maximum(1, np.round(top.sum(1))).astype(int)


def _simota_k1(pred, cls, obj, grids, strides, gt, gcls, variant="main"):
    from yolox_np.assign import simota_assign

    a = simota_assign(pred, cls, obj, grids, strides, gt, gcls, variant=variant)
    # keep only the best anchor per GT, as if k were always 1
    keep = np.zeros_like(a.fg_mask)
    for g in range(len(gt)):
        idx = np.flatnonzero(a.gt_index == g)
        if idx.size:
            keep[idx[np.argmax(a.iou[idx])]] = True
    a.fg_mask = keep
    a.gt_index = np.where(keep, a.gt_index, -1)
    a.num_fg = int(keep.sum())
    return a


def _conv_no_padding(x, w, b=None, stride=1, padding=0, groups=1):
    from yolox_np.nn.functional import conv2d_naive

    return conv2d_naive(x, w, b, stride, 0, groups)


def _conv_backward_first_image(dout, x, w, b=None, stride=1, padding=0, groups=1):
    from yolox_np.nn.functional import conv2d_naive_backward

    dx, dw, db = conv2d_naive_backward(dout[:1], x[:1], w, b, stride, padding, groups)
    return np.concatenate([dx, np.zeros_like(x[1:])]), dw, db


def _bn_backward_no_mean_term(dout, cache):
    xhat, inv_std, gamma = cache
    n = dout.shape[0] * dout.shape[2] * dout.shape[3]
    g = dout * gamma.reshape(1, -1, 1, 1)
    dx = (g - xhat * (g * xhat).sum(axis=(0, 2, 3), keepdims=True) / n) * inv_std.reshape(1, -1, 1, 1)
    return dx, (dout * xhat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))


WRONG = {
    "box_iou": [_iou_plus_one, lambda a, b: boxes.intersection(a, b) / (boxes.box_area(a)[:, None] + 1e-9)],
    "box_giou": [boxes.box_iou],
    "decode": [lambda raw, g, s, convention="official": boxes.decode(raw, g, s, convention="official")],
    "bce_with_logits": [_bce_naive, lambda z, t: np.abs(loss.bce_with_logits(z, t) - 0.01)],
    "dynamic_k": [_dynamic_k_round, lambda iou, n_candidate_k=10: np.ones(len(iou), int)],
    "simota_assign": [_simota_k1],
    "nms": [_nms_no_sort],
    "batched_nms": [_nms_agnostic],
    "soft_nms": [_soft_nms_linear_everywhere],
    "average_precision": [_ap_no_envelope],
    "hflip": [_hflip_no_swap],
    "conv_forward": [_conv_no_padding],
    "conv_backward": [_conv_backward_first_image],
    "batchnorm_backward": [_bn_backward_no_mean_term],
}


@pytest.mark.parametrize("task_id,index", [(t, i) for t, fns in WRONG.items() for i in range(len(fns))])
def test_wrong_solutions_are_rejected_with_a_counterexample(task_id, index):
    result = check(task_id, WRONG[task_id][index])
    assert not result
    failed = [c for c in result.checks if not c.passed]
    assert failed and failed[0].counterexample, result.report()
    assert "FAIL" in result.report()


def test_a_solution_that_raises_is_a_failed_check_not_an_exception():
    def boom(*args, **kwargs):
        raise RuntimeError("oops")

    result = check("box_iou", boom)
    assert not result
    assert "RuntimeError: oops" in result.report()
    assert not check("nms", "not a function")


def test_unknown_task_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        check("nope", lambda: None)


def test_strip_solutions_replaces_the_body_with_the_hint():
    src = textwrap.dedent('''\
        def f(x):
            """doc"""
            if x is None:
                raise ValueError("x")
            ### BEGIN SOLUTION
            # HINT: return twice x
            return 2 * x
            ### END SOLUTION
        ''')
    out, n = strip_solutions(src)
    assert n == 1
    assert "return 2 * x" not in out and 'raise NotImplementedError(\'return twice x\')' in out
    assert 'raise ValueError("x")' in out
    ns = {}
    exec(compile(out, "<student>", "exec"), ns)
    with pytest.raises(NotImplementedError, match="return twice x"):
        ns["f"](1)


@pytest.mark.parametrize("bad", ["    ### BEGIN SOLUTION\n    x = 1\n",
                                 "    ### END SOLUTION\n",
                                 "    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n"])
def test_unbalanced_fences_are_refused(bad):
    with pytest.raises(FenceError):
        strip_solutions("def f():\n" + bad)


@pytest.mark.slow
def test_student_copy_fails_every_grader(tmp_path):
    out = tmp_path / "student"
    stripped = make_student(out, REPO)
    assert sum(stripped.values()) >= len(TASKS)
    script = textwrap.dedent("""
        import json, sys
        from yolox_np.grading import check, tasks
        results = {}
        for tid, t in tasks().items():
            fn = t.reference()
            r = check(tid, fn)
            results[tid] = [bool(r), "not implemented" in r.report()]
        print(json.dumps(results))
    """)
    env = {"PYTHONPATH": str(out), "PATH": "/usr/bin:/bin", "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    proc = subprocess.run([sys.executable, "-c", script], cwd=out, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(results) == set(TASKS)
    for tid, (passed, says_not_implemented) in results.items():
        assert not passed, f"the student stub of {tid} passed its grader"
        assert says_not_implemented, f"the report for {tid} does not say it is not implemented"
