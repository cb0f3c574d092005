import pytest

from aics.core.errors import UserError
from aics.core.stage import begin_stage, done_info, is_done, mark_done, require_done


def test_stage_runs_then_skips(tmp_path):
    out = tmp_path / "stage"
    assert begin_stage(out) is True
    (out / "result.txt").write_text("1")
    mark_done(out, {"n": 3})
    assert is_done(out) and done_info(out)["n"] == 3
    assert begin_stage(out) is False, "a finished stage is skipped"
    assert (out / "result.txt").exists()


def test_half_written_output_is_refused_then_overwritten(tmp_path):
    out = tmp_path / "stage"
    out.mkdir()
    (out / "partial.txt").write_text("x")
    with pytest.raises(UserError, match=r"has no \.done marker.*--overwrite"):
        begin_stage(out, what="prepare")
    assert begin_stage(out, overwrite=True) is True
    assert not (out / "partial.txt").exists(), "--overwrite starts from an empty directory"


def test_overwrite_redoes_a_finished_stage(tmp_path):
    out = tmp_path / "stage"
    begin_stage(out)
    mark_done(out)
    assert begin_stage(out, overwrite=True) is True and not is_done(out)


def test_resumable_directory_is_accepted(tmp_path):
    out = tmp_path / "exp"
    (out / "ckpt").mkdir(parents=True)
    (out / "ckpt" / "last.pt").write_text("x")
    assert begin_stage(out, resumable=lambda p: (p / "ckpt" / "last.pt").exists()) is True


def test_require_done(tmp_path):
    with pytest.raises(UserError, match="not found; run it"):
        require_done(tmp_path / "nope", "prepare", "run it")
    (tmp_path / "d").mkdir()
    with pytest.raises(UserError, match="has not finished"):
        require_done(tmp_path / "d", "prepare", "run it")
    mark_done(tmp_path / "d")
    assert require_done(tmp_path / "d", "prepare", "run it") == tmp_path / "d"


def test_finished_stage_made_from_other_params_is_refused(tmp_path):
    out = tmp_path / "prep"
    assert begin_stage(out, params={"src": "a", "n": 1})
    mark_done(out, params={"src": "a", "n": 1})
    assert begin_stage(out, params={"src": "a", "n": 1}) is False
    with pytest.raises(UserError, match=r"made with other options \(n=1 -> 2\); pass --overwrite"):
        begin_stage(out, params={"src": "a", "n": 2})
    assert begin_stage(out, overwrite=True, params={"src": "a", "n": 2})
