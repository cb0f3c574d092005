"""The ultralytics importer: a pickle built like a real YOLOv5 v7.0 checkpoint imports with the same outputs,
and hostile or foreign files are refused without running anything from them."""

from __future__ import annotations

import copy
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from aics.core.ckpt import load_checkpoint, save_checkpoint
from aics.core.errors import UserError
from aics.tasks.detect.importer import import_ultralytics, load_ultralytics, read_ultralytics
from aics.tasks.detect.model import DetectionModel, build_model, count_parameters

NAMES = ["cat", "dog", "bird"]
FAKE_CLASSES = {"models.yolo": ["DetectionModel", "Detect"],
                "models.common": ["Conv", "Bottleneck", "C3", "SPPF", "Concat"]}  # fmt: skip


@pytest.fixture
def fake_yolov5(monkeypatch):
    """Modules ``models``, ``models.yolo`` and ``models.common`` (removed afterwards) with classes under
    ultralytics' names, so that torch.save writes the globals a real YOLOv5 checkpoint has."""
    classes = {}
    monkeypatch.setitem(sys.modules, "models", types.ModuleType("models"))
    for module_name, class_names in FAKE_CLASSES.items():
        module = types.ModuleType(module_name)
        for name in class_names:
            cls = type(name, (nn.Module,), {"__module__": module_name})
            setattr(module, name, cls)
            classes[name] = cls
        monkeypatch.setitem(sys.modules, module_name, module)
    return classes


def trained_model(seed: int) -> DetectionModel:
    """Size n, 3 classes, with BatchNorm statistics that are not the initial ones."""
    torch.manual_seed(seed)
    model = build_model("n", nc=len(NAMES))
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(2, 3, 64, 64))
        for p in model.parameters():  # move every weight off its initial value
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


def as_ultralytics(model: DetectionModel, classes: dict) -> nn.Module:
    """A copy of ``model`` whose object tree pickles like ultralytics' DetectionModel (v7.0), in half."""
    fake = copy.deepcopy(model)
    shared_act = nn.SiLU(inplace=True)  # v7.0: Conv.default_act, one module shared by every Conv
    for m in fake.modules():
        name = type(m).__name__
        if name in classes:
            m.__class__ = classes[name]
        if name == "Conv":
            m.act = shared_act
        if name == "Detect":  # ultralytics keeps stride as a plain attribute, grids as lists
            m.__dict__["stride"] = m._buffers.pop("stride")
            m._non_persistent_buffers_set.discard("stride")
            del m.__dict__["_grids"]
            m.grid = [torch.empty(0) for _ in range(m.nl)]
            m.anchor_grid = [torch.empty(0) for _ in range(m.nl)]
            m.inplace = True
    for i, layer in enumerate(fake.model):
        layer.i, layer.f, layer.type, layer.np = i, model.froms[i], type(layer).__name__, 0
    description = fake.__dict__.pop("description")
    del fake.__dict__["froms"]
    fake.yaml = {**copy.deepcopy(description), "ch": 3}
    for row in fake.yaml["head"]:
        if row[2] == "nn.Upsample":
            row[3] = ["None", 2, "nearest"]  # YAML reads ultralytics' `None` as a string
    fake.names = dict(enumerate(NAMES))  # v7.0 keeps a dict
    fake.nc = len(NAMES)
    fake.inplace = True
    fake.hyp = {"lr0": 0.01, "anchor_t": 4.0}
    fake.class_weights = torch.ones(len(NAMES))
    fake.stride = fake.model[-1].stride
    fake.yaml_file = "yolov5n.yaml"
    return fake.half()


def save_ultralytics(path: Path, model: nn.Module, ema: nn.Module | None = None) -> Path:
    torch.save({
        "epoch": 5,
        "best_fitness": np.array([0.42]),  # a numpy array, as in a mid-training checkpoint
        "model": model,
        "ema": ema,
        "updates": 120 if ema is not None else None,
        "optimizer": None,
        "opt": {"weights": "yolov5n.pt", "imgsz": 640, "save_dir": Path("runs/train/exp")},
        "git": {"remote": "https://github.com/ultralytics/yolov5", "branch": "master", "commit": "915bbf2"},
        "date": "2024-01-01T00:00:00",
    }, path)  # fmt: skip
    return path


