"""The MNIST VAE lab: ``aics vae ...`` and ``recipes/vae/run.sh``."""
