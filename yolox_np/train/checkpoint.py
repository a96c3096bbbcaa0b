"""Training checkpoints: one `.npz` file (a zip of `.npy` arrays) plus JSON metadata, written atomically.

Format (version 1): every array of a nested state (model, EMA, optimizer buffers, ...) is stored as its own
`.npy` member named by its path (`model/head.cls_preds.0.bias`); the nested structure itself, with each
array replaced by `{"__array__": "<member>"}`, is JSON-encoded into the uint8 member `__meta__`. Loading uses
`np.load(..., allow_pickle=False)`, so reading a checkpoint can never execute code.

Writing goes to a temporary file in the destination directory, is flushed to disk, then `os.replace`d
over the destination: a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "yolox-np-checkpoint"
VERSION = 1
META_KEY = "__meta__"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (corrupt, truncated, or not a yolox-np checkpoint)."""


def _flatten(obj, path: str, arrays: dict[str, np.ndarray]):
    """JSON-able copy of `obj` with arrays moved into `arrays` under unique member names."""
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise ValueError(f"checkpoint: object array at {path!r} cannot be stored without pickle")
        key = path or "array"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ValueError(f"checkpoint: keys must be strings, got {k!r} at {path!r}")
            if k == "__array__":
                raise ValueError(f"checkpoint: the key '__array__' is reserved (at {path!r})")
            out[k] = _flatten(v, f"{path}/{k}" if path else k, arrays)
        return out
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, f"{path}/{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        if not np.isfinite(obj):
            raise ValueError(f"checkpoint: non-finite number {obj} at {path!r}")
        return float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise ValueError(f"checkpoint: cannot store a {type(obj).__name__} at {path!r} (arrays, numbers, "
                     "strings, lists and dicts only)")


def _unflatten(obj, arrays, path: Path):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            key = obj["__array__"]
            if key not in arrays:
                raise CheckpointError(f"checkpoint {path}: member {key!r} named in the metadata is missing")
            return arrays[key]
        return {k: _unflatten(v, arrays, path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, arrays, path) for v in obj]
    return obj


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write the nested `state` (dicts/lists of arrays, numbers, strings) atomically to `path` (.npz)."""
    path = Path(path)
    if not isinstance(state, dict):
        raise ValueError(f"save_checkpoint needs a dict, got {type(state).__name__}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"checkpoint directory {path.parent} does not exist")
    arrays: dict[str, np.ndarray] = {}
    tree = _flatten(state, "", arrays)
    if META_KEY in arrays:
        raise ValueError(f"checkpoint: the name {META_KEY!r} is reserved")
    meta = json.dumps({"format": FORMAT, "version": VERSION, "state": tree})
    members = dict(arrays)
    members[META_KEY] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, members)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_npz(f, members: dict[str, np.ndarray]) -> None:
    """The body of `np.savez` (uncompressed, no pickle) on an open binary file."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in members.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by `save_checkpoint`; returns the nested state.

    Raises FileNotFoundError for a missing file and CheckpointError (a ValueError) naming the file for a
    corrupt, truncated or foreign one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise CheckpointError(f"checkpoint {path} is a single array, not a yolox-np checkpoint")
        with loaded as npz:
            arrays = {name: npz[name] for name in npz.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated and cannot be read ({e})") from e
    if META_KEY not in arrays:
        raise CheckpointError(f"checkpoint {path} is not a yolox-np checkpoint (no {META_KEY} member)")
    try:
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {path} has unreadable metadata ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a yolox-np checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {meta.get('version')!r}; this code reads "
                              f"version {VERSION}")
    return _unflatten(meta["state"], arrays, path)