def outputs(model: DetectionModel, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)[0]


def test_import_reproduces_the_models_outputs(tmp_path, fake_yolov5):
    original = trained_model(0)
    src = save_ultralytics(tmp_path / "best.pt", as_ultralytics(original, fake_yolov5))
    summary = import_ultralytics(src, tmp_path / "imported.pt")
    assert summary == {"nc": 3, "names": NAMES, "params": count_parameters(original), "epoch": 5,
                       "skipped": ["best_fitness", "date", "git", "opt"]}  # fmt: skip

    ckpt = load_checkpoint(tmp_path / "imported.pt", task="detect")  # weights_only=True inside
    assert ckpt["source"] == "ultralytics" and ckpt["step"] == 0 and ckpt["epoch"] == -1
    assert ckpt["names"] == NAMES and ckpt["config"] == {} and ckpt["metrics"] == {}
    assert all(v.dtype in (torch.float32, torch.int64) for v in ckpt["model"].values())
    model = DetectionModel(ckpt["description"], names=ckpt["names"])
    model.load_state_dict(ckpt["model"])

    x = torch.rand(2, 3, 96, 128)
    rounded = copy.deepcopy(original).half().float()  # the file holds fp16 weights
    torch.testing.assert_close(outputs(model, x), outputs(rounded, x), rtol=1e-5, atol=1e-4)
    assert (outputs(model, x) - outputs(original, x)).abs().max() < 0.5  # pixels, fp16 rounding only
    torch.testing.assert_close(model.detect.anchors, original.detect.anchors)

    # what val/predict and `train --weights` do with the imported file
    from aics.tasks.detect.infer import load_detector
    from aics.tasks.detect.train import transfer_weights

    detector, names, _ = load_detector(tmp_path / "imported.pt", "cpu")
    assert names == NAMES
    torch.testing.assert_close(outputs(detector, x), outputs(model, x), rtol=1e-4, atol=1e-3)  # fused
    fresh = DetectionModel(ckpt["description"])
    copied, skipped = transfer_weights(fresh, tmp_path / "imported.pt")
    assert skipped == [] and copied == len(fresh.state_dict())


def test_ema_is_preferred_and_read_gives_ultralytics_names(tmp_path, fake_yolov5):
    weights, ema = trained_model(0), trained_model(1)
    src = save_ultralytics(
        tmp_path / "last.pt", as_ultralytics(weights, fake_yolov5), as_ultralytics(ema, fake_yolov5)
    )
    description, state_dict, names = read_ultralytics(src)
    assert names == NAMES and description["nc"] == 3 and description["ch"] == 3
    assert {"model.0.conv.weight", "model.24.anchors", "model.2.m.0.cv1.bn.running_var"} <= set(state_dict)
    assert state_dict.keys() == ema.state_dict().keys()
    assert all(v.dtype != torch.float16 for v in state_dict.values())
    expected = ema.half().float().state_dict()
    assert all(torch.equal(state_dict[k], expected[k]) for k in expected)

    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(outputs(load_ultralytics(src), x), outputs(ema, x), rtol=1e-5, atol=1e-4)


def test_anchors_are_taken_from_the_weights_not_the_stale_yaml(tmp_path, fake_yolov5):
    original = trained_model(0)
    with torch.no_grad():  # what ultralytics' autoanchor does: new anchors in the buffer, yaml untouched
        original.detect.anchors.mul_(1.5)
    description, state_dict, _ = read_ultralytics(
        save_ultralytics(tmp_path / "a.pt", as_ultralytics(original, fake_yolov5))
    )
    assert description["anchors"][0] == [15, 19.5, 24, 45, 49.5, 34.5]
    rebuilt = DetectionModel(description)
    torch.testing.assert_close(rebuilt.detect.anchors, state_dict["model.24.anchors"])


