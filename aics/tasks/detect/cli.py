"""``aics detect``: commands of the YOLOv5 detection lab (thin wrappers over the task's modules)."""

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

POSITIVE = click.IntRange(min=1)
FRACTION = click.FloatRange(0.0, 1.0)
IMGSZ = click.IntRange(min=32)  # the largest stride


@click.group("detect")
def cli() -> None:
    """YOLOv5 detection in plain torch: synth, train (direct / pretrained / resume), val, predict, import."""


@cli.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Dataset directory to write.")
@click.option("--train-images", default=512, show_default=True, type=POSITIVE, help="Training images.")
@click.option("--val-images", default=128, show_default=True, type=POSITIVE, help="Validation images.")
@click.option("--imgsz", default=320, show_default=True, type=IMGSZ, help="Longest image side in pixels.")
@click.option(
    "--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the generator."
)
@overwrite_option
def synth(out, train_images, val_images, imgsz, seed, overwrite) -> None:
    """Write an offline YOLO-format dataset of coloured shapes on textured backgrounds (with data.yaml)."""
    from aics.tasks.detect.synth import generate

    generate(out, n_train=train_images, n_val=val_images, img_size=imgsz, seed=seed, overwrite=overwrite)
    click.echo(f"wrote {out}/data.yaml")


@cli.command()
@click.option("--data", type=click.Path(), help="Dataset yaml (path, train, val, names).")
@click.option("--exp", type=click.Path(file_okay=False), help="Experiment directory.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="Start from an aics detect checkpoint: every matching tensor is copied.")  # fmt: skip
@click.option("--resume", "resume_exp", type=click.Path(exists=True, file_okay=False),
              help="Continue this experiment with its saved config.")  # fmt: skip
@conf_option
@click.option(
    "--hyp", type=click.Path(exists=True, dir_okay=False), help="A YOLOv5 hyp yaml (flat key: value)."
)
@set_option
@device_option
@overwrite_option
def train(data, exp, weights, resume_exp, conf, hyp, overrides, device, overwrite) -> None:
    """Train a detector (direct, --weights pretrained, or --resume EXP); runs under torchrun too."""
    from pathlib import Path

    from aics.core.errors import UserError
    from aics.tasks.detect.config import load_detect_config

    # every check that needs no torch comes first, so a mistake is reported at once
    if resume_exp:
        if data or exp or weights or conf or hyp or overrides:
            raise UserError("--resume EXP takes the data, config and weights saved in EXP; pass nothing else")
        from aics.tasks.detect.train import resume_experiment

        resume_experiment(resume_exp)
        return
    if not exp:
        raise UserError("--exp is required (the experiment directory), or --resume EXP")
    overrides = with_device(overrides, device) + ((f"data.yaml={data}",) if data else ())
    cfg = load_detect_config(conf, hyp, overrides)
    if cfg.data.yaml and not Path(cfg.data.yaml).is_file():
        raise UserError(f"{cfg.data.yaml}: dataset yaml not found; pass --data DATA.yaml")
    from aics.tasks.detect.train import train as run

    run(cfg, exp, weights=weights, overwrite=overwrite)


@cli.command()
@click.option("--ckpt", required=True, type=click.Path(exists=True, dir_okay=False), help="Checkpoint.")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False), help="Dataset yaml.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--split", default="val", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--imgsz", default=320, show_default=True, type=IMGSZ, help="Image size.")
@click.option("--batch-size", default=32, show_default=True, type=POSITIVE, help="Images per batch.")
@click.option("--conf-thres", default=0.001, show_default=True, type=FRACTION, help="Confidence threshold.")
@click.option("--iou-thres", default=0.6, show_default=True, type=FRACTION, help="NMS IoU threshold.")
@click.option("--max-det", default=300, show_default=True, type=POSITIVE, help="Detections kept per image.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=0),
              help="Data-loading worker processes.")  # fmt: skip
@click.option("--no-plots", is_flag=True, help="Skip the PR/F1 curves and the confusion matrix.")
@device_option
@overwrite_option
def val(ckpt, data, out, split, imgsz, batch_size, conf_thres, iou_thres, max_det, workers, no_plots, device,
        overwrite) -> None:  # fmt: skip
    """P, R, mAP@0.5 and mAP@0.5:0.95 per class -> OUT/{scores.json,RESULTS.md,*.png,predictions.json}."""
    from aics.tasks.detect.infer import val as run

    s = run(ckpt, data, out, split=split, imgsz=imgsz, batch_size=batch_size, conf_thres=conf_thres,
            iou_thres=iou_thres, max_det=max_det, device=device or "auto", workers=workers,
            plots=not no_plots,
            overwrite=overwrite)  # fmt: skip
    click.echo(f"{out}: P {s['mp']:.3f} R {s['mr']:.3f} mAP@0.5 {s['map50']:.3f} mAP@0.5:0.95 {s['map']:.3f}")


