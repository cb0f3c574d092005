"""``aics squad``: commands of the SQuAD lab (thin wrappers; the work is in the task's modules)."""

from __future__ import annotations

from pathlib import Path

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

SOURCE_FILE = click.Path(dir_okay=False)


@click.group("squad")
def cli() -> None:
    """BERT question answering on SQuAD v1.1: data, import, train, distill, predict, eval, export."""


@cli.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the json files.")
@click.option("--train-paragraphs", default=300, show_default=True, type=click.IntRange(min=1),
              help="Training paragraphs.")  # fmt: skip
@click.option("--dev-paragraphs", default=60, show_default=True, type=click.IntRange(min=1),
              help="Dev paragraphs.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Generator seed.")
def synth(out: str, train_paragraphs: int, dev_paragraphs: int, seed: int) -> None:
    """Write offline SQuAD v1.1 files (train-v1.1.json, dev-v1.1.json) about invented entities."""
    from aics.tasks.squad.synth import generate

    info = generate(out, train_paragraphs=train_paragraphs, dev_paragraphs=dev_paragraphs, seed=seed)
    click.echo(f"wrote {out}: {info}")


@cli.command()
@click.option("--data", required=True, type=SOURCE_FILE, help="A SQuAD v1.1 json (e.g. dev-v1.1.json).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the predictions.")
def baseline(data: str, out: str) -> None:
    """Score the lexical-overlap baseline (no learning) on a SQuAD file: the floor a model must clear."""
    from aics.tasks.squad.infer import lexical_baseline

    s = lexical_baseline(data, out)
    click.echo(f"lexical baseline on {data}: EM {s['exact_match']:.2f}, F1 {s['f1']:.2f}")


@cli.command("import")
@click.argument("src", type=click.Path(file_okay=False))
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Directory for the imported model."
)
@overwrite_option
def import_(src: str, out: str, overwrite: bool) -> None:
    """Check and convert a Hugging Face BERT dir (config.json, model.safetensors or pytorch_model.bin, vocab).

    No code from the files is run. Pooler and pre-training heads are dropped; qa_outputs is kept when present.
    """
    if not Path(src).is_dir():
        raise click.BadParameter(f"{src}: no such directory", param_hint="SRC")
    from aics.tasks.squad.importer import import_hf

    info = import_hf(src, out, overwrite=overwrite)
    for note in info.get("notes", []):
        click.echo(f"import: {note}")
    click.echo(f"imported {src} -> {out} ({info.get('parameters', 0):,} parameters)")


@cli.command()
@click.option(
    "--src", required=True, type=click.Path(), help="Directory with train-v1.1.json and dev-v1.1.json."
)
@click.option("--tokenizer", "tokenizer_dir", required=True, type=click.Path(),
              help="Model dir whose tokenizer.json or vocab.txt to use (the one you train).")  # fmt: skip
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Prepared data directory.")
@click.option("--max-seq-length", default=384, show_default=True, type=click.IntRange(min=16),
              help="Word pieces per window: [CLS] question [SEP] context [SEP].")  # fmt: skip
@click.option("--doc-stride", default=128, show_default=True, type=click.IntRange(min=1),
              help="Context pieces between the starts of neighbouring windows.")  # fmt: skip
@click.option("--max-query-length", default=64, show_default=True, type=click.IntRange(min=1),
              help="Questions are cut to this many word pieces.")  # fmt: skip
@click.option("--skip-bad", is_flag=True, help="Drop questions whose answers do not match the context.")
@overwrite_option
def prepare(
    src, tokenizer_dir, out, max_seq_length, doc_stride, max_query_length, skip_bad, overwrite
) -> None:
    """Validate the json files and cut every question into the windows BERT reads."""
    from aics.tasks.squad.data import prepare as run

    stats = run(src, tokenizer_dir, out, max_seq_length, doc_stride, max_query_length, skip_bad, overwrite)
    for split, s in stats["splits"].items():
        dropped = f", {s['dropped']} bad dropped" if s["dropped"] else ""
        click.echo(f"{split}: {s['questions']:,} questions, {s['windows']:,} windows{dropped}")


def _train(data, exp, conf, overrides, device, overwrite, extra=()) -> None:
    from aics.core.config import load_config
    from aics.tasks.squad.config import SquadConfig
    from aics.tasks.squad.data import check_prepared

    cfg = load_config(SquadConfig, conf, with_device(overrides, device) + tuple(extra))
    check_prepared(data)  # before torch is imported: a wrong path fails at once
    for key, value in (("model.init", cfg.model.init), ("distill.teacher", cfg.distill.teacher)):
        if value and not Path(value).exists():
            raise click.BadParameter(f"{key}={value}: no such file or directory")
    from aics.tasks.squad.train import train as run

    run(cfg, data, exp, overwrite=overwrite)


