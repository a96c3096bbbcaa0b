"""Checkpoint file format: round trip, atomic replacement, refusal of corrupt or pickled files."""

import os
import pickle
import zipfile

import numpy as np
import pytest

from yolox_np.train import checkpoint as ckpt
from yolox_np.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def _state(scale=1.0):
    rng = np.random.default_rng(0)
    return {
        "model": {"a.weight": rng.standard_normal((3, 2, 1, 1)).astype(np.float32) * scale,
                  "a.bias": np.arange(3, dtype=np.float32)},
        "optimizer": {"lr": 0.001, "momentum_buffers": {"a.weight": np.ones((3, 2, 1, 1), np.float32)}},
        "position": {"epoch": 2, "iteration": 17},
        "rng": {"bit_generator": "PCG64", "state": {"state": 2**127 + 12345, "inc": 2**90 + 1}},
        "history": [{"epoch": 0, "loss": 1.5}, {"epoch": 1, "loss": 0.75}],
        "flags": [True, None, "text"],
        "int64": np.array([2**40], dtype=np.int64),
    }


def test_round_trip_keeps_values_dtypes_and_big_ints(tmp_path):
    path = save_checkpoint(tmp_path / "last.npz", _state())
    out = load_checkpoint(path)
    ref = _state()
    for k in ref["model"]:
        assert out["model"][k].dtype == ref["model"][k].dtype
        np.testing.assert_array_equal(out["model"][k], ref["model"][k])
    np.testing.assert_array_equal(out["optimizer"]["momentum_buffers"]["a.weight"], 1.0)
    assert out["rng"] == ref["rng"]  # 128-bit integers survive
    assert out["history"] == ref["history"] and out["flags"] == ref["flags"]
    assert out["position"] == {"epoch": 2, "iteration": 17}
    assert out["int64"].dtype == np.int64 and out["int64"][0] == 2**40


def test_file_is_a_plain_npz_without_pickle(tmp_path):
    path = save_checkpoint(tmp_path / "c.npz", _state())
    with np.load(path, allow_pickle=False) as npz:
        assert "model/a.weight" in npz.files and "__meta__" in npz.files


def test_crash_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.npz"
    save_checkpoint(path, _state(1.0))
    calls = {"n": 0}
    real = np.lib.format.write_array

    def failing_write(fp, array, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # some bytes of the new file are already written
            raise OSError("disk full (simulated)")
        return real(fp, array, *a, **k)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, _state(2.0))
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["last.npz"]  # no temporary file left behind
    np.testing.assert_array_equal(load_checkpoint(path)["model"]["a.weight"], _state(1.0)["model"]["a.weight"])


def test_keyboard_interrupt_mid_write_cleans_up(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "_write_npz", lambda f, members: (f.write(b"PK\x03\x04partial"),
                                                                 (_ for _ in ()).throw(KeyboardInterrupt()))[1])
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "x.npz", _state())
    assert os.listdir(tmp_path) == []


def test_truncated_file_names_the_file(tmp_path):
    path = save_checkpoint(tmp_path / "last.npz", _state())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="last.npz.*corrupt or truncated"):
        load_checkpoint(path)


def test_flipped_byte_in_array_is_detected(tmp_path):
    path = save_checkpoint(tmp_path / "c.npz", _state())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model/a.weight.npy")
    data[info.header_offset + 30 + len(info.filename) + info.file_size - 1] ^= 0xFF  # last byte of the member
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="c.npz"):
        load_checkpoint(path)


def test_garbage_and_foreign_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file at all")
    with pytest.raises(CheckpointError, match="junk.npz"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a yolox-np checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_checkpoint(tmp_path / "missing.npz")


class _Exploit:
    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return (open, (self.flag, "w"))


def test_pickled_content_is_refused_without_running_it(tmp_path):
    flag = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("__meta__.npy", "w") as f:
            np.lib.format.write_array(f, np.array([_Exploit(str(flag))], dtype=object), allow_pickle=True)
    assert pickle.dumps(_Exploit(str(flag)))  # the payload is real
    with pytest.raises(CheckpointError, match="evil.npz"):
        load_checkpoint(path)
    assert not flag.exists()


def test_unstorable_values_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="cannot store a set"):
        save_checkpoint(tmp_path / "a.npz", {"x": {1, 2}})
    with pytest.raises(ValueError, match="object array"):
        save_checkpoint(tmp_path / "a.npz", {"x": np.array([object()])})
    with pytest.raises(ValueError, match="non-finite"):
        save_checkpoint(tmp_path / "a.npz", {"loss": float("nan")})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tmp_path / "no" / "a.npz", {})
    assert os.listdir(tmp_path) == []
