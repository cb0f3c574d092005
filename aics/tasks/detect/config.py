"""The detection lab's config tree. Defaults are the tiny CPU preset (yolov5n at 320 px, a few epochs);
``recipes/yolov5/conf/*.yaml`` set real sizes. The ``hyp`` section holds YOLOv5's hyper-parameters under
their usual names, so a YOLOv5 ``hyp.*.yaml`` file can be read with ``--hyp``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aics.core.config import (
    RunOptions,
    apply_override,
    load_config,
    load_yaml,
    merge_mapping,
    option,
    section,
)

SIZES = ("n", "s", "m", "l", "x")


@dataclass
class ModelConfig:
    size: str = option("n", help="YOLOv5 size: depth/width multiples of n, s, m, l or x", choices=SIZES)
    description: str = option("", help="a YOLOv5-style model yaml to build instead of the size preset")


@dataclass
class DataConfig:
    yaml: str = option("", help="dataset yaml (path, train, val, names), set by --data")
    imgsz: int = option(
        320, help="train and val image size in pixels (a multiple of the largest stride)", min=32
    )
    cache_images: bool = option(True, help="keep the resized images in RAM (fast epochs on small sets)")
    workers: int = option(2, help="data-loading worker processes (0: load in the main process)", min=0)


@dataclass
class HypConfig:
    """YOLOv5's hyp.scratch-low values; names as in YOLOv5 so its hyp files load unchanged."""

    lr0: float = option(0.01, help="initial learning rate (SGD)", min=0.0)
    lrf: float = option(0.01, help="final learning rate as a fraction of lr0", min=0.0)
    momentum: float = option(0.937, help="SGD momentum (Adam beta1)", min=0.0)
    weight_decay: float = option(0.0005, help="weight decay at the nominal batch size", min=0.0)
    warmup_epochs: float = option(3.0, help="warm-up in epochs, at least 100 iterations (0: none)", min=0.0)
    warmup_momentum: float = option(0.8, help="momentum at the start of warm-up", min=0.0)
    warmup_bias_lr: float = option(0.1, help="learning rate of the biases at the start of warm-up", min=0.0)
    box: float = option(0.05, help="box (CIoU) loss gain", min=0.0)
    cls: float = option(0.5, help="class loss gain", min=0.0)
    cls_pw: float = option(1.0, help="class BCE positive weight", min=0.0)
    obj: float = option(1.0, help="objectness loss gain (scales with pixels)", min=0.0)
    obj_pw: float = option(1.0, help="objectness BCE positive weight", min=0.0)
    iou_t: float = option(0.2, help="IoU training threshold (unused, kept for YOLOv5 hyp files)", min=0.0)
    anchor_t: float = option(4.0, help="anchor-to-box size ratio limit for matching", min=1.0)
    anchors: float = option(0.0, help="anchors per output (unused, kept for YOLOv5 hyp files)", min=0.0)
    fl_gamma: float = option(0.0, help="focal loss gamma (0: plain BCE)", min=0.0)
    label_smoothing: float = option(0.0, help="class label smoothing epsilon", min=0.0)
    hsv_h: float = option(0.015, help="hue jitter (fraction)", min=0.0)
    hsv_s: float = option(0.7, help="saturation jitter (fraction)", min=0.0)
    hsv_v: float = option(0.4, help="value jitter (fraction)", min=0.0)
    degrees: float = option(0.0, help="rotation (+/- degrees)", min=0.0)
    translate: float = option(0.1, help="translation (+/- fraction)", min=0.0)
    scale: float = option(0.5, help="scale gain (+/- fraction)", min=0.0)
    shear: float = option(0.0, help="shear (+/- degrees)", min=0.0)
    perspective: float = option(0.0, help="perspective (+/- fraction, 0 to 0.001)", min=0.0)
    flipud: float = option(0.0, help="probability of an up-down flip", min=0.0)
    fliplr: float = option(0.5, help="probability of a left-right flip", min=0.0)
    mosaic: float = option(1.0, help="probability of a 4-image mosaic", min=0.0)
    mixup: float = option(0.0, help="probability of mixup", min=0.0)
    copy_paste: float = option(0.0, help="probability of copy-paste (box-based)", min=0.0)
    cutout: float = option(0.0, help="probability of cutout", min=0.0)


@dataclass
class TrainConfig(RunOptions):
    epochs: int = option(10, help="training epochs", min=1)
    batch_size: int = option(16, help="images per step (per process under torchrun)", min=1)
    nbs: int = option(64, help="nominal batch size: gradients are accumulated up to it", min=1)
    optimizer: str = option("SGD", help="optimizer (SGD is nesterov)", choices=("SGD", "Adam", "AdamW"))
    cos_lr: bool = option(False, help="cosine instead of linear LR decay")
    ema: bool = option(True, help="keep an exponential moving average of the weights (used for val)")
    autoanchor: bool = option(True, help="check anchors against the labels and evolve new ones if poor")
    close_mosaic: int = option(0, help="turn mosaic and mixup off for the last N epochs", min=0)
    patience: int = option(100, help="stop after N validations without better fitness (0: never)", min=0)
    freeze: int = option(0, help="freeze the first N layers (e.g. 10: the backbone) when fine-tuning", min=0)
    val_every: int = option(1, help="validate every N epochs (and always after the last)", min=1)
    plots: bool = option(True, help="save label statistics, batch mosaics and val curves as PNG")
    log_every: int = option(10, help="log the train losses every N steps", min=1)


@dataclass
class ValConfig:
    batch_size: int = option(32, help="images per val batch", min=1)
    conf_thres: float = option(0.001, help="confidence threshold for mAP", min=0.0)
    iou_thres: float = option(0.6, help="NMS IoU threshold", min=0.0)
    max_det: int = option(300, help="detections kept per image", min=1)
    rect: bool = option(True, help="rectangular val batches (less padding)")


@dataclass
class DetectConfig:
    model: ModelConfig = section(ModelConfig, help="the network")
    data: DataConfig = section(DataConfig, help="dataset and loading")
    hyp: HypConfig = section(HypConfig, help="YOLOv5 hyper-parameters (loss gains, augmentation, LR)")
    train: TrainConfig = section(TrainConfig, help="optimisation, schedule, checkpointing")
    val: ValConfig = section(ValConfig, help="validation during and after training")


def load_detect_config(
    files: list | tuple = (), hyp: str | Path | None = None, overrides: list | tuple = ()
) -> DetectConfig:
    """Defaults < ``--conf`` files < a YOLOv5 hyp yaml (flat ``key: value``, into ``hyp``) < ``--set``."""
    cfg = load_config(DetectConfig, files)
    if hyp:
        merge_mapping(cfg.hyp, load_yaml(hyp), "hyp.", str(hyp))
    for o in overrides:
        apply_override(cfg, o)
    return cfg
