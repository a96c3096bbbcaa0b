"""State dicts as `.npz` files (a zip of `.npy` arrays, one per state-dict key, in order)."""

from __future__ import annotations

import os
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def save_npz(state_dict: Mapping[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write `state_dict` to `path` (exactly that name; no `.npz` is appended), keys in order, uncompressed.

    Written to a temporary name and renamed, so a failed save leaves no partial file. Object arrays and
    non-finite floating values are refused with a ValueError naming the key.
    """
    path = Path(path)
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"save_npz needs a mapping name -> array, got {type(state_dict).__name__}")
    if not state_dict:
        raise ValueError("save_npz: the state_dict is empty")
    arrays = OrderedDict()
    for k, v in state_dict.items():
        if not isinstance(k, str) or not k:
            raise ValueError(f"save_npz: keys must be non-empty strings, got {k!r}")
        if not isinstance(v, (np.ndarray, np.generic)):
            raise ValueError(f"save_npz: '{k}' is a {type(v).__name__}, not a NumPy array")
        v = np.asarray(v)
        if v.dtype.hasobject:
            raise ValueError(f"save_npz: '{k}' is an object array, which cannot be stored without pickle")
        if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            raise ValueError(f"save_npz: '{k}' contains NaN or infinite values")
        arrays[k] = v
    tmp = path.with_name(path.name + ".tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for k, v in arrays.items():
                with zf.open(k + ".npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, v, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_npz(path: str | os.PathLike) -> OrderedDict[str, np.ndarray]:
    """Read an `.npz` state dict (no pickle allowed) into an OrderedDict in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such weights file: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path}: not an .npz file (corrupt or not a zip archive: {e})") from e
    odd = [n for n in names if not n.endswith(".npy")]
    if odd or not names:
        what = f"records that are not .npy arrays: {', '.join(odd[:5])}" if odd else "no arrays"
        raise ValueError(f"{path}: not an .npz state dict ({what})")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    try:
        with np.load(path, allow_pickle=False) as npz:
            for name in names:
                out[name[: -len(".npy")]] = np.asarray(npz[name[: -len(".npy")]])
    except ValueError as e:
        raise ValueError(f"{path}: cannot read the arrays ({e})") from e
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise ValueError(f"{path}: corrupt or truncated .npz ({type(e).__name__}: {e})") from e
    return out
