"""The aics command: start-up without torch, one-line user errors, exit codes."""

import os
import subprocess
import sys

import pytest

CHECK_IMPORTS = """
import sys
from aics.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in ("torch", "numpy", "matplotlib", "tensorboard") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), "CODE=" + str(code), file=sys.stderr)
"""


def run_aics(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "aics", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["vae", "--help"],
        ["vae", "train", "--help"],
        ["detect", "--help"],
        ["detect", "train", "--help"],
    ],
)
def test_help_and_version_do_not_import_torch(args):
    r = subprocess.run([sys.executable, "-c", CHECK_IMPORTS, *args], capture_output=True, text=True)
    assert "HEAVY= CODE=0" in r.stderr, r.stderr
    assert r.stdout.strip()


def test_help_lists_the_tasks():
    r = run_aics("--help")
    assert r.returncode == 0 and "vae" in r.stdout and "Tasks:" in r.stdout


def test_user_error_is_one_line_with_exit_2(tmp_path):
    r = run_aics("vae", "prepare", "--src", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aics: error: ") and "missing" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_debug_switch_shows_the_traceback(tmp_path):
    r = run_aics("vae", "prepare", "--src", str(tmp_path / "missing"), "--out", "o", env={"AICS_DEBUG": "1"})
    assert r.returncode != 0 and "Traceback" in r.stderr and "UserError" in r.stderr


def test_bad_config_key_names_the_key(tmp_path):
    r = run_aics("vae", "config", "--set", "model.zdims=3")
    assert r.returncode == 2 and "unknown key 'model.zdims' (did you mean 'model.zdim'?)" in r.stderr


@pytest.mark.parametrize(
    "args, expected",
    [(["vae", "train"], "Missing option '--data'"), (["nosuchtask"], "No such command 'nosuchtask'"),
     (["--bogus"], "No such option"),
     (["vae", "infer", "--exp", "/nonexistent", "--data", "d"], "does not exist")],
)  # fmt: skip
def test_usage_errors_are_one_line_with_exit_2(args, expected):
    r = run_aics(*args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("aics: error: "), r.stderr
    assert expected in r.stderr


def test_file_system_errors_are_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    r = run_aics(
        "vae", "synth", "--out", str(tmp_path / "afile" / "sub"), "--n-train", "10", "--n-test", "10"
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "afile" in r.stderr, r.stderr


def test_detect_bad_dataset_yaml_is_one_line(tmp_path):
    bad = tmp_path / "data.yaml"
    bad.write_text("path: .\ntrain: images/train\nval: images/val\n")
    r = run_aics("detect", "train", "--data", str(bad), "--exp", str(tmp_path / "exp"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and str(bad) in r.stderr, r.stderr
