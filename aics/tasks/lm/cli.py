"""``aics lm``: commands of the language-model lab (thin wrappers; the work is in the task's modules)."""

from __future__ import annotations

import click

from aics.core.options import (
    conf_option,
    config_command,
    device_option,
    overwrite_option,
    report_command,
    set_option,
    with_device,
)


@click.group("lm")
def cli() -> None:
    """Language models (FFN, RNN, GRU, LSTM, Transformer): synth/prepare, train, sample, score, report."""


@cli.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the corpus.")
@click.option("--train-tokens", default=1_000_000, show_default=True, type=click.IntRange(min=100),
              help="Training tokens.")  # fmt: skip
@click.option("--valid-tokens", default=80_000, show_default=True, type=click.IntRange(min=10),
              help="Validation tokens.")  # fmt: skip
@click.option("--test-tokens", default=80_000, show_default=True, type=click.IntRange(min=10),
              help="Test tokens.")  # fmt: skip
@click.option("--vocab-size", default=3000, show_default=True, type=click.IntRange(min=10),
              help="Word types of the source.")  # fmt: skip
@click.option("--states", default=40, show_default=True, type=click.IntRange(min=1),
              help="Hidden states of the source.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of the source and the samples.")  # fmt: skip
def synth(out, train_tokens, valid_tokens, test_tokens, vocab_size, states, seed) -> None:
    """Write an offline corpus (PTB layout) from a random HMM, with its exact perplexity floor."""
    from aics.tasks.lm.synth import generate

    sizes = {"train_tokens": train_tokens, "valid_tokens": valid_tokens, "test_tokens": test_tokens}
    info = generate(out, **sizes, vocab_size=vocab_size, states=states, seed=seed)
    click.echo(f"wrote {out}: floor test perplexity {info['test']['ppl']:.2f}")


@cli.command()
@click.option("--src", required=True, type=click.Path(), help="Corpus directory.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Prepared data directory.")
@click.option("--format", "fmt", type=click.Choice(["ptb", "raw"]), default="ptb", show_default=True,
              help="ptb: train.txt/valid.txt/test.txt; raw: WikiText-style wiki.*.tokens.")  # fmt: skip
@click.option("--min-count", default=1, show_default=True, type=click.IntRange(min=1),
              help="Words seen fewer times in train become <unk>.")  # fmt: skip
@click.option("--max-size", default=0, show_default=True, type=click.IntRange(min=0),
              help="Keep at most this many types, <eos> and <unk> included (0: no limit).")  # fmt: skip
@overwrite_option
def prepare(src: str, out: str, fmt: str, min_count: int, max_size: int, overwrite: bool) -> None:
    """Validate a corpus, build the vocabulary from train and encode the splits."""
    from aics.tasks.lm.data import prepare as run

    stats = run(src, out, fmt=fmt, min_count=min_count, max_size=max_size, overwrite=overwrite)
    sizes = ", ".join(f"{s} {v['tokens']:,}" for s, v in stats["splits"].items())
    click.echo(f"prepared {out}: vocabulary {stats['vocab_size']:,}; tokens: {sizes}")


@cli.command()
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option("--exp", required=True, type=click.Path(file_okay=False), help="Experiment directory.")
@conf_option
@set_option
@device_option
@click.option("--max-params", type=click.IntRange(min=1),
              help="Refuse a model with more parameters (train.max_params, 60M).")  # fmt: skip
@overwrite_option
def train(data, exp, conf, overrides, device, max_params, overwrite) -> None:
    """Train an LM (resumes from EXP/ckpt/last.pt; runs under torchrun for several processes)."""
    from aics.core.config import load_config
    from aics.tasks.lm.config import LMConfig
    from aics.tasks.lm.data import check_prepared

    overrides = with_device(overrides, device) + ((f"train.max_params={max_params}",) if max_params else ())
    cfg = load_config(LMConfig, conf, overrides)
    check_prepared(data)  # before torch is imported: a wrong path fails at once
    from aics.tasks.lm.train import train as run

    run(cfg, data, exp, overwrite=overwrite)


@cli.command()
@click.option("--exp", required=True, type=click.Path(exists=True, file_okay=False), help="Experiment dir.")
@click.option("--data", type=click.Path(), help="Prepared data (for the vocabulary); default: from config.")
@click.option("--ckpt", default="best", show_default=True, help="best, last, epoch-NNN or a path.")
@click.option("--prompt", default="", help="Words to continue.")
@click.option(
    "--tokens", default=50, show_default=True, type=click.IntRange(min=1), help="Tokens to generate."
)
@click.option("--temperature", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Softmax temperature.")  # fmt: skip
@click.option("--top-k", default=0, show_default=True, type=click.IntRange(min=0),
              help="Sample among the k likeliest (0: all).")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Sampling seed.")
@device_option
def sample(exp, data, ckpt, prompt, tokens, temperature, top_k, seed, device) -> None:
    """Generate text from a checkpoint."""
    from aics.core.paths import existing_checkpoint
    from aics.tasks.lm.data import check_prepared

    if data:
        check_prepared(data)
    existing_checkpoint(exp, ckpt)
    from aics.tasks.lm.infer import load_trained, trained_vocab
    from aics.tasks.lm.infer import sample as run

    model, _, ck = load_trained(exp, ckpt, device or "auto")
    vocab = trained_vocab(ck, data, exp)
    click.echo(run(model, vocab, prompt, tokens, temperature, top_k, seed, getattr(model, "max_len", 256)))


@cli.command()
@click.option("--exp", required=True, type=click.Path(exists=True, file_okay=False), help="Experiment dir.")
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option("--ckpt", default="best", show_default=True, help="best, last, epoch-NNN or a path.")
@device_option
def score(exp: str, data: str, ckpt: str, device: str | None) -> None:
    """Valid/test perplexity (against the floor) -> EXP/scores.json and EXP/RESULTS.md."""
    from aics.core.paths import existing_checkpoint
    from aics.tasks.lm.data import check_prepared

    check_prepared(data)
    existing_checkpoint(exp, ckpt)
    from aics.tasks.lm.infer import score as run

    s = run(exp, data, ckpt, device or "auto")
    floor = f" (floor {s['floor_test_ppl']:.2f})" if "floor_test_ppl" in s else ""
    click.echo(f"{exp}: valid PPL {s['valid']['ppl']:.2f}, test PPL {s['test']['ppl']:.2f}{floor}")


cli.add_command(
    report_command(
        "aics.tasks.lm.infer:report",
        "Compare scored experiments: model, parameters, valid/test/floor PPL, tokens/s, epochs.",
    )
)
cli.add_command(config_command("aics.tasks.lm.config:LMConfig"))
