import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from aics.tasks.vae.model import VAE, bernoulli_nll, count_parameters, kl_to_standard_normal, reparameterize


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(64, 5, generator=g) * 2, torch.randn(64, 5, generator=g)
    reference = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), reference, rtol=1e-5, atol=1e-5)
    assert torch.all(kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)) == 0)


def test_gradients_reach_mu_and_logvar_but_not_the_noise():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(8, 3, generator=g, requires_grad=True)
    logvar = torch.randn(8, 3, generator=g, requires_grad=True)
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(2))
    eps = (z - mu) / torch.exp(0.5 * logvar)
    eps_drawn = torch.randn(8, 3, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(eps.detach(), eps_drawn)
    z.sum().backward()
    # dz/dmu = 1, dz/dlogvar = 0.5 * sigma * eps: analytic gradients of the reparameterisation
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps_drawn)
    # The graph holds only mu and logvar as leaves: the noise is a constant.
    leaves, stack, seen = set(), [z.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):
            leaves.add(id(fn.variable))
        stack.extend(f for f, _ in fn.next_functions)
    assert leaves == {id(mu), id(logvar)}


def test_bernoulli_nll_is_summed_pixel_bce():
    x = torch.rand(4, 1, 28, 28)
    logits = torch.randn(4, 1, 28, 28)
    expected = torch.stack(
        [F.binary_cross_entropy(torch.sigmoid(logits[i]), x[i], reduction="sum") for i in range(4)]
    )
    torch.testing.assert_close(bernoulli_nll(logits, x), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("zdim", [1, 2, 16])
def test_shapes_and_gradients(arch, zdim):
    model = VAE(zdim, arch=arch, hidden=32, channels=4)
    x = torch.rand(5, 1, 28, 28)
    logits, mu, logvar = model(x)
    assert logits.shape == x.shape and mu.shape == logvar.shape == (5, zdim)
    (bernoulli_nll(logits, x) + kl_to_standard_normal(mu, logvar)).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    counts = count_parameters(model)
    assert counts["total"] == counts["encoder"] + counts["decoder"]


def test_conv_rejects_odd_sizes():
    with pytest.raises(ValueError, match="divisible by 4"):
        VAE(2, arch="conv", image_shape=(1, 30, 30))