def test_real_classes_named_in_the_file_are_never_called(tmp_path, fake_yolov5, monkeypatch):
    src = save_ultralytics(tmp_path / "best.pt", as_ultralytics(trained_model(0), fake_yolov5))
    marker = tmp_path / "ran"

    def setstate(self, state):
        marker.write_text("the importer ran a class from models.common")

    # Were these classes (or ultralytics' real ones) used, unpickling would call their __setstate__.
    for cls in fake_yolov5.values():
        monkeypatch.setattr(cls, "__setstate__", setstate, raising=False)
    before = set(torch.serialization.get_safe_globals())
    read_ultralytics(src)
    assert not marker.exists()
    assert set(torch.serialization.get_safe_globals()) == before  # stand-ins were allowed for that load only


class Payload:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def hostile_files(tmp_path: Path, marker: Path) -> list[Path]:
    shell = Payload(os.system, f"touch {marker}")
    python = Payload(exec, f"open({str(marker)!r}, 'w').write('pwned')")
    files = []
    for i, payload in enumerate([shell, python]):
        files.append(tmp_path / f"torch-{i}.pt")
        torch.save({"model": payload, "epoch": 1}, files[-1])
        for protocol in (2, pickle.HIGHEST_PROTOCOL):
            files.append(tmp_path / f"raw-{i}-{protocol}.pt")
            files[-1].write_bytes(pickle.dumps({"model": payload}, protocol=protocol))
    # an allowed class name around a hostile value: stand-ins keep state, they do not run it
    files.append(tmp_path / "nested.pt")
    torch.save({"model": {"yaml": shell}}, files[-1])
    return files


def test_hostile_pickles_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    for path in hostile_files(tmp_path, marker):
        with pytest.raises(UserError, match=r"not a YOLOv5 checkpoint") as e:
            read_ultralytics(path)
        assert str(path) in str(e.value)
        assert not marker.exists(), path
    with pytest.raises(UserError, match=r"refuses to load global '(posix|os)\.system'"):
        read_ultralytics(tmp_path / "torch-0.pt")
    with pytest.raises(UserError, match=r"refuses to load global '.*exec'"):
        read_ultralytics(tmp_path / "raw-1-2.pt")


def test_foreign_files_get_a_clear_error(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    state_dict = tmp_path / "weights.pt"
    torch.save(build_model("n", 2).state_dict(), state_dict)
    ours = tmp_path / "aics.pt"
    save_checkpoint(ours, {"format": "aics-ckpt-1", "task": "detect", "model": {}})
    cases = {
        text: "not a YOLOv5 checkpoint",
        state_dict: "no 'model' entry",
        ours: "already an aics checkpoint",
        tmp_path / "missing.pt": "not found",
    }
    for path, message in cases.items():
        with pytest.raises(UserError, match=message):
            import_ultralytics(path, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_a_mismatch_between_yaml_and_weights_is_reported(tmp_path, fake_yolov5):
    fake = as_ultralytics(trained_model(0), fake_yolov5)
    fake.yaml["width_multiple"] = 0.5  # weights of n, yaml of s
    with pytest.raises(UserError, match=r"weights do not match .*shape model\.0\.conv\.weight"):
        import_ultralytics(save_ultralytics(tmp_path / "bad.pt", fake), tmp_path / "out.pt")
    fake.yaml["head"][-1][2] = "Segment"
    with pytest.raises(UserError, match=r"model\.yaml: head\[14\]: unknown module 'Segment'"):
        import_ultralytics(save_ultralytics(tmp_path / "seg.pt", fake), tmp_path / "out.pt")


def test_odd_structures_under_allowed_names_are_reported(tmp_path, fake_yolov5):
    cyclic = fake_yolov5["DetectionModel"]()
    cyclic.yaml = build_model("n", 3).description
    cyclic.model = nn.Sequential()
    cyclic.model.add_module("0", cyclic)  # a module tree that contains itself
    no_yaml = fake_yolov5["DetectionModel"]()
    tensor_ema = {"model": as_ultralytics(trained_model(0), fake_yolov5), "ema": torch.zeros(3)}
    cases = [({"model": cyclic}, "nested too deep"), ({"model": no_yaml}, r"model\.yaml: missing"),
             (tensor_ema, "not a YOLOv5 DetectionModel"), ([1, 2], "holds a list")]  # fmt: skip
    for i, (content, message) in enumerate(cases):
        torch.save(content, tmp_path / f"{i}.pt")
        with pytest.raises(UserError, match=message):
            read_ultralytics(tmp_path / f"{i}.pt")
