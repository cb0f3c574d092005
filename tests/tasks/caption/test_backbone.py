"""The ResNet trunks for user-supplied ImageNet weights (aics.tasks.caption.backbone): torchvision's layout
(names, shapes, parameter counts), the forward pass against a functional reading of the same state dict,
safe loading and one-line refusals, and a frozen encoder under training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aics.core.errors import UserError
from aics.tasks.caption.backbone import DEPTHS, ResNetTrunk, load_trunk_weights

# torchvision's published parameter counts of its ImageNet classifiers (trunk + 1000-way fc)
TORCHVISION_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
                      "resnet101": 44_549_160, "resnet152": 60_192_808}  # fmt: skip


@pytest.mark.parametrize("name", list(DEPTHS))
def test_parameter_counts_equal_torchvisions(name):
    trunk = ResNetTrunk(name)
    n = sum(p.numel() for p in trunk.parameters()) + trunk.out_channels * 1000 + 1000
    assert n == TORCHVISION_PARAMS[name]


def test_key_names_follow_torchvision():
    keys = set(ResNetTrunk("resnet50").state_dict())
    for k in ("conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer1.0.conv3.weight",
              "layer4.2.bn3.num_batches_tracked", "layer3.5.conv2.weight"):  # fmt: skip
        assert k in keys, k
    assert "layer1.0.downsample.0.weight" not in ResNetTrunk("resnet18").state_dict()  # 64 -> 64: identity


def reference_forward(sd: dict, x: torch.Tensor, name: str) -> torch.Tensor:
    """torchvision's ResNet (v1.5: a Bottleneck's stride on its 3x3 conv) read off a state dict, eval mode."""

    def bn(x, p):
        mean, var = sd[p + ".running_mean"], sd[p + ".running_var"]
        return F.batch_norm(x, mean, var, sd[p + ".weight"], sd[p + ".bias"], False, 0.0, 1e-5)

    kind, counts = DEPTHS[name]
    x = F.max_pool2d(F.relu(bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), "bn1")), 3, 2, 1)
    for stage, n in enumerate(counts, 1):
        for j in range(n):
            p = f"layer{stage}.{j}"
            stride = 2 if (j == 0 and stage > 1) else 1
            if kind == "basic":
                y = F.relu(bn(F.conv2d(x, sd[p + ".conv1.weight"], stride=stride, padding=1), p + ".bn1"))
                y = bn(F.conv2d(y, sd[p + ".conv2.weight"], padding=1), p + ".bn2")
            else:
                y = F.relu(bn(F.conv2d(x, sd[p + ".conv1.weight"]), p + ".bn1"))
                y = F.relu(bn(F.conv2d(y, sd[p + ".conv2.weight"], stride=stride, padding=1), p + ".bn2"))
                y = bn(F.conv2d(y, sd[p + ".conv3.weight"]), p + ".bn3")
            if p + ".downsample.0.weight" in sd:
                x = bn(F.conv2d(x, sd[p + ".downsample.0.weight"], stride=stride), p + ".downsample.1")
            x = F.relu(y + x)
    return x


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_forward_equals_a_functional_reading_of_the_weights(name):
    torch.manual_seed(0)
    trunk = ResNetTrunk(name)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in trunk.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.0)
                m.bias.uniform_(-0.1, 0.1)
    trunk.eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        out = trunk(x)
        ref = reference_forward(trunk.state_dict(), x, name)
    assert out.shape == (2, trunk.out_channels, 3, 3)
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4)


def test_torchvision_state_dicts_load_and_wrong_ones_are_one_line(tmp_path):
    torch.manual_seed(1)
    src = ResNetTrunk("resnet18")
    sd = {f"module.{k}": v for k, v in src.state_dict().items()}
    sd["module.fc.weight"], sd["module.fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    torch.save({"state_dict": sd}, tmp_path / "r18.pth")
    dst = ResNetTrunk("resnet18")
    load_trunk_weights(dst, tmp_path / "r18.pth", "resnet18")
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k
    from safetensors.torch import save_file

    save_file(src.state_dict(), str(tmp_path / "r18.safetensors"))
    load_trunk_weights(ResNetTrunk("resnet18"), tmp_path / "r18.safetensors", "resnet18")
    with pytest.raises(UserError, match=r"not a torchvision resnet50 state dict .*missing"):
        load_trunk_weights(ResNetTrunk("resnet50"), tmp_path / "r18.pth", "resnet50")
    torch.save(ResNetTrunk("resnet18"), tmp_path / "module.pth")  # a pickled module: code, refused
    with pytest.raises(UserError, match="loads safely"):
        load_trunk_weights(ResNetTrunk("resnet18"), tmp_path / "module.pth", "resnet18")
