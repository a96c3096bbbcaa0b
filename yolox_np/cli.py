"""`yolox-np` command line: demo | train | detect | eval | bench.

Invalid values end with a one-line message naming the option and the rule, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


class UsageError(Exception):
    """A bad command-line value: printed as one line, exit code 2."""


def _model_and_weights(name: str, weights: str | None, num_classes: int | None = None):
    from .models import get_model

    try:
        model = get_model(name, num_classes=num_classes or 80)
    except (KeyError, ValueError) as e:
        raise UsageError(f"--model: {e}") from None
    if weights is not None:
        from .weights import load_weights

        path = Path(weights)
        if not path.is_file():
            raise UsageError(f"--weights: file not found: {weights}")
        try:
            load_weights(model, path)
        except (ValueError, OSError) as e:
            raise UsageError(f"--weights: {e}") from None
    return model.eval()


def _class_names(num_classes: int):
    from .coco_classes import COCO_CLASSES

    return list(COCO_CLASSES) if num_classes == len(COCO_CLASSES) else [str(i) for i in range(num_classes)]


def _check_unit(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{name} must be in [0, 1], got {value}")
    return value


def _check_img_size(value: int) -> int:
    if value <= 0 or value % 32:
        raise UsageError(f"--img-size must be a positive multiple of 32, got {value}")
    return value


# ----------------------------------------------------------------------------- detect
def cmd_detect(args) -> int:
    from tqdm import tqdm

    from .data.preprocess import ImageReadError
    from .detector import Detector
    from .viz import draw_detections

    _check_unit("--conf", args.conf)
    _check_unit("--nms", args.nms)
    size = _check_img_size(args.img_size)
    model = _model_and_weights(args.model, args.weights)
    names = _class_names(model.num_classes)
    det = Detector(model, img_size=size, conf=args.conf, nms=args.nms, class_agnostic=args.class_agnostic,
                   class_names=names)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records, failed = [], []
    for image_id, path in enumerate(tqdm(args.images, desc="detect", unit="img", disable=len(args.images) < 2)):
        try:
            d = det(path)
        except (ImageReadError, FileNotFoundError, OSError) as e:
            failed.append(path)
            tqdm.write(f"error: {path}: {e}", file=sys.stderr)
            continue
        for rec in d.to_coco(image_id, class_names=names):
            records.append({"file_name": str(path), **rec})
        from .data.preprocess import load_image

        drawn = draw_detections(load_image(path), d.as_array(), names)
        drawn.save(out / f"{Path(path).stem}_det.png")
        tqdm.write(f"{path}: {len(d)} detection(s)" + "".join(
            f"\n  {names[int(c)]} {s:.2f} [{', '.join(f'{v:.1f}' for v in b)}]"
            for b, s, c in zip(d.boxes, d.scores, d.classes)))
    (out / "detections.json").write_text(json.dumps(records, indent=1))
    print(f"wrote {len(args.images) - len(failed)} annotated image(s) and {out / 'detections.json'}")
    if failed:
        print(f"error: {len(failed)} of {len(args.images)} image(s) could not be processed: "
              + ", ".join(map(str, failed)), file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------------------- eval
def cmd_eval(args) -> int:
    from tqdm import tqdm

    from .detector import Detector
    from .eval import coco_eval

    size = _check_img_size(args.img_size)
    gt_path = Path(args.data)
    try:
        gt = json.loads(gt_path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--data: file not found: {args.data}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"--data: {args.data} is not valid JSON ({e})") from None
    if not isinstance(gt, dict) or "images" not in gt or "categories" not in gt:
        raise UsageError(f"--data: {args.data} is not a COCO instances file (needs 'images' and 'categories')")
    cat_ids = sorted(c["id"] for c in gt["categories"])
    model = _model_and_weights(args.model, args.weights, num_classes=len(cat_ids))
    det = Detector(model, img_size=size, conf=args.conf, nms=args.nms)
    images_dir = Path(args.images)
    dets = []
    for img in tqdm(gt["images"], desc="eval", unit="img"):
        path = images_dir / img["file_name"]
        if not path.is_file():
            raise UsageError(f"--images: image file not found: {path}")
        dets.extend(det(path).to_coco(img["id"], category_ids=cat_ids))
    result = coco_eval(gt, dets)
    keys = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    for k in keys:
        print(f"{k:>6}  {result[k]:.4f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({k: float(result[k]) for k in keys}, indent=1))
    print(f"wrote {out}")
    return 0


# ----------------------------------------------------------------------------- demo, train, bench
def cmd_demo(args) -> int:
    from .train.demo import run_demo

    run_demo(args.out)
    return 0


def cmd_train(args) -> int:
    from .train.cli import run_train

    return int(run_train(args) or 0)


def cmd_bench(args) -> int:
    from .bench import run_bench

    run_bench(args.kind, json_path=args.json, quick=args.quick)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="yolox-np", description="YOLOX in NumPy: train, detect, evaluate.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="train a small YOLOX on procedural shapes, evaluate, detect, draw figures")
    d.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="train YOLOX on the shapes dataset or a COCO-format dataset")
    try:
        from .train.cli import add_train_args
    except ImportError:  # pragma: no cover - only while the trainer is absent
        add_train_args = None
    if add_train_args is not None:
        add_train_args(t)
    t.set_defaults(func=cmd_train)

    det = sub.add_parser("detect", help="detect objects in images and write annotated copies + detections.json")
    det.add_argument("images", nargs="+", help="image files")
    det.add_argument("--model", default="nano", help="model name: nano, tiny, s, m, l, x, darknet53")
    det.add_argument("--weights", default=None, help=".pth (official), .onnx or .npz weights")
    det.add_argument("--out", default="runs/detect", help="output folder")
    det.add_argument("--conf", type=float, default=0.3, help="score threshold (obj x class prob)")
    det.add_argument("--nms", type=float, default=0.45, help="NMS IoU threshold")
    det.add_argument("--img-size", type=int, default=416, help="network input size (multiple of 32)")
    det.add_argument("--class-agnostic", action="store_true", help="NMS across classes")
    det.set_defaults(func=cmd_detect)

    e = sub.add_parser("eval", help="COCO-style evaluation of a model on a COCO-format dataset")
    e.add_argument("--model", default="nano")
    e.add_argument("--weights", default=None)
    e.add_argument("--data", required=True, help="COCO instances JSON")
    e.add_argument("--images", required=True, help="folder with the images")
    e.add_argument("--img-size", type=int, default=416)
    e.add_argument("--conf", type=float, default=0.01)
    e.add_argument("--nms", type=float, default=0.65)
    e.add_argument("--out", default="runs/eval/eval.json", help="where to write the table as JSON")
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("bench", help="benchmarks (JSON output): conv layers, whole models")
    b.add_argument("kind", nargs="?", default="all", choices=["conv", "model", "all"])
    b.add_argument("--json", default=None, help="write the results to this JSON file")
    b.add_argument("--quick", action="store_true", help="small shapes and few repeats (smoke test)")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"yolox-np {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
