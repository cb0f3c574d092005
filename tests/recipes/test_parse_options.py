import subprocess
import sys
from pathlib import Path

PARSER = Path(__file__).resolve().parents[2] / "recipes" / "utils" / "parse_options.sh"
SCRIPT = f"""
stage=0; stop_stage=4; zdims="1 2"; overwrite=false; n_train=10
help_message="usage: test"
. {PARSER}
echo "$stage|$stop_stage|$zdims|$overwrite|$n_train|$*"
"""


def run(*args, cwd=None):
    return subprocess.run(["bash", "-c", SCRIPT, "run.sh", *args], capture_output=True, text=True, cwd=cwd)


def test_defaults_values_and_flags():
    assert run().stdout.strip() == "0|4|1 2|false|10|"
    r = run("--stage", "2", "--stop-stage=3", "--zdims", "1 2 8", "--overwrite", "--n-train", "5", "pos")
    assert r.stdout.strip() == "2|3|1 2 8|true|5|pos"
    assert run("--overwrite", "false").stdout.strip() == "0|4|1 2|false|10|"


def test_errors_exit_2():
    r = run("--nope", "1")
    assert r.returncode == 2 and "unknown option --nope" in r.stderr
    r = run("--stage")
    assert r.returncode == 2 and "needs a value" in r.stderr
    r = run("--overwrite", "maybe")
    assert r.returncode == 2 and "takes true or false" in r.stderr
    assert run("--help").stdout.strip() == "usage: test"


def test_an_option_name_is_never_evaluated(tmp_path):
    for name in ("--x}$(touch pwned)${y", "--$(touch pwned)", "--a[$(touch pwned)]", "--x`touch pwned`"):
        r = run(name, "1", cwd=tmp_path)
        assert r.returncode == 2 and "unknown option" in r.stderr, r.stderr
        r = run(name, cwd=tmp_path)  # without a value: the flag check looked the name up with eval
        assert r.returncode == 2, r.stderr
    assert not (tmp_path / "pwned").exists()


LIB = Path(__file__).resolve().parents[2] / "recipes" / "utils" / "lib.sh"


def test_a_stage_hint_names_the_recipe_stage(tmp_path):
    script = f"""
. {LIB}
stage=1; stop_stage=3
run_stage 0 || echo "skip 0"
run_stage 2 && {sys.executable} -c 'from aics.core.stage import overwrite_hint; print(overwrite_hint())'
"""
    r = subprocess.run(["bash", "-c", script, "recipes/x/run.sh"], capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "skip 0"
    assert lines[1] == (
        "rerun `bash recipes/x/run.sh` with your options plus `--stage 2 --stop-stage 2 --overwrite true`"
    ), r.stdout + r.stderr
