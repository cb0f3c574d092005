"""An offline stand-in for Flickr8k in its own layout: scenes of a few coloured shapes on textured
backgrounds, each with five captions written the way five different annotators would.

Usage: aics caption synth --out data/caption/synth8k --train 3000 --dev 300 --test 300

Writes what the Flickr8k download holds (``Flicker8k_Dataset/*.jpg``, ``Flickr8k.token.txt`` with
``<image>#<n>\\t<caption>`` rows, ``Flickr_8k.{train,dev,test}Images.txt``) and Karpathy's split file
(``dataset_flickr8k.json``), so that every reader of the real set is exercised offline.

A scene holds one to four shapes (circle, square, triangle, star, cross) in seven colours and two sizes,
sometimes several of one kind (counting), on one of five background textures. Its five captions come from
different annotator styles: a full list with counts, a relation between two shapes (left of, above...), a
count of the shapes, the most salient shape with its place in the picture, the background, each with
synonyms (ball, box, plus sign, large, little...) and varied word order, so that references disagree with
each other as human ones do and grammar, counting and relations must be learned to score well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aics.core.errors import UserError

IMAGES_DIR = "Flicker8k_Dataset"  # sic: the real archive's spelling
TOKEN_FILE = "Flickr8k.token.txt"
SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "dev": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}  # fmt: skip
KARPATHY_FILE = "dataset_flickr8k.json"
KARPATHY_SPLIT = {"train": "train", "dev": "val", "test": "test"}
INFO_FILE = "synth.json"
FORMAT_VERSION = 1

SHAPES = ("circle", "square", "triangle", "star", "cross")
COLOURS = {  # mean RGB; each object's colour is jittered around it
    "red": (205, 35, 35), "green": (40, 170, 55), "blue": (40, 70, 210), "yellow": (235, 215, 40),
    "purple": (135, 45, 170), "orange": (245, 135, 25), "white": (245, 245, 245),
}  # fmt: skip
BACKGROUNDS = ("plain", "striped", "checkered", "dotted", "grainy")
SIZES = {"small": (0.09, 0.12), "big": (0.16, 0.21)}  # radius as a share of the image height

NOUNS = {"circle": ("circle", "ball", "disc", "round shape"), "square": ("square", "box", "block"),
         "triangle": ("triangle",), "star": ("star",), "cross": ("cross", "plus sign")}  # fmt: skip
PLURAL = {"box": "boxes", "cross": "crosses"}
SIZE_WORDS = {"small": ("small", "little", "tiny"), "big": ("big", "large")}
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
BACKGROUND_WORDS = {"plain": ("plain", "grey", "simple"), "striped": ("striped", "stripy"),
                    "checkered": ("checkered", "checked"), "dotted": ("dotted", "spotted"),
                    "grainy": ("grainy", "noisy")}  # fmt: skip
RELATIONS = {"left": ("to the left of", "left of"), "right": ("to the right of", "right of"),
             "above": ("above", "over"), "below": ("below", "under")}  # fmt: skip
OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}


@dataclass
class Shape:
    shape: str
    colour: str
    size: str
    x: float  # centre, as a share of the width
    y: float  # centre, as a share of the height (0: top)
    radius: float  # as a share of the height


def plural(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    word = PLURAL.get(last, last + "s")
    return f"{head} {word}" if head else word


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


# ------------------------------------------------------------------------------------------ scenes
def draw_scene(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, list[Shape], str]:
    """One scene: the RGB image (H, W, 3) uint8, its shapes and its background name."""
    from PIL import Image, ImageDraw

    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    canvas = texture(rng, background, width, height)
    kinds = 1 if rng.random() < 0.55 else 2
    groups = []
    for _ in range(kinds):
        while True:
            kind = (SHAPES[rng.integers(len(SHAPES))], list(COLOURS)[rng.integers(len(COLOURS))])
            if kind not in [g[0] for g in groups]:
                break
        count = int(rng.choice([1, 2, 3], p=[0.6, 0.28, 0.12]))
        groups.append((kind, count))
    while sum(c for _, c in groups) > 4:
        groups[-1] = (groups[-1][0], groups[-1][1] - 1)
    shapes: list[Shape] = []
    for (shape, colour), count in groups:
        size = "big" if count == 1 and rng.random() < 0.5 else "small"
        for _ in range(count):
            shapes.append(place(rng, shape, colour, size, shapes, width / height))
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    for s in shapes:
        rgb = tuple(int(np.clip(c + rng.normal(0, 14), 0, 255)) for c in COLOURS[s.colour])
        draw_shape(draw, s, rgb, width, height, rng)
    return np.asarray(img), shapes, background


def texture(rng: np.random.Generator, kind: str, width: int, height: int) -> np.ndarray:
    base = rng.uniform(70, 150, size=3) * np.array([1.0, 1.0, 1.0]) + rng.normal(0, 8, size=3)
    other = base + rng.choice([-1, 1]) * rng.uniform(25, 45)
    yy, xx = np.mgrid[0:height, 0:width]
    if kind == "striped":
        period = rng.integers(8, 16)
        angle = rng.uniform(0, math.pi)
        mask = ((xx * math.cos(angle) + yy * math.sin(angle)) // (period / 2)) % 2 == 0
    elif kind == "checkered":
        cell = rng.integers(10, 20)
        mask = ((xx // cell) + (yy // cell)) % 2 == 0
    elif kind == "dotted":
        step = rng.integers(10, 16)
        mask = ((xx % step - step / 2) ** 2 + (yy % step - step / 2) ** 2) < (step / 5) ** 2
    else:
        mask = np.zeros((height, width), dtype=bool)
    img = np.where(mask[..., None], other, base)
    noise = 22 if kind == "grainy" else 5
    img = img + rng.normal(0, noise, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def place(rng: np.random.Generator, shape: str, colour: str, size: str, others: list[Shape], aspect: float
          ) -> Shape:  # fmt: skip
    """A shape at a random spot that overlaps none of ``others`` (a few hundred tries, then any spot)."""
    lo, hi = SIZES[size]
    radius = rng.uniform(lo, hi)
    for _ in range(300):
        x = rng.uniform(radius / aspect, 1 - radius / aspect)
        y = rng.uniform(radius, 1 - radius)
        if all(math.hypot((x - o.x) * aspect, y - o.y) > radius + o.radius + 0.02 for o in others):
            break
    return Shape(shape, colour, size, float(x), float(y), float(radius))


def draw_shape(draw, s: Shape, rgb: tuple, width: int, height: int, rng: np.random.Generator) -> None:
    cx, cy, r = s.x * width, s.y * height, s.radius * height
    turn = rng.uniform(-0.25, 0.25)
    if s.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb)
    elif s.shape == "square":
        side = r * 0.85
        pts = [
            (
                cx + side * math.sqrt(2) * math.cos(turn + math.pi / 4 + k * math.pi / 2),
                cy + side * math.sqrt(2) * math.sin(turn + math.pi / 4 + k * math.pi / 2),
            )
            for k in range(4)
        ]
        draw.polygon(pts, fill=rgb)  # fmt: skip
    elif s.shape == "triangle":
        pts = [
            (
                cx + r * math.cos(turn - math.pi / 2 + k * 2 * math.pi / 3),
                cy + r * math.sin(turn - math.pi / 2 + k * 2 * math.pi / 3),
            )
            for k in range(3)
        ]
        draw.polygon(pts, fill=rgb)  # fmt: skip
    elif s.shape == "star":
        pts = [(cx + (r if k % 2 == 0 else r * 0.45) * math.cos(turn - math.pi / 2 + k * math.pi / 5),
                cy + (r if k % 2 == 0 else r * 0.45) * math.sin(turn - math.pi / 2 + k * math.pi / 5))
               for k in range(10)]  # fmt: skip
        draw.polygon(pts, fill=rgb)
    else:  # a plus-shaped cross
        w = r * 0.33
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=rgb)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=rgb)


# ------------------------------------------------------------------------------------------ captions
class Writer:
    """Words for one annotator: each picks its synonyms once per caption."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def pick(self, options: tuple[str, ...]) -> str:
        return options[self.rng.integers(len(options))]

    def noun(self, shape: str, count: int = 1) -> str:
        word = self.pick(NOUNS[shape])
        return plural(word) if count > 1 else word

    def group(self, shapes: list[Shape], with_size: bool = True, count_word: bool = False) -> str:
        """'two red balls', 'a big blue square'."""
        s, n = shapes[0], len(shapes)
        words = []
        if with_size and n == 1 and s.size == "big" and self.rng.random() < 0.8:
            words.append(self.pick(SIZE_WORDS["big"]))
        elif with_size and n == 1 and s.size == "small" and self.rng.random() < 0.3:
            words.append(self.pick(SIZE_WORDS["small"]))
        words += [s.colour, self.noun(s.shape, n)]
        phrase = " ".join(words)
        if n > 1:
            return f"{COUNT_WORDS[n]} {phrase}"
        first = "one" if count_word else article(phrase)
        return f"{first} {phrase}"

    def listing(self, groups: list[list[Shape]]) -> str:
        parts = [self.group(g) for g in groups]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def background(self, background: str) -> str:
        return f"{self.pick(('on', 'in front of'))} a {self.pick(BACKGROUND_WORDS[background])} background"


