"""PhotoFaces attribute families: what the real face readers report, and the rules from measurements
(measure.py) to values. A rule may answer None (unsure: the measurement is between the values' ranges),
and an unsure family is left out of the caption: it is never guessed.

The values of the families that SynthFaces also has use SynthFaces' words, so the SynthFaces caption
grammar and parser serve both domains (data/photo_captions.py). Thresholds were set on generated
PhotoFaces and checked by hand (docs/photofaces.md, with each family's measured reliability).
"Left" and "right" are the image's: a face turned to the left shows its nose left of its eyes' midpoint.
"""

from __future__ import annotations

PHOTO_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "pose": ("left", "frontal", "right"),
    "framing": ("close-up", "wide"),
    "expression": ("neutral", "smiling"),
    "background": ("light", "dark"),
    "eyewear": ("none", "glasses"),
    "facial_hair": ("none", "beard"),
}
PHOTO_FAMILIES: tuple[str, ...] = tuple(PHOTO_ATTRIBUTES)
PHOTO_ONLY: tuple[str, ...] = ("pose", "framing", "background")  # written by photo clauses, not the SynthFaces grammar
SHARED_FAMILIES: tuple[str, ...] = tuple(f for f in PHOTO_FAMILIES if f not in PHOTO_ONLY)
FLIP_SWAPS = {"pose": {"left": "right", "right": "left"}}  # what a mirror image changes

# (family) -> thresholds; between two values' ranges the rule answers None
YAW_SIDE, YAW_FRONTAL = 0.18, 0.10  # nose offset from the eyes' midpoint, iod
CLOSE_UP, WIDE = 0.70, 0.63  # jaw width / image width
SMILE_OPEN, NEUTRAL_OPEN = 0.13, 0.05  # inner-lip gap, iod (a smile shows teeth; FFHQ's smiles mostly do)
LIGHT_BACKGROUND, DARK_BACKGROUND = 60.0, 35.0  # L of the top corners
GLASSES_EDGE, NO_GLASSES_EDGE = 1.5, 0.5  # brightness change across the nose bridge, against the forehead's
GLASSES_MAX_YAW = 0.15
NO_FACIAL_HAIR, FACIAL_HAIR = 4.0, 10.0  # how much darker than the cheeks the skin between nose and lip is, L


def _between(x: float, low: float, high: float, below: str, above: str) -> str | None:
    return below if x <= low else above if x >= high else None


def read_pose(m: dict) -> str | None:
    yaw = m["yaw"]
    if abs(yaw) <= YAW_FRONTAL:
        return "frontal"
    if abs(yaw) >= YAW_SIDE:
        return "right" if yaw > 0 else "left"
    return None


def read_eyewear(m: dict) -> str | None:
    if abs(m["yaw"]) > GLASSES_MAX_YAW:  # a turned face shows its far cheek's edge at the bridge
        return None
    return _between(m["bridge_edge"], NO_GLASSES_EDGE, GLASSES_EDGE, "none", "glasses")


RULES = {
    "pose": read_pose,
    "framing": lambda m: _between(m["face_fraction"], WIDE, CLOSE_UP, "wide", "close-up"),
    "expression": lambda m: _between(m["mouth_open"], NEUTRAL_OPEN, SMILE_OPEN, "neutral", "smiling"),
    "background": lambda m: _between(m["background_lab"][0], DARK_BACKGROUND, LIGHT_BACKGROUND, "dark", "light"),
    "eyewear": read_eyewear,
    "facial_hair": lambda m: _between(m["moustache_dark"], NO_FACIAL_HAIR, FACIAL_HAIR, "none", "beard"),
}


def read_attributes(measurements: dict, families=PHOTO_FAMILIES) -> dict[str, str | None]:
    """{family: value or None (unsure)} for each of `families`."""
    return {f: RULES[f](measurements) for f in families}


def mirrored(attrs: dict[str, str | None]) -> dict[str, str | None]:
    """The attributes the mirror image of a face with `attrs` has."""
    return {f: FLIP_SWAPS.get(f, {}).get(v, v) for f, v in attrs.items()}
