"""md.save / md.load: exact round trips, atomic writes, clear errors, never pickle."""
import json
import os
import zipfile

import numpy as np
import pytest

import minidense as md
import minidense.nn as nn
from minidense import serialization


def test_nested_round_trip_keeps_values_dtypes_and_structure(tmp_path):
    obj = {
        "model": {"w": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
                  "idx": np.array([1, -2], dtype=np.int64), "flags": np.array([True, False])},
        "tensor": md.tensor([1.5, 2.5], dtype=md.float64),
        "history": [0.1, 0.01, {"epoch": 3, "name": "run", "done": False, "note": None}],
        "betas": (0.9, 0.999),
        "state": {0: {"step": 4, "buf": np.ones(2, dtype=np.float16)}, 1: {}},
        "scalar": np.float32(0.25),
        "empty": np.zeros((0, 3)),
        "__array__": "a user key that looks like a marker",
    }
    path = tmp_path / "ckpt.npz"
    md.save(obj, path)
    back = md.load(path)

    assert set(back) == set(obj)
    for key in ("w", "idx", "flags"):
        assert back["model"][key].dtype == obj["model"][key].dtype
        np.testing.assert_array_equal(back["model"][key], obj["model"][key])
    assert isinstance(back["tensor"], np.ndarray) and back["tensor"].dtype == np.float64
    np.testing.assert_array_equal(back["tensor"], [1.5, 2.5])
    assert back["history"] == [0.1, 0.01, {"epoch": 3, "name": "run", "done": False,
                                           "note": None}]
    assert back["betas"] == (0.9, 0.999)
    assert list(back["state"]) == [0, 1] and back["state"][0]["step"] == 4
    assert back["state"][0]["buf"].dtype == np.float16
    assert back["scalar"] == np.float32(0.25) and back["scalar"].dtype == np.float32
    assert back["empty"].shape == (0, 3)
    assert back["__array__"] == obj["__array__"]


def test_module_state_dict_round_trip(tmp_path):
    source = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    source(md.randn(2, 3, 5, 5))
    md.save(source.state_dict(), tmp_path / "model.npz")
    target = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    target.load_state_dict(md.load(tmp_path / "model.npz"))
    for a, b in zip(source.state_dict().values(), target.state_dict().values()):
        np.testing.assert_array_equal(a, b)


def test_file_is_a_plain_npz_with_json_meta(tmp_path):
    path = tmp_path / "x.npz"
    md.save({"a": np.arange(3)}, path)
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["__meta__", "arr_0"]
        assert archive["__meta__"].dtype == np.uint8
        meta = json.loads(bytes(archive["__meta__"]).decode())
    assert meta["object"] == {"a": {"__array__": "arr_0"}} and meta["format"] == "minidense"


def test_load_never_allows_pickle(tmp_path, monkeypatch):
    path = tmp_path / "x.npz"
    md.save({"a": np.arange(3)}, path)
    calls = []
    real_load = np.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", recording_load)
    md.load(path)
    assert calls and all(c.get("allow_pickle") is False for c in calls)


def test_object_arrays_and_unknown_types_are_refused(tmp_path):
    with pytest.raises(TypeError, match="dtype object"):
        md.save({"bad": np.array([{}, 1], dtype=object)}, tmp_path / "a.npz")
    with pytest.raises(TypeError, match=r"set at obj\['x'\]"):
        md.save({"x": {1, 2}}, tmp_path / "b.npz")
    assert os.listdir(tmp_path) == []


# -- atomic writes ------------------------------------------------------------------------------
def test_crash_during_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    md.save({"epoch": 1, "w": np.ones(3)}, path)
    old_bytes = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        md.save({"epoch": 2, "w": np.zeros(3)}, path)
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    monkeypatch.undo()
    assert md.load(path)["epoch"] == 1


