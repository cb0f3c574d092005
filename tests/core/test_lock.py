import os
import signal
import subprocess
import sys

import pytest

from aics.core import lock
from aics.core.errors import UserError
from aics.core.stage import begin_stage, mark_done

HOLD = """
import sys, time
from aics.core.stage import begin_stage
begin_stage(sys.argv[1], what="prepare")
open(sys.argv[1] + "/partial.txt", "w").write("x")
print("locked", flush=True)
time.sleep(60)
"""


def hold(directory):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(directory)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_with_the_holders_pid(tmp_path):
    out = tmp_path / "stage"
    proc = hold(out)
    try:
        with pytest.raises(UserError, match=rf"stage: in use by another aics process \(pid {proc.pid}\)"):
            begin_stage(out, what="prepare")
        with pytest.raises(UserError, match=rf"pid {proc.pid}"):
            begin_stage(out, overwrite=True)
        assert (out / "partial.txt").exists(), "--overwrite of a second command deletes nothing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # a stale lock file from a dead process does not block; --overwrite now wipes the half-written output
    assert (out / lock.LOCK).exists()
    assert begin_stage(out, overwrite=True) is True
    assert not (out / "partial.txt").exists()
    assert lock.holder(out) == str(os.getpid())
    mark_done(out)
    assert not (out / lock.LOCK).exists() and not lock.holds(out), "mark_done releases the lock"


def test_the_lock_is_reentrant_and_released(tmp_path):
    lock.acquire(tmp_path)
    lock.acquire(tmp_path)  # the same process: no-op
    assert lock.holds(tmp_path)
    lock.release(tmp_path)
    assert not lock.holds(tmp_path) and not (tmp_path / lock.LOCK).exists()
    lock.release(tmp_path)  # releasing twice is harmless


def test_a_skipped_or_refused_stage_releases_its_lock(tmp_path):
    out = tmp_path / "stage"
    assert begin_stage(out)
    mark_done(out)
    assert begin_stage(out) is False and not lock.holds(out)
    half = tmp_path / "half"
    half.mkdir()
    (half / "x").write_text("x")
    with pytest.raises(UserError):
        begin_stage(half)
    assert not lock.holds(half)
