import pytest

from aics.core.errors import UserError
from aics.core.io import append_jsonl, atomic_write, read_json, read_jsonl, write_json


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write("new half")
        raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_json_helpers(tmp_path):
    write_json(tmp_path / "x.json", {"a": 1})
    assert read_json(tmp_path / "x.json") == {"a": 1}
    (tmp_path / "bad.json").write_text('{"a": 1,\n oops}')
    with pytest.raises(UserError, match=r"bad\.json:2: invalid JSON"):
        read_json(tmp_path / "bad.json")
    append_jsonl(tmp_path / "m.jsonl", {"step": 1})
    append_jsonl(tmp_path / "m.jsonl", {"step": 2})
    assert [r["step"] for r in read_jsonl(tmp_path / "m.jsonl")] == [1, 2]


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "p.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p.json").stat().st_mode) == 0o644
