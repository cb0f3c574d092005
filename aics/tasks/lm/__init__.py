"""The language-model lab: ``aics lm ...`` and ``recipes/lm/run.sh``."""