def group_shapes(shapes: list[Shape]) -> list[list[Shape]]:
    groups: dict[tuple[str, str], list[Shape]] = {}
    for s in shapes:
        groups.setdefault((s.shape, s.colour), []).append(s)
    return sorted(groups.values(), key=lambda g: (-len(g), -max(s.radius for s in g)))


def relation(a: Shape, b: Shape, aspect: float) -> str:
    """Where ``a`` is seen from ``b``: left, right, above or below (the larger offset decides)."""
    dx, dy = (a.x - b.x) * aspect, a.y - b.y
    if abs(dx) >= abs(dy):
        return "left" if dx < 0 else "right"
    return "above" if dy < 0 else "below"


def place_words(s: Shape) -> str:
    h = "left" if s.x < 0.36 else "right" if s.x > 0.64 else ""
    v = "top" if s.y < 0.36 else "bottom" if s.y > 0.64 else ""
    if h and v:
        return f"in the {v} {h} corner"
    if h or v:
        return f"on the {h or v}" if h else f"at the {v}"
    return "in the middle"


def caption_styles(w: Writer, shapes: list[Shape], background: str, aspect: float) -> dict[str, str]:
    """Every style's caption of one scene (without final punctuation)."""
    groups = group_shapes(shapes)
    total = len(shapes)
    out: dict[str, str] = {}
    out["list"] = w.listing(groups) + (" " + w.background(background) if w.rng.random() < 0.4 else "")
    if total == 2 and len(groups) == 2:
        a, b = groups[0][0], groups[1][0]
        if w.rng.random() < 0.5:
            a, b = b, a
        rel = relation(a, b, aspect)
        if w.rng.random() < 0.5:
            out["relation"] = f"{w.group([a])} {w.pick(RELATIONS[rel])} {w.group([b])}"
        else:
            out["relation"] = f"{w.group([b])} is {w.pick(RELATIONS[OPPOSITE[rel]])} {w.group([a])}"
    thing = w.pick(("shapes", "objects", "things"))
    if total == 1:
        out["count"] = f"there is only {w.group(groups[0], count_word=True)} {w.background(background)}"
    else:
        out["count"] = f"there are {COUNT_WORDS[total]} {thing} : {w.listing(groups)}"
    main = groups[0]
    verb = "is" if len(main) == 1 else "are"
    counted = COUNT_WORDS[len(main)] if len(main) > 1 else article(main[0].shape)
    out["which"] = (
        f"{counted} {w.noun(main[0].shape, len(main))} {w.pick((f'that {verb}', f'which {verb}', 'in'))} "
        f"{main[0].colour}"
    )
    salient = max(shapes, key=lambda s: s.radius)
    out["salient"] = f"{w.group([salient], with_size=True)} {place_words(salient)}"
    colours = sorted({s.colour for s in shapes}, key=lambda c: list(COLOURS).index(c))
    colour_words = colours[0] if len(colours) == 1 else " and ".join(colours)
    out["scene"] = (
        f"{colour_words} {thing if total > 1 else w.noun(shapes[0].shape)} {w.background(background)}"
        if w.rng.random() < 0.5
        else f"{w.pick(('a picture', 'an image', 'a drawing'))} of {w.listing(groups)}"
    )
    return out


