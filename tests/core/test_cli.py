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


NO_TORCH = """
import sys
from aics.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print("TORCH=" + str("torch" in sys.modules), "CODE=" + str(code), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["vae", "train", "--data", "{m}", "--exp", "{t}/e"],
        ["vae", "infer", "--exp", "{t}", "--data", "{m}"],
        ["vae", "score", "--exp", "{t}", "--data", "{m}"],
        ["lm", "train", "--data", "{m}", "--exp", "{t}/e"],
        ["lm", "score", "--exp", "{t}", "--data", "{m}"],
        ["lm", "sample", "--exp", "{t}", "--data", "{m}"],
        ["lm", "sample", "--exp", "{t}"],  # no best.pt in {t}
        ["detect", "train", "--data", "{m}", "--exp", "{t}/e"],
        ["asr", "prepare", "--src", "{m}", "--out", "{t}/e"],
        ["asr", "features", "--data", "{m}", "--out", "{t}/e"],
        ["asr", "train", "--data", "{m}", "--exp", "{t}/e"],
        ["asr", "decode", "--exp", "{t}", "--data", "{m}"],
        ["asr", "ngram", "--data", "{m}", "--out", "{t}/e"],
        ["asr", "judge", "{m}", "--text", "{m}", "--out", "{t}/e"],
    ],
)
def test_a_missing_input_is_reported_before_torch_is_imported(tmp_path, args):
    argv = [a.format(m=tmp_path / "missing", t=tmp_path) for a in args]
    r = subprocess.run([sys.executable, "-c", NO_TORCH, *argv], capture_output=True, text=True)
    assert "TORCH=False CODE=2" in r.stderr, r.stderr
    assert "missing" in r.stderr or "checkpoint not found" in r.stderr, r.stderr
    assert not (tmp_path / "e").exists(), "nothing is created for a refused command"


@pytest.mark.parametrize(
    "args, option",
    [
        (["detect", "val", "--conf-thres", "2"], "--conf-thres"),
        (["detect", "val", "--iou-thres", "-0.1"], "--iou-thres"),
        (["detect", "val", "--batch-size", "0"], "--batch-size"),
        (["detect", "val", "--imgsz", "0"], "--imgsz"),
        (["detect", "predict", "--max-det", "0"], "--max-det"),
        (["detect", "info", "--size", "q"], "--size"),
        (["lm", "sample", "--top-k", "-1"], "--top-k"),
        (["lm", "sample", "--tokens", "-5"], "--tokens"),
        (["lm", "sample", "--temperature", "0"], "--temperature"),
        (["lm", "prepare", "--max-size", "-1"], "--max-size"),
        (["lm", "prepare", "--min-count", "0"], "--min-count"),
        (["vae", "prepare", "--valid-size", "0"], "--valid-size"),
        (["vae", "infer", "--split", "bogus"], "--split"),
    ],
)
def test_out_of_range_options_are_usage_errors(tmp_path, args, option):
    # every other required option is given, so the range is what is refused
    fill = {
        "val": ["--ckpt", __file__, "--data", __file__, "--out", str(tmp_path / "o")],
        "predict": ["--ckpt", __file__, "--out", str(tmp_path / "o")],
        "sample": ["--exp", str(tmp_path)],
        "prepare": ["--src", str(tmp_path), "--out", str(tmp_path / "o")],
        "infer": ["--exp", str(tmp_path), "--data", str(tmp_path)],
        "info": [],
    }[args[1]]
    r = run_aics(*args, *fill)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert option in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_a_task_without_a_command_prints_its_commands():
    r = run_aics("vae")
    assert r.returncode == 0 and "Commands:" in r.stdout and "train" in r.stdout, r.stdout + r.stderr
    assert "error" not in r.stderr


def test_a_planned_task_says_it_is_planned(aics, monkeypatch):
    from aics import cli

    monkeypatch.setattr(cli, "PLANNED", ("holo",))
    line = aics.error("holo", "train")
    assert "'aics holo' is planned but not built yet" in line


@pytest.mark.parametrize("content", [b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"train:\n  lr: 0.1  # caf\xe9\n"])
def test_a_config_that_is_not_utf8_is_one_line(tmp_path, content):
    conf = tmp_path / "conf.yaml"
    conf.write_bytes(content)
    r = run_aics("vae", "config", "--conf", str(conf))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "not a UTF-8 text file" in r.stderr and str(conf) in r.stderr


DISK_FULL = """
import errno, sys
import aics.core.ckpt as ckpt
from aics.cli import main

def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")

ckpt.torch.save = full
main(sys.argv[1:])
"""


def test_a_full_disk_is_one_line_that_says_to_free_space(mnist_prepared, tmp_path):
    exp = tmp_path / "e"
    args = ["vae", "train", "--data", str(mnist_prepared), "--exp", str(exp), "--set", "train.epochs=1"]
    r = subprocess.run([sys.executable, "-c", DISK_FULL, *args], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("aics: error: no space left on the device while writing ")
    assert "free some space and rerun the same command" in last
    assert not list(exp.rglob("*.tmp")), "the temporary file of the failed write is removed"
