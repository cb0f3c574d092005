import subprocess
from pathlib import Path

PARSER = Path(__file__).resolve().parents[2] / "recipes" / "utils" / "parse_options.sh"
SCRIPT = f"""
stage=0; stop_stage=4; zdims="1 2"; overwrite=false; n_train=10
help_message="usage: test"
. {PARSER}
echo "$stage|$stop_stage|$zdims|$overwrite|$n_train|$*"
"""


def run(*args):
    return subprocess.run(["bash", "-c", SCRIPT, "run.sh", *args], capture_output=True, text=True)


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