def write_captions(
    rng: np.random.Generator, shapes: list[Shape], background: str, aspect: float
) -> list[str]:
    """Five captions of one scene: five annotators, each in a style drawn without replacement (a style a
    scene cannot have, such as a relation between three shapes, is not drawn), in Flickr8k's casing."""
    styles = caption_styles(Writer(rng), shapes, background, aspect)
    names = list(styles)
    order = list(rng.permutation(len(names)))
    chosen = [names[i] for i in order]
    while len(chosen) < 5:  # fewer styles than annotators: some write a second caption in a style
        chosen.append(names[rng.integers(len(names))])
    captions = []
    for k, name in enumerate(chosen[:5]):
        text = (
            styles[name] if k < len(names) else caption_styles(Writer(rng), shapes, background, aspect)[name]
        )
        text = text[0].upper() + text[1:]
        captions.append(text + (" ." if rng.random() < 0.7 else ""))
    return captions


# ------------------------------------------------------------------------------------------ the set
def image_name(rng: np.random.Generator) -> str:
    """A Flickr-like file name: ``<photo id>_<10 hex>.jpg``."""
    digits = int(rng.integers(1_000_000_000, 3_999_999_999))
    return f"{digits}_{''.join(rng.choice(list('0123456789abcdef'), size=10))}.jpg"


