from dataclasses import dataclass

import pytest
import yaml

from aics.core.config import (
    diff_keys,
    from_dict,
    load_config,
    option,
    section,
    to_dict,
    to_yaml,
)
from aics.core.errors import UserError


@dataclass
class Inner:
    lr: float = option(0.1, help="learning rate")
    steps: int = option(10, help="steps")
    name: str = option("adam", help="optimizer", choices=("adam", "sgd"))
    tag: str = option("x", help="free text")
    layers: list[int] = option([1, 2], help="sizes")
    flag: bool = option(False, help="a switch")
    maybe: int | None = option(None, help="optional")


@dataclass
class Outer:
    inner: Inner = section(Inner, help="inner section")
    seed: int = option(0, help="seed")


def write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_then_yaml_then_set(tmp_path):
    a = write(tmp_path, "inner:\n  lr: 0.5\n  steps: 3\nseed: 1\n", "a.yaml")
    b = write(tmp_path, "inner:\n  steps: 4\n", "b.yaml")
    cfg = load_config(
        Outer, [a, b], ["inner.lr=2", "inner.layers=[3, 4]", "inner.flag=true", "inner.maybe=7"]
    )
    assert cfg.inner.lr == 2.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.steps == 4 and cfg.seed == 1
    assert cfg.inner.layers == [3, 4] and cfg.inner.flag is True and cfg.inner.maybe == 7
    assert Outer().inner.layers == [1, 2], "defaults must not be shared between instances"


def test_unknown_key_in_yaml_names_file_and_key(tmp_path):
    p = write(tmp_path, "inner:\n  lrr: 0.5\n")
    with pytest.raises(UserError, match=r"c\.yaml: unknown key 'inner\.lrr' \(did you mean 'inner\.lr'\?\)"):
        load_config(Outer, [p])


def test_unknown_key_in_set():
    with pytest.raises(UserError, match=r"--set inner\.stepz=3: unknown key 'inner\.stepz'"):
        load_config(Outer, [], ["inner.stepz=3"])
    with pytest.raises(UserError, match="unknown key 'nope.x'"):
        load_config(Outer, [], ["nope.x=3"])


@pytest.mark.parametrize(
    "override, key",
    [("inner.steps=1.5", "inner.steps"), ("inner.steps=abc", "inner.steps"), ("inner.flag=3", "inner.flag"),
     ("inner.lr=fast", "inner.lr"), ("inner.layers=[a]", "inner.layers"), ("seed=true", "seed")],
)  # fmt: skip
def test_wrong_types_are_rejected_with_the_key(override, key):
    with pytest.raises(UserError, match=f"'{key}' must be"):
        load_config(Outer, [], [override])


def test_wrong_type_in_yaml_and_section_misuse(tmp_path):
    with pytest.raises(UserError, match=r"c\.yaml: 'inner\.steps' must be int, got 'ten'"):
        load_config(Outer, [write(tmp_path, "inner:\n  steps: ten\n")])
    with pytest.raises(UserError, match="'inner' is a section"):
        load_config(Outer, [write(tmp_path, "inner: 3\n")])


def test_choices_and_strings():
    with pytest.raises(UserError, match="must be one of adam, sgd"):
        load_config(Outer, [], ["inner.name=rmsprop"])
    cfg = load_config(Outer, [], ["inner.tag=123", "inner.maybe=null"])
    assert cfg.inner.tag == "123", "a string field keeps the raw text of --set"
    assert cfg.inner.maybe is None


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"c\.yaml:\d+: invalid YAML"):
        load_config(Outer, [write(tmp_path, "inner:\n  lr: [1\n")])
    with pytest.raises(UserError, match="config file not found"):
        load_config(Outer, [tmp_path / "missing.yaml"])
    with pytest.raises(UserError, match="must be a mapping"):
        load_config(Outer, [write(tmp_path, "- 1\n- 2\n")])


def test_round_trips_and_diff():
    cfg = load_config(Outer, [], ["inner.lr=0.25", "seed=5"])
    d = to_dict(cfg)
    assert from_dict(Outer, d) == cfg
    assert yaml.safe_load(to_yaml(cfg)) == d
    assert yaml.safe_load(to_yaml(cfg, comments=True)) == d, (
        "the commented YAML must parse to the same config"
    )
    assert "# learning rate" in to_yaml(cfg, comments=True)
    assert diff_keys(d, to_dict(Outer())) == ["inner.lr", "seed"]
