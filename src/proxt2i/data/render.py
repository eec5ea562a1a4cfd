"""Procedural face rendering: attributes -> a scene of flat shapes -> anti-aliased RGB image.

The scene is built in *face units*: origin at the face centre, x right, y down, face half-width
about 1. A random similarity transform (position, scale, small rotation; nuisance, never named by
captions) maps it to a canvas `SUPERSAMPLE(size)` times larger than the output, Pillow fills the
polygons, `Image.reduce` box-filters down, and a random lighting gain/tint/gradient is applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from ..errors import UsageError
from .attributes import check_attributes

MIN_SIZE, MAX_SIZE = 32, 256

SKIN = {"pale": (252, 224, 204), "tan": (228, 174, 112), "brown": (150, 96, 58), "dark": (82, 52, 34)}
HAIR = {
    "black": (30, 26, 26), "brown": (114, 66, 30), "blond": (244, 206, 92),
    "red": (218, 80, 28), "grey": (176, 176, 182), "blue": (34, 90, 230),
}
EYES = {"blue": (40, 124, 255), "green": (26, 186, 56), "brown": (124, 66, 20)}
BACKGROUND = {
    "white": (244, 244, 240), "blue": (136, 184, 252), "green": (146, 224, 136),
    "yellow": (252, 230, 104), "pink": (252, 166, 200), "purple": (184, 150, 242),
}
SHIRTS = ((70, 82, 104), (150, 40, 52), (60, 112, 72), (206, 204, 194), (92, 62, 124), (44, 44, 50), (186, 128, 62))
CAP, BEANIE, BEANIE_BAND, HEADBAND = (124, 42, 172), (18, 128, 108), (40, 164, 138), (236, 48, 150)
GOLD, OUTLINE, FRAME = (250, 188, 16), (36, 26, 26), (22, 22, 26)
MOUTH, TEETH, WHITE, PUPIL = (126, 26, 38), (250, 250, 250), (252, 252, 252), (12, 10, 10)
LENS = (205, 235, 255)  # clear glasses: light blue-white
LINE = 0.06  # outline width, face units


# ---------------------------------------------------------------- shape helpers (face units)

@lru_cache(maxsize=None)
def _arc(t0: float, t1: float, n: int, closed: bool) -> np.ndarray:
    """[n, 2] unit-circle points from angle t0 to t1 (radians); closed: t1 itself left out."""
    t = np.linspace(t0, t1, n, endpoint=not closed)
    return np.stack([np.cos(t), np.sin(t)], 1)


def _circle(n: int = 40) -> np.ndarray:
    return _arc(0.0, 2 * math.pi, n, True)


def ellipse(cx, cy, rx, ry, n: int = 40) -> np.ndarray:
    """[n, 2] polygon of an axis-aligned ellipse."""
    return _circle(n) * (rx, ry) + (cx, cy)


def superellipse(cx, cy, rx, ry, power: float, n: int = 48) -> np.ndarray:
    """[n, 2] polygon of |x/rx|^p + |y/ry|^p = 1 (p=2 ellipse, larger = squarer)."""
    c = _circle(n)
    return np.sign(c) * np.abs(c) ** (2.0 / power) * (rx, ry) + (cx, cy)


def upper_half(cx, cy, rx, ry, n: int = 24) -> np.ndarray:
    """[n, 2] dome: the half of an ellipse above y = cy (y grows downwards)."""
    return _arc(math.pi, 2 * math.pi, n, False) * (rx, ry) + (cx, cy)


def lower_half(cx, cy, rx, ry, n: int = 24) -> np.ndarray:
    return _arc(0.0, math.pi, n, False) * (rx, ry) + (cx, cy)


def rect(x0, y0, x1, y1) -> np.ndarray:
    """[4, 2] axis-aligned rectangle with corners (x0, y0), (x1, y1), in any order."""
    x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=float)


def shade(rgb, k: float) -> tuple[int, int, int]:
    """Colour scaled by k (k < 1 darker)."""
    return tuple(min(255, int(c * k)) for c in rgb)


def mix(a, b, t: float) -> tuple[int, int, int]:
    """(1 - t) a + t b, per channel."""
    return tuple(int(x + (y - x) * t) for x, y in zip(a, b))


# ---------------------------------------------------------------- the scene

FACE = {  # shape -> (half-width, half-height, superellipse power)
    "round": (1.04, 1.04, 2.0),
    "oval": (0.78, 1.26, 2.0),
    "square": (1.02, 1.06, 7.0),
}
_AFRO = _circle(56) * (1.6 * (1 + 0.045 * np.sin(14 * np.linspace(0, 2 * math.pi, 56, endpoint=False))))[:, None] + (0, -0.4)


@dataclass(frozen=True)
class Head:
    """Face geometry in face units: half-width, half-height, superellipse power, hairline y, hair top y."""

    fa: float
    fb: float
    power: float
    hairline: float
    top: float


def head_geometry(face_shape: str) -> Head:
    fa, fb, power = FACE[face_shape]
    return Head(fa, fb, power, hairline=-0.66 * fb - 0.02, top=-(fb + 0.3))


def _eye(s, x, y, iris, surprised: bool, lens=None) -> None:
    """One eye at (x, y); lens: None, or a function recolouring what is seen through a lens."""
    see = lens or (lambda c: c)
    ry = 0.27 if surprised else 0.22
    s.append(("poly", ellipse(x, y, 0.29, ry, 28), see(WHITE), see(OUTLINE), 0.04))
    s.append(("circle", (x, y + 0.01), 0.195, see(iris), None, 0))
    s.append(("circle", (x, y + 0.01), 0.075, PUPIL, None, 0))
    s.append(("circle", (x + 0.06, y - 0.05), 0.04, see(WHITE), None, 0))


def _back(s, attrs, h: Head, shirt) -> None:
    """Shoulders, neck and the hair behind the head."""
    skin, hair = SKIN[attrs["skin"]], HAIR[attrs["hair_color"]]
    s.append(("poly", ellipse(0, 2.4, 1.95, 1.0), shirt, OUTLINE, LINE))
    s.append(("poly", rect(-0.34, 0.4, 0.34, 1.55), shade(skin, 0.86), None, 0))
    if attrs["hair_style"] == "long":
        s.append(("poly", superellipse(0, 0.2, 1.3 * h.fa + 0.08, 1.5, 3.0), hair, OUTLINE, LINE))
    elif attrs["hair_style"] == "afro":
        s.append(("poly", _AFRO, hair, OUTLINE, LINE))


def _head(s, attrs, h: Head) -> np.ndarray:
    """Ears, face, hair dome with fringe, sideburns. Returns the face outline [N, 2]."""
    skin, hair = SKIN[attrs["skin"]], HAIR[attrs["hair_color"]]
    for side in (-1, 1):
        s.append(("poly", ellipse(side * h.fa * 0.97, 0.02, 0.17, 0.26, 20), skin, OUTLINE, LINE))
    face = superellipse(0, 0, h.fa, h.fb, h.power)
    s.append(("poly", face, skin, OUTLINE, LINE))
    rx = 1.1 * h.fa
    xs = np.linspace(rx, -rx, 9)
    fringe = np.stack([xs, h.hairline + 0.14 * (1 - (xs / rx) ** 2)], 1)
    s.append(("poly", np.concatenate([upper_half(0, h.hairline, rx, h.hairline - h.top, 26), fringe[1:-1]]), hair, OUTLINE, LINE))
    if attrs["hair_style"] != "afro":
        for side in (-1, 1):  # sideburns, tapering towards the ear
            x_in, x_out = side * 0.74 * h.fa, side * 1.06 * h.fa
            s.append(("poly", np.array([(x_in, h.hairline - 0.05), (x_out, h.hairline - 0.05), (x_out, 0.05), (side * 0.92 * h.fa, 0.05)]), hair, None, 0))
    return face


BROWS = {"sad": (-0.5, -0.3), "surprised": (-0.54, -0.52)}  # expression -> (inner, outer) y; default level


def _features(s, attrs, h: Head) -> None:
    """Eyebrows (hair colour), eyes, nose."""
    expr = attrs["expression"]
    inner, outer = BROWS.get(expr, (-0.38, -0.38))
    brow = shade(HAIR[attrs["hair_color"]], 0.75)
    for side in (-1, 1):
        x0, x1 = side * 0.16, side * 0.64
        s.append(("poly", np.array([(x0, inner - 0.07), (x1, outer - 0.07), (x1, outer + 0.07), (x0, inner + 0.07)]), brow, None, 0))
        _eye(s, side * 0.4, -0.06, EYES[attrs["eye_color"]], expr == "surprised")
    s.append(("poly", np.array([(0.0, 0.1), (-0.1, 0.3), (0.1, 0.3)]), shade(SKIN[attrs["skin"]], 0.78), None, 0))


MOUSTACHE = np.array([(-0.46, 0.52), (-0.32, 0.32), (0, 0.28), (0.32, 0.32), (0.46, 0.52), (0.22, 0.44), (0, 0.43), (-0.22, 0.44)])


def _facial_hair(s, attrs, face: np.ndarray) -> None:
    """Beard (the lower face, grown a little, with a bare patch round the mouth) and/or moustache."""
    hair, kind = HAIR[attrs["hair_color"]], attrs["facial_hair"]
    if kind == "beard":
        beard = face * 1.05
        beard[:, 1] = np.maximum(beard[:, 1], 0.08)
        s.append(("poly", beard, hair, OUTLINE, LINE))
        s.append(("poly", ellipse(0, 0.6, 0.42, 0.26, 24), SKIN[attrs["skin"]], None, 0))
    if kind in ("beard", "moustache"):
        s.append(("poly", MOUSTACHE, hair, OUTLINE, 0.04))


def _mouth(s, expr: str) -> None:
    if expr == "smiling":  # open smile with teeth
        s.append(("poly", lower_half(0, 0.48, 0.4, 0.3), MOUTH, OUTLINE, 0.04))
        s.append(("poly", lower_half(0, 0.48, 0.33, 0.1, 12), TEETH, None, 0))
    elif expr == "neutral":  # straight bar
        s.append(("poly", rect(-0.34, 0.55, 0.34, 0.68), MOUTH, None, 0))
    elif expr == "sad":  # downturned arch
        outer, inner = upper_half(0, 0.84, 0.4, 0.32, 16), upper_half(0, 0.84, 0.26, 0.18, 16)[::-1]
        s.append(("poly", np.concatenate([outer, inner]), MOUTH, None, 0))
    else:  # surprised: open O
        s.append(("poly", ellipse(0, 0.62, 0.17, 0.23, 20), MOUTH, OUTLINE, 0.04))


def _through_glasses(rgb):
    return mix(rgb, LENS, 0.45)


def _through_sunglasses(rgb):
    return shade(rgb, 0.38)


LENS_COLOUR = {"glasses": _through_glasses, "sunglasses": _through_sunglasses}  # what a lens does to colours


def _eyewear(s, attrs, h: Head) -> None:
    """Glasses (round, light blue-white lenses) or sunglasses (squarish, dark lenses); the skin and
    eye behind each lens are redrawn through it, so the eye colour stays visible."""
    kind = attrs["eyewear"]
    if kind == "none":
        return
    lens_colour = LENS_COLOUR[kind]
    for side in (-1, 1):
        if kind == "glasses":
            lens = ellipse(side * 0.4, -0.06, 0.36, 0.34, 32)
        else:
            lens = superellipse(side * 0.41, -0.04, 0.4, 0.3, 3.0, 32)
        s.append(("poly", lens, lens_colour(SKIN[attrs["skin"]]), None, 0))
        _eye(s, side * 0.4, -0.06, EYES[attrs["eye_color"]], attrs["expression"] == "surprised", lens_colour)
        s.append(("poly", lens, None, FRAME, 0.13))
        s.append(("poly", rect(side * 0.76, -0.13, side * 0.99 * h.fa, -0.04), FRAME, None, 0))  # temple
    s.append(("poly", rect(-0.1, -0.13, 0.1, -0.04), FRAME, None, 0))  # bridge


def _headwear(s, attrs, h: Head) -> float:
    """Cap, beanie or headband, sitting above the fringe. Returns the new top of the head (y)."""
    kind, top = attrs["headwear"], h.top
    if kind == "cap":
        y = h.hairline - 0.12
        s.append(("poly", upper_half(0, y, 1.14 * h.fa, y - top + 0.08), CAP, OUTLINE, LINE))
        s.append(("poly", lower_half(0, y, 1.34 * h.fa, 0.16), shade(CAP, 0.68), OUTLINE, LINE))  # visor
        s.append(("circle", (0, top - 0.06), 0.09, shade(CAP, 0.7), None, 0))
        return top - 0.08
    if kind == "beanie":
        y = h.hairline - 0.08
        s.append(("poly", upper_half(0, y, 1.13 * h.fa, y - top + 0.06), BEANIE, OUTLINE, LINE))
        s.append(("poly", rect(-1.16 * h.fa, y - 0.3, 1.16 * h.fa, y), BEANIE_BAND, OUTLINE, LINE))  # fold
        return top - 0.06
    if kind == "headband":
        xs = np.linspace(-1.1 * h.fa, 1.1 * h.fa, 12)
        arch = 0.1 * (1 - (xs / (1.1 * h.fa)) ** 2)
        upper = np.stack([xs, h.hairline - 0.26 - arch], 1)
        lower = np.stack([xs, h.hairline - 0.04 - arch], 1)[::-1]
        s.append(("poly", np.concatenate([upper, lower]), HEADBAND, OUTLINE, 0.04))
    return top


def build_scene(attrs: dict[str, str], shirt=SHIRTS[0]) -> list[tuple]:
    """Attributes -> ordered list of shapes, back to front, in face units.

    A shape is ("poly", points [N, 2], fill or None, outline or None, outline width) or
    ("circle", centre (x, y), radius, fill, outline or None, outline width).
    """
    h = head_geometry(attrs["face_shape"])
    s: list[tuple] = []
    _back(s, attrs, h, shirt)
    face = _head(s, attrs, h)
    _features(s, attrs, h)
    _facial_hair(s, attrs, face)
    _mouth(s, attrs["expression"])
    _eyewear(s, attrs, h)
    top = _headwear(s, attrs, h)
    if attrs["hair_style"] == "bun":  # on top of any headwear
        s.append(("circle", (0, top - 0.2), 0.42, HAIR[attrs["hair_color"]], OUTLINE, LINE))
    if attrs["earrings"] == "earrings":  # in front of any hair
        for side in (-1, 1):
            x = side * h.fa * 0.99
            s.append(("poly", rect(x - 0.035, 0.2, x + 0.035, 0.36), GOLD, None, 0))
            s.append(("circle", (x, 0.5), 0.21, GOLD, OUTLINE, 0.04))
    return s


# ---------------------------------------------------------------- rasterising

def supersample(size: int) -> int:
    """Canvas/output ratio: at least 2, and a canvas of at least 128 px."""
    return max(2, -(-128 // size))


@lru_cache(maxsize=8)
def _gradient(size: int) -> np.ndarray:
    """[size, size, 2] pixel coordinates in [-1, 1] (x, y)."""
    g = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    return np.stack(np.meshgrid(g, g), -1)


def rasterize(scene, size: int, background, centre, scale: float, angle: float) -> Image.Image:
    """Draw a scene. centre: face centre in output pixels (x, y); scale: output pixels per face unit;
    angle: radians. Returns an RGB image of size x size, box-filtered from the supersampled canvas."""
    f = supersample(size)
    img = Image.new("RGB", (size * f, size * f), background)
    draw = ImageDraw.Draw(img)
    k = scale * f
    c, sn = math.cos(angle) * k, math.sin(angle) * k
    m = np.array([[c, sn], [-sn, c]])  # row-vector form: [x, y] @ m
    # transform every point of the scene at once (a circle contributes its centre)
    points = [sh[1] if sh[0] == "poly" else np.asarray(sh[1], dtype=float)[None] for sh in scene]
    xy = (np.concatenate(points) @ m + np.array(centre, dtype=float) * f).ravel().tolist()
    at = 0
    for shape, pts in zip(scene, points):
        n, at = 2 * len(pts), at + 2 * len(pts)
        if shape[0] == "poly":
            _, _, fill, outline, width = shape
            poly = xy[at - n : at]
            if fill is not None:
                draw.polygon(poly, fill=fill)
            if outline is not None:  # a closed polyline: one C call, much cheaper than polygon(width=)
                draw.line(poly + poly[:2], fill=outline, width=max(1, round(width * k)))
        else:
            _, _, r, fill, outline, width = shape
            px, py, rr = xy[at - 2], xy[at - 1], r * k
            draw.ellipse((px - rr, py - rr, px + rr, py + rr), fill=fill, outline=outline, width=max(1, round(width * k)) if outline else 1)
    return img.reduce(f)


def render_face(attrs: dict[str, str], size: int, rng: np.random.Generator) -> np.ndarray:
    """Render one face: uint8 [size, size, 3]. Nuisance (position, scale, rotation, shirt colour,
    lighting) comes from rng; the same rng state gives the same pixels."""
    check_attributes(attrs)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(f"image size must be in {MIN_SIZE}..{MAX_SIZE}, got {size}")
    u = rng.random(10)
    centre = (size * (0.5 + 0.07 * (u[0] - 0.5)), size * (0.47 + 0.07 * (u[1] - 0.5)))
    scale = size * 0.235 * (0.93 + 0.14 * u[2])
    angle = math.radians(16 * (u[3] - 0.5))
    shirt = SHIRTS[int(u[4] * len(SHIRTS))]
    scene = build_scene(attrs, shirt)
    img = np.asarray(rasterize(scene, size, BACKGROUND[attrs["background"]], centre, scale, angle), dtype=np.float32)
    # lighting: brightness x colour tint x a linear gradient along a random direction
    gain = ((0.93 + 0.14 * u[5]) * (0.97 + 0.06 * u[6:9])).astype(np.float32)
    d = 2 * math.pi * u[9]
    light = (1.0 + 0.05 * (_gradient(size) @ np.array([math.cos(d), math.sin(d)], dtype=np.float32)))[..., None] * gain
    img *= light
    return np.minimum(img, 255.0, out=img).astype(np.uint8)