def generate(
    out: str | Path,
    n_train: int = 3000,
    n_dev: int = 300,
    n_test: int = 300,
    width: int = 192,
    height: int = 144,
    seed: int = 0,
    overwrite: bool = False,
    show_progress: bool = True,
) -> dict:
    """Write the set (``.done`` last); returns what ``synth.json`` records."""
    from PIL import Image

    from aics.core.io import read_json, write_json, write_text
    from aics.core.log import progress
    from aics.core.stage import begin_stage, mark_done

    if min(width, height) < 32:
        raise UserError(f"images of {width}x{height} are too small to draw shapes on; use at least 32x32")
    out = Path(out)
    params = {"train": n_train, "dev": n_dev, "test": n_test, "size": [width, height], "seed": seed,
              "format": FORMAT_VERSION}  # fmt: skip
    if not begin_stage(out, overwrite, what="synth", params=params):
        return read_json(out / INFO_FILE)
    images = out / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = {"train": n_train, "dev": n_dev, "test": n_test}
    names: dict[str, list[str]] = {}
    token_lines, karpathy = [], []
    seen: set[str] = set()
    total = sum(sizes.values())
    bar = progress(range(total), desc="scenes", enabled=show_progress)
    it = iter(bar)
    for split, n in sizes.items():
        names[split] = []
        for _ in range(n):
            next(it, None)
            name = image_name(rng)
            while name in seen:
                name = image_name(rng)
            seen.add(name)
            pixels, shapes, background = draw_scene(rng, width, height)
            captions = write_captions(rng, shapes, background, width / height)
            Image.fromarray(pixels).save(images / name, quality=92)
            names[split].append(name)
            token_lines += [f"{name}#{k}\t{c}\n" for k, c in enumerate(captions)]
            img_id = len(karpathy)
            karpathy.append({
                "filename": name, "imgid": img_id, "split": KARPATHY_SPLIT[split],
                "sentids": [5 * img_id + k for k in range(5)],
                "sentences": [{"raw": c, "tokens": c.lower().replace(" .", "").split(), "imgid": img_id,
                               "sentid": 5 * img_id + k} for k, c in enumerate(captions)],
            })  # fmt: skip
    bar.close()
    write_text(out / TOKEN_FILE, "".join(token_lines))
    for split, fname in SPLIT_FILES.items():
        write_text(out / fname, "".join(f"{n}\n" for n in names[split]))
    write_json(out / KARPATHY_FILE, {"images": karpathy, "dataset": "flickr8k"})
    info = {"generator": "aics caption synth", "seed": seed, "size": [width, height],
            "images": sizes, "captions_per_image": 5, "shapes": list(SHAPES), "colours": list(COLOURS),
            "backgrounds": list(BACKGROUNDS)}  # fmt: skip
    write_json(out / INFO_FILE, info)
    mark_done(out, params=params)
    return info
