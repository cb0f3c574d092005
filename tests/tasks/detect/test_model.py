"""YOLOv5 model: published sizes, output shapes and decoding, fusing, state_dict names, descriptions."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import yaml
from torch import nn

from aics.core.errors import UserError
from aics.tasks.detect.model import (
    ANCHORS,
    Conv,
    DetectionModel,
    build_model,
    count_parameters,
    fuse,
    gflops,
    load_description,
    model_description,
)

# ultralytics YOLOv5 v7.0, nc=80: parameters of the fused model (its detect.py summary), of the model as
# built for training (BN weight and bias instead of a conv bias: one more parameter per BN channel), and
# the README table (params in millions, GFLOPs at 640).
FUSED = {"n": 1_867_405, "s": 7_225_885, "m": 21_172_173, "l": 46_533_693, "x": 86_705_005}
TRAINING = {"n": 1_872_157, "s": 7_235_389, "m": 21_190_557, "l": 46_563_709, "x": 86_749_405}
PUBLISHED = {"n": (1.9, 4.5), "s": (7.2, 16.5), "m": (21.2, 49.0), "l": (46.5, 109.1), "x": (86.7, 205.7)}


def with_statistics(model: DetectionModel, seed: int = 0) -> DetectionModel:
    """Give every BatchNorm running statistics and affine parameters away from their initial values."""
    torch.manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(2, 3, 64, 64))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("size", list(FUSED))
def test_parameters_and_gflops_match_yolov5(size):
    model = build_model(size, nc=80)
    assert count_parameters(model) == TRAINING[size]
    # GFLOPs of a conv net scale exactly with the image area (checked below), so 64x64 stands for 640x640
    flops = 100 * gflops(model, 64)
    model.fuse()
    assert count_parameters(model) == FUSED[size]
    params_m, published_gflops = PUBLISHED[size]
    assert round(FUSED[size] / 1e6, 1) == params_m
    assert round(flops, 1) == published_gflops
    assert 100 * gflops(model, 64) == pytest.approx(flops, rel=1e-12)  # fusing keeps the count


def test_gflops_hand_computed_and_scaling():
    # 3x3 stride-2 conv 3 -> 8 on 32x32: 16*16*8 outputs of 27 MACs, plus the BN's 1 per element
    block = Conv(3, 8, 3, 2)
    assert gflops(block, 32) == pytest.approx(2 * 16 * 16 * 8 * (27 + 1) / 1e9)
    model = build_model("n", nc=80)
    assert gflops(model, 640) == pytest.approx(100 * gflops(model, 64), rel=1e-12)
    assert gflops(model, (320, 256)) == pytest.approx(gflops(model, 640) * 320 * 256 / 640**2, rel=1e-12)
    assert model.training  # the mode is restored


def test_output_shapes_strides_and_anchor_units():
    torch.manual_seed(0)
    model = build_model("n", nc=80)
    assert model.stride.tolist() == [8.0, 16.0, 32.0]
    assert model.nc == 80 and model.names == [str(i) for i in range(80)] and model.detect is model.model[24]
    pixels = model.detect.anchors * model.stride.view(-1, 1, 1)
    assert torch.equal(pixels, torch.tensor(ANCHORS, dtype=torch.float32).view(3, 3, 2))
    assert model.detect.anchors[0, 0].tolist() == [10 / 8, 13 / 8]  # grid units of P3

    x = torch.rand(1, 3, 320, 256)
    model.train()
    raw = model(x)
    assert [tuple(r.shape) for r in raw] == [(1, 3, 40, 32, 85), (1, 3, 20, 16, 85), (1, 3, 10, 8, 85)]
    model.eval()
    with torch.no_grad():
        pred, raw_eval = model(x)
    assert pred.shape == (1, 3 * (40 * 32 + 20 * 16 + 10 * 8), 85)
    assert [r.shape for r in raw_eval] == [r.shape for r in raw]


def test_building_has_no_side_effect_on_batchnorm():
    model = build_model("n", nc=3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert (m.eps, m.momentum) == (1e-3, 0.03)
            assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
            assert torch.equal(m.running_var, torch.ones_like(m.running_var))
            assert m.num_batches_tracked.item() == 0
        if isinstance(m, nn.SiLU):
            assert m.inplace


def test_decoding_by_hand():
    model = build_model("n", nc=2).eval()
    detect = model.detect
    with torch.no_grad():
        for conv in detect.m:
            conv.weight.zero_()
            conv.bias.zero_()  # every raw output 0: sigmoid 0.5
    with torch.no_grad():
        pred, raw = model(torch.rand(1, 3, 64, 96))
    # level 1 (stride 16, 4 x 6 cells), anchor 2, cell y=3, x=5
    ny, nx = 4, 6
    offset = 3 * 8 * 12
    row = pred[0, offset + 2 * ny * nx + 3 * nx + 5]
    # xy = (2 * 0.5 - 0.5 + cell) * stride: the cell centre; wh = (2 * 0.5)^2 * anchor: the anchor
    assert row.tolist() == [(5 + 0.5) * 16, (3 + 0.5) * 16, 59, 119, 0.5, 0.5, 0.5]

    model = with_statistics(build_model("n", nc=2))
    with torch.no_grad():
        pred, raw = model(torch.rand(2, 3, 64, 96))
    s = raw[2].sigmoid()  # (B, na, ny, nx, no) at stride 32
    ys, xs = torch.meshgrid(torch.arange(2.0), torch.arange(3.0), indexing="ij")
    cx = (s[..., 0] * 2 - 0.5 + xs) * 32
    h = (s[..., 3] * 2) ** 2 * torch.tensor([90.0, 198.0, 326.0]).view(1, 3, 1, 1)
    start = 3 * (8 * 12 + 4 * 6)
    torch.testing.assert_close(pred[:, start:, 0], cx.reshape(2, -1))
    torch.testing.assert_close(pred[:, start:, 3], h.reshape(2, -1))
    torch.testing.assert_close(pred[:, start:, 4:], s[..., 4:].reshape(2, -1, 3))


def test_new_anchors_are_used_after_load_state_dict():
    model = build_model("n", nc=2).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)[0]
        state = model.state_dict()
        state["model.24.anchors"] = state["model.24.anchors"] * 2
        model.load_state_dict(state)
        after = model(x)[0]
    torch.testing.assert_close(after[..., 2:4], 2 * before[..., 2:4])
    torch.testing.assert_close(after[..., :2], before[..., :2])


def test_biases_start_at_the_priors():
    model = build_model("s", nc=80)
    detect = model.detect
    for conv, s in zip(detect.m, detect.stride, strict=True):
        b = conv.bias.detach().view(3, 85)
        bound = 1 / math.sqrt(conv.in_channels)  # torch's default bias init is U(-bound, bound)
        assert (b[:, 4] - math.log(8 / (640 / s.item()) ** 2)).abs().max() <= bound
        assert (b[:, 5:] - math.log(0.6 / (80 - 0.99999))).abs().max() <= bound
        assert b[:, :4].abs().max() <= bound


def test_fused_equals_unfused_and_gradients_flow():
    model = with_statistics(build_model("n", nc=3))
    x = torch.rand(2, 3, 96, 64)
    with torch.no_grad():
        pred, raw = model(x)
        fused = fuse(copy.deepcopy(model))
        fused_pred, fused_raw = fused(x)
    assert not any(".bn." in k for k in fused.state_dict()) and "model.0.conv.bias" in fused.state_dict()
    assert (fused_pred - pred).abs().max() <= 1e-4 * pred.abs().max()
    for a, b in zip(fused_raw, raw, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)

    model.train()
    sum(r.square().mean() for r in model(x)).backward()  # in-place SiLU must not break autograd
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_state_dict_names_are_ultralytics():
    state = build_model("n", nc=80).state_dict()
    for key in ["model.0.conv.weight", "model.0.bn.running_mean", "model.2.cv1.conv.weight",
                "model.2.m.0.cv1.bn.weight", "model.9.cv2.conv.weight", "model.24.m.0.weight",
                "model.24.m.2.bias", "model.24.anchors"]:  # fmt: skip
        assert key in state
    assert state["model.24.anchors"].shape == (3, 3, 2)
    assert state["model.24.m.0.weight"].shape == (255, 64, 1, 1)
    assert not any("stride" in k or k.startswith("detect.") for k in state)
    assert len(state) == 349


def test_descriptions_and_yaml_files(tmp_path):
    d = model_description("s", nc=7)
    assert (d["depth_multiple"], d["width_multiple"], d["nc"]) == (0.33, 0.5, 7)
    assert d["head"][-1] == [[17, 20, 23], 1, "Detect", ["nc", "anchors"]]
    path = tmp_path / "yolo.yaml"
    path.write_text(yaml.safe_dump(d))
    assert load_description(path) == d
    from_yaml, from_size = build_model(path, nc=7), build_model("yolov5s", nc=7)
    assert {k: v.shape for k, v in from_yaml.state_dict().items()} == {
        k: v.shape for k, v in from_size.state_dict().items()
    }
    assert DetectionModel(d, names=list("abcdefg")).names == list("abcdefg")
    custom = build_model("n", nc=1, anchors=[[4, 5, 8, 10], [16, 20, 32, 40], [64, 80, 128, 160]])
    assert custom.detect.anchors.shape == (3, 2, 2) and custom.detect.m[0].out_channels == 2 * 6


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("anchors"), r"missing key\(s\) anchors"),
        (lambda d: d["head"][3].__setitem__(2, "C2f"), r"head\[3\]: unknown module 'C2f'"),
        (lambda d: d["head"][2].__setitem__(0, [-1, 30]), r"head\[2\]: 'from' index 30"),
        (lambda d: d["backbone"][0].__setitem__(0, 0), r"backbone\[0\]: 'from' index 0"),
        (lambda d: d["backbone"][2].__setitem__(1, 0), r"backbone\[2\]: repeats"),
        (lambda d: d["head"].pop(), r"head\[13\]: the last row"),
        (lambda d: d.__setitem__("anchors", [[10, 13, 16]] * 3), r"anchors: must be"),
        (lambda d: d["head"][-1].__setitem__(3, [80, "anchors"]), r"head\[14\]: Detect args must be"),
        (
            lambda d: d["backbone"][1].__setitem__(3, [128, 3, "two"]),
            r"backbone\[1\]: Conv args must be numbers",
        ),
    ],
)
def test_malformed_descriptions_name_the_file_and_key(tmp_path, edit, message):
    d = model_description("n")
    edit(d)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(UserError, match=rf"bad\.yaml: {message}"):
        build_model(path, nc=3)


def test_unusable_sources():
    with pytest.raises(UserError, match="unknown YOLOv5 model 'q'"):
        build_model("q", nc=3)
    with pytest.raises(UserError, match="not found"):
        load_description("missing.yaml")