@cli.command()
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option("--exp", required=True, type=click.Path(file_okay=False), help="Experiment directory.")
@click.option("--init", type=click.Path(), help="Pretrained BERT dir (sets model.init); none: random init.")
@conf_option
@set_option
@device_option
@overwrite_option
def train(data, exp, init, conf, overrides, device, overwrite) -> None:
    """Fine-tune for SQuAD (resumes from EXP/ckpt/last.pt; runs under torchrun for several processes)."""
    _train(data, exp, conf, overrides, device, overwrite, (f"model.init={init}",) if init else ())


@cli.command()
@click.option(
    "--teacher", required=True, type=click.Path(), help="Fine-tuned teacher: experiment dir or .pt."
)
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option(
    "--exp", required=True, type=click.Path(file_okay=False), help="Experiment directory (the student)."
)
@click.option("--layers", type=click.IntRange(min=1), help="Student layers (sets model.layers).")
@conf_option
@set_option
@device_option
@overwrite_option
def distill(teacher, data, exp, layers, conf, overrides, device, overwrite) -> None:
    """Train a smaller student on the teacher's soft start/end distributions plus the gold spans."""
    from aics.core.paths import resolve_checkpoint as resolve_ckpt

    resolve_ckpt(teacher)
    extra = (f"distill.teacher={teacher}",) + ((f"model.layers={layers}",) if layers else ())
    _train(data, exp, conf, overrides, device, overwrite, extra)


@cli.command()
@click.option("--ckpt", required=True, type=click.Path(), help="Experiment dir (its best.pt) or a .pt file.")
@click.option("--data", required=True, type=SOURCE_FILE, help="A SQuAD v1.1 json to answer.")
@click.option(
    "--out", type=click.Path(file_okay=False), help="Output dir (default: EXP/predict_<ckpt>/<data>)."
)
@device_option
def predict(ckpt: str, data: str, out: str | None, device: str | None) -> None:
    """Write predictions.json ({id: answer}) and nbest_predictions.json (20 best spans per question)."""
    from aics.core.paths import resolve_checkpoint as resolve_ckpt
    from aics.tasks.squad.infer import default_out

    path = resolve_ckpt(ckpt)
    if not Path(data).is_file():
        raise click.BadParameter(f"{data}: no such file", param_hint="--data")
    from aics.tasks.squad.infer import predict as run

    out = out or str(default_out(path, data))
    info = run(path, data, out, device or "auto")
    click.echo(f"{out}: {info['questions']:,} questions answered ({info['windows_per_s']:.1f} windows/s)")


@cli.command("eval")
@click.option("--data", required=True, type=SOURCE_FILE, help="The SQuAD v1.1 json with the gold answers.")
@click.option("--ckpt", type=click.Path(), help="Predict with this experiment dir or .pt, then score.")
@click.option("--predictions", type=SOURCE_FILE, help="Score this predictions.json instead.")
@click.option(
    "--out", type=click.Path(file_okay=False), help="Output dir (default: EXP/predict_<ckpt>/<data>)."
)
@device_option
def eval_(data: str, ckpt: str | None, predictions: str | None, out: str | None, device: str | None) -> None:
    """EM and F1 exactly as the official SQuAD v1.1 script -> scores.json (and the exp's RESULTS.md)."""
    from aics.core.paths import resolve_checkpoint as resolve_ckpt
    from aics.tasks.squad.infer import default_out

    if (ckpt is None) == (predictions is None):
        raise click.UsageError("pass exactly one of --ckpt and --predictions")
    if not Path(data).is_file():
        raise click.BadParameter(f"{data}: no such file", param_hint="--data")
    if predictions is not None:
        if not Path(predictions).is_file():
            raise click.BadParameter(f"{predictions}: no such file", param_hint="--predictions")
        from aics.tasks.squad.infer import experiment_of, score, write_results

        s = score(data, predictions, Path(out) / "scores.json" if out else None)
        exp = experiment_of(Path(predictions))
        if exp is not None and not out:
            write_results(exp, s)
    else:
        path = resolve_ckpt(ckpt)
        from aics.tasks.squad.infer import eval_checkpoint, write_results

        target = Path(out) if out else default_out(path, data)
        s = eval_checkpoint(path, data, target, device or "auto")
        if path.parent.name == "ckpt" and not out:
            write_results(path.parent.parent, s)
    click.echo(f"EM {s['exact_match']:.2f}, F1 {s['f1']:.2f} over {s['total']:,} questions")


@cli.command()
@click.option("--ckpt", required=True, type=click.Path(), help="Experiment dir (its best.pt) or a .pt file.")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Directory transformers can load."
)
@overwrite_option
def export(ckpt: str, out: str, overwrite: bool) -> None:
    """Write a Hugging Face BertForQuestionAnswering dir (config.json, model.safetensors, tokenizer)."""
    from aics.core.paths import resolve_checkpoint as resolve_ckpt

    path = resolve_ckpt(ckpt)
    from aics.tasks.squad.infer import export as run

    run(path, out, overwrite=overwrite)
    click.echo(f"exported {path} -> {out}")


cli.add_command(
    report_command(
        "aics.tasks.squad.infer:report",
        "Compare scored experiments: init, teacher, parameters, EM, F1, windows/s, train tokens/s.",
    )
)
cli.add_command(config_command("aics.tasks.squad.config:SquadConfig"))