@cli.command()
@click.option("--ckpt", required=True, type=click.Path(exists=True, dir_okay=False), help="Checkpoint.")
@click.option("--source", multiple=True, type=click.Path(), help="Image or folder (repeatable).")
@click.option(
    "--data", type=click.Path(exists=True, dir_okay=False), help="Or: a dataset yaml, with --split."
)
@click.option("--split", default="val", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--imgsz", default=320, show_default=True, type=IMGSZ, help="Inference size (longest side).")
@click.option("--conf-thres", default=0.25, show_default=True, type=FRACTION, help="Confidence threshold.")
@click.option("--iou-thres", default=0.45, show_default=True, type=FRACTION, help="NMS IoU threshold.")
@click.option("--max-det", default=300, show_default=True, type=POSITIVE, help="Detections kept per image.")
@click.option("--no-images", is_flag=True, help="Only write the txt/json outputs.")
@device_option
def predict(ckpt, source, data, split, out, imgsz, conf_thres, iou_thres, max_det, no_images, device) -> None:
    """Detect objects in images: boxes drawn, OUT/labels/*.txt and OUT/predictions.json."""
    from aics.core.errors import UserError
    from aics.tasks.detect.infer import predict as run

    sources = list(source)
    if data:
        from aics.tasks.detect.dataset_yaml import load_data_yaml

        sources += getattr(load_data_yaml(data), split)
    if not sources:
        raise UserError("nothing to predict: pass --source IMAGE_OR_FOLDER or --data DATA.yaml --split val")
    s = run(ckpt, sources, out, imgsz=imgsz, conf_thres=conf_thres, iou_thres=iou_thres, max_det=max_det,
            device=device or "auto", save_images=not no_images)  # fmt: skip
    click.echo(f"{out}: {s['images']} images, {s['detections']} detections ({s['ms_per_image']} ms/image)")


@cli.command()
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False), help="Dataset yaml.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Where the statistics go.")
def check(data, out) -> None:
    """Validate every image and label of a dataset (all problems listed), cache the scan, plot statistics."""
    from aics.tasks.detect.infer import check_dataset

    for split, stats in check_dataset(data, out).items():
        click.echo(f"{split}: " + ", ".join(f"{k} {v}" for k, v in stats.items()))


@cli.command("import")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
def import_(src, dst) -> None:
    """Convert an ultralytics YOLOv5 .pt into an aics checkpoint, without running code from the file."""
    from aics.tasks.detect.importer import import_ultralytics

    s = import_ultralytics(src, dst)
    click.echo(f"wrote {dst}: {s['nc']} classes, {s['params']:,} parameters")


@cli.command()
@click.option("--size", "sizes", multiple=True, default=("n", "s", "m", "l", "x"), show_default=True,
              type=click.Choice(["n", "s", "m", "l", "x"]))  # fmt: skip
@click.option("--imgsz", default=640, show_default=True, type=IMGSZ, help="Input size for GFLOPs.")
@click.option("--nc", default=80, show_default=True, type=POSITIVE, help="Classes.")
def info(sizes, imgsz, nc) -> None:
    """Parameters (as trained, and with Conv+BN fused as YOLOv5 publishes them) and GFLOPs per size."""
    from aics.tasks.detect.model import build_model, count_parameters, gflops

    click.echo(f"{'size':<6}{'parameters':>14}{'fused (published)':>20}{'GFLOPs':>10}")
    for size in sizes:
        model = build_model(size, nc=nc)
        train_params = count_parameters(model)
        model.eval().fuse()
        click.echo(f"{size:<6}{train_params:>14,}{count_parameters(model):>20,}{gflops(model, imgsz):>10.1f}")


cli.add_command(
    report_command(
        "aics.tasks.detect.infer:report",
        "Compare detect runs (their val/scores.json): mode, parameters, epochs, P, R, mAP, train time.",
    )
)
cli.add_command(config_command("aics.tasks.detect.config:DetectConfig"))