def test_crash_at_rename_leaves_no_temp(tmp_path, monkeypatch):
    def failing_replace(src, dst):
        raise PermissionError("rename refused")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        md.save({"a": 1}, tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


def test_save_overwrites_and_accepts_other_suffixes(tmp_path):
    path = tmp_path / "model.pt"
    md.save({"v": 1}, path)
    md.save({"v": 2}, str(path))
    assert md.load(path) == {"v": 2} and os.listdir(tmp_path) == ["model.pt"]


# -- bad files ----------------------------------------------------------------------------------
def test_truncated_file_gives_clear_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    md.save({"w": np.arange(1000.0)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(serialization.CheckpointError, match="ckpt.npz.*truncated or corrupted"):
        md.load(path)


def test_non_npz_file_gives_clear_error(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("these are not arrays")
    with pytest.raises(ValueError, match="notes.npz"):
        md.load(path)


def test_foreign_npz_without_meta_is_named(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.ones(2))
    with pytest.raises(serialization.CheckpointError, match="foreign.npz.*'__meta__'"):
        md.load(path)


def test_pytorch_style_zip_gets_a_hint(tmp_path):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x04N.")
    with pytest.raises(serialization.CheckpointError, match="PyTorch"):
        md.load(path)


def test_plain_npy_and_missing_file(tmp_path):
    np.save(tmp_path / "one.npy", np.ones(2))
    with pytest.raises(serialization.CheckpointError, match="single .npy array"):
        md.load(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        md.load(tmp_path / "missing.npz")


# ----------------------------------------------------------------------------------------------
# Files from elsewhere: every lie is one clear CheckpointError, nothing large is allocated
# ----------------------------------------------------------------------------------------------
def npy_header(shape, dtype="<f4"):
    """A .npy version 1.0 header declaring ``shape`` (the data is up to the caller)."""
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def load_peak(path):
    """md.load(path), which must raise CheckpointError; returns (message, peak bytes)."""
    import tracemalloc
    tracemalloc.start()
    try:
        with pytest.raises(serialization.CheckpointError) as info:
            md.load(path)
        return str(info.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_small_npz_declaring_a_64_gib_array_is_refused(tmp_path):
    path = tmp_path / "forged.npz"
    write_zip(path, {"arr_0.npy": npy_header((2 ** 34,)) + bytes(16),
                     "__meta__.npy": npy_header((2,), "|u1") + b"{}"})
    assert path.stat().st_size < 600
    message, peak = load_peak(path)
    assert "'arr_0.npy'" in message and "(17179869184,)" in message
    assert "68,719,476,736 bytes" in message and "holds 16 bytes" in message
    assert peak < 1_000_000


def test_zip_bomb_is_refused_without_inflating(tmp_path):
    path = tmp_path / "bomb.npz"
    data = npy_header((50_000_000,), "|u1") + bytes(50_000_000)
    write_zip(path, {"arr_0.npy": data}, zipfile.ZIP_DEFLATED)
    del data
    message, peak = load_peak(path)
    assert "is compressed" in message and "inflate to 50,000,128" in message
    assert peak < 1_000_000


def test_one_array_referred_to_twice_is_refused(tmp_path):
    path = tmp_path / "twice.npz"
    md.save({"a": np.zeros(3)}, path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = json.dumps({"format": "minidense", "version": 1,
                       "object": [{"__array__": "arr_0"}, {"__array__": "arr_0"}]}).encode()
    members["__meta__.npy"] = npy_header((len(meta),), "|u1") + meta
    write_zip(path, members)
    with pytest.raises(serialization.CheckpointError, match="refers to array 'arr_0' twice"):
        md.load(path)


def write_meta(path, meta_text):
    """An .npz holding only a __meta__ entry with this text."""
    data = meta_text.encode()
    write_zip(path, {"__meta__.npy": npy_header((len(data),), "|u1") + data})


@pytest.mark.parametrize("meta, expected", [
    ("[1, 2]", "no minidense header"),
    ('{"format": "minidense", "version": "1", "object": 1}', "version '1'"),
    ('{"format": "minidense", "version": 1, "object": ' + "[" * 5000 + "]" * 5000 + "}",
     "nests its structure too deeply"),
    ('{"format": "minidense", "version": 1, "object": {"__float__": "many"}}', "malformed"),
])
def test_malformed_metadata_is_one_checkpoint_error(tmp_path, meta, expected):
    path = tmp_path / "odd.npz"
    write_meta(path, meta)
    with pytest.raises(serialization.CheckpointError, match=expected):
        md.load(path)


def test_non_finite_floats_round_trip_as_strict_json(tmp_path):
    path = tmp_path / "nan.npz"
    md.save({"loss": float("nan"), "bounds": (float("-inf"), float("inf")), "n": 1.5}, path)
    with np.load(path) as archive:
        text = bytes(archive["__meta__"]).decode()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not strict JSON"))
    loaded = md.load(path)
    assert np.isnan(loaded["loss"]) and loaded["bounds"] == (-np.inf, np.inf)
    assert loaded["n"] == 1.5


def test_each_successful_write_removes_stale_temporary_files(tmp_path):
    target = tmp_path / "last.npz"
    for index in range(3):      # what writes killed before their rename leave behind
        (tmp_path / f".last.npz.crash{index}.tmp").write_bytes(b"half")
    (tmp_path / ".best.npz.crash.tmp").write_bytes(b"another file's")
    md.save({"x": np.ones(2)}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".best.npz.crash.tmp", "last.npz"]


def test_load_state_dict_with_a_bad_entry_changes_nothing():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = {k: np.full_like(v, 7.0) for k, v in before.items()}
    state["1.weight"] = np.array([["a", "b", "c"]])            # the last entry is text
    with pytest.raises(RuntimeError, match="1.weight: dtype <U1"):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


# ----------------------------------------------------------------------------------------------
# A file that cannot be read is not a damaged one; flags md.save never sets are refused
# ----------------------------------------------------------------------------------------------
def test_permission_denied_is_said_as_such(tmp_path, monkeypatch):
    from file_faults import deny_opening
    from minidense.errors import FileAccessError
    path = tmp_path / "last.npz"
    md.save({"w": np.ones(2)}, path)
    deny_opening(monkeypatch, path)
    with pytest.raises(FileAccessError) as info:
        md.load(path)
    assert str(info.value) == (f"cannot read {path}: Permission denied; check its permissions "
                               f"(ls -l) or use a file you own")
    assert isinstance(info.value, OSError) and info.value.errno == 13


def set_zip_flag(path, bit):
    """Set a general-purpose flag bit of every member, in the local and the central headers."""
    data = bytearray(path.read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start != -1:
            data[start + flags_at] |= bit
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


def test_a_member_marked_encrypted_is_one_checkpoint_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    md.save({"w": np.ones(2)}, path)
    set_zip_flag(path, 0x01)
    with pytest.raises(serialization.CheckpointError, match="member '.*' is marked as encrypted, "
                                                            "which md.save never writes"):
        md.load(path)


# ----------------------------------------------------------------------------------------------
# Fuzzing: a damaged or edited checkpoint loads what was saved, or is refused in one UserError
# ----------------------------------------------------------------------------------------------
def tiny_training_state():
    """A model, optimizer and schedule after one step, and their checkpoint."""
    from minidense import optim
    from minidense.checkpoints import make_checkpoint
    from minidense.run_folder import METRIC_COLUMNS
    md.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model.config = {"name": "tiny"}
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3)
    model(md.randn(5, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    history = [{name: 0.5 for name in METRIC_COLUMNS} | {"epoch": 1}]
    checkpoint = make_checkpoint(model, optimizer, scheduler, 1, 0.5, history, {"lr": 0.1})
    return model, optimizer, scheduler, checkpoint


def same_content(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and np.array_equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same_content(a[k], b[k])
                                                                  for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same_content, a, b))
    return type(a) is type(b) and a == b


def test_fuzzed_checkpoint_bytes_load_identically_or_are_refused(tmp_path):
    import random
    from minidense.checkpoints import read_training_checkpoint
    from minidense.errors import UserError
    original = tmp_path / "last.npz"
    md.save(tiny_training_state()[3], original)
    data, expected = original.read_bytes(), md.load(original)
    generator, outcomes = random.Random(0), {"identical": 0, "refused": 0}
    for case in range(300):
        damaged = bytearray(data)
        kind = case % 4
        if kind == 0:                                   # bit flips
            for _ in range(generator.randint(1, 3)):
                damaged[generator.randrange(len(damaged))] ^= 1 << generator.randrange(8)
        elif kind == 1:                                 # truncation
            damaged = damaged[:generator.randrange(len(damaged))]
        elif kind == 2:                                 # bytes appended
            damaged += generator.randbytes(generator.randint(1, 64))
        else:                                           # one byte set to anything
            damaged[generator.randrange(len(damaged))] = generator.randrange(256)
        path = tmp_path / "fuzzed.npz"
        path.write_bytes(bytes(damaged))
        try:
            loaded = read_training_checkpoint(path)
        except UserError as error:
            assert "\n" not in str(error)
            outcomes["refused"] += 1
        else:
            assert same_content(loaded, expected), f"case {case} loaded other values"
            outcomes["identical"] += 1
    assert outcomes["refused"] > 150 and sum(outcomes.values()) == 300


def test_fuzzed_checkpoint_values_restore_or_are_refused():
    import copy
    import random
    from minidense.checkpoints import check_training_state, restore_state
    from minidense.errors import UserError
    checkpoint = tiny_training_state()[3]
    paths = []

    def collect(node, path):
        if path:
            paths.append(path)
        items = node.items() if isinstance(node, dict) else (
            enumerate(node) if isinstance(node, list) else ())
        for key, value in items:
            collect(value, path + (key,))

    collect(checkpoint, ())
    replacements = ["0.1", "x", None, -1, 2 ** 70, [], [1, 2], {}, {"a": 1}, float("nan"),
                    float("inf"), True, 1.5, 0, np.zeros(3), np.array(["a"])]
    generator, refused = random.Random(0), 0
    for case in range(300):
        edited = copy.deepcopy(checkpoint)
        *parents, last = generator.choice(paths)
        entry = edited
        for key in parents:
            entry = entry[key]
        entry[last] = generator.choice(replacements)
        model, optimizer, scheduler, _ = tiny_training_state()
        try:
            check_training_state(edited)
            restore_state(edited, model, optimizer, scheduler)
        except UserError as error:
            assert "\n" not in str(error)
            refused += 1
            continue
        model(md.randn(5, 3)).sum().backward()          # what was accepted trains
        optimizer.step()
        scheduler.step()
    assert refused > 200
