"""Raw measurements of one face, from its 68 landmarks and the colours of landmark-located regions.

Lengths are in units of the inter-ocular distance (iod: between the two eye centres), so they do not
depend on the image size or the framing; colours are CIE Lab (L 0..100). Landmark indices are the
iBUG 300-W ones: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67.
"""

from __future__ import annotations

import numpy as np

from .readers import Face


def lab_image(image: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> float32 Lab (sRGB, D65)."""
    rgb = image.astype(np.float32) / 255.0
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], np.float32).T
    xyz /= np.array([0.95047, 1.0, 1.08883], np.float32)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def _patch(lab: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Pixels [n, 3] of the square of half-side `radius` (pixels) around `centre` (x, y), clipped to the image."""
    h, w = lab.shape[:2]
    r = max(1, int(round(radius)))
    x, y = int(round(centre[0])), int(round(centre[1]))
    block = lab[max(0, y - r):min(h, y + r + 1), max(0, x - r):min(w, x + r + 1)]
    return block.reshape(-1, 3) if block.size else np.full((1, 3), np.nan, np.float32)


def _median(pixels: np.ndarray) -> list[float]:
    return [float(v) for v in np.median(pixels, axis=0)]


HAIR_DARKER = 15.0  # L units: a pixel this much darker than the cheeks is not skin
HAIR_HUE_SHIFT = 12.0  # (a, b) units: nor is one this far from their hue


def _hair(lab: np.ndarray, skin: np.ndarray, x0: float, x1: float, y_start: float, depth: float) -> tuple[list[float] | None, float]:
    """Walk up each column from the forehead (y_start) until the colour leaves the skin's (the hairline),
    then take `depth` pixels above it: (median Lab of those pixels, share of columns that found a hairline).
    None when under 40% of the columns do (cropped off, bald, or hair the colour of skin)."""
    h, w = lab.shape[:2]
    # hair is darker than the skin or of another hue; a highlight on the forehead is only lighter
    far = (lab[..., 0] < skin[0] - HAIR_DARKER) | (np.linalg.norm(lab[..., 1:] - skin[1:], axis=-1) > HAIR_HUE_SHIFT)
    pixels, found, columns = [], 0, range(max(0, int(x0)), min(w, int(x1)))
    for x in columns:
        for y in range(min(h - 1, int(y_start)), 2, -1):
            if far[y, x] and far[y - 1, x] and far[y - 2, x]:
                top = max(0, int(y - depth))
                pixels.append(lab[top:y + 1, x])
                found += 1
                break
    share = found / max(1, len(columns))
    if share < 0.4:
        return None, float(share)
    return _median(np.concatenate(pixels)), float(share)


def measure(image: np.ndarray, face: Face) -> dict:
    """Measurements of `face` in `image` (uint8 RGB, the coordinates the face was found in)."""
    p = face.landmarks
    eye_r, eye_l = p[36:42].mean(0), p[42:48].mean(0)
    iod = float(np.linalg.norm(eye_l - eye_r)) or 1.0
    eyes_mid = (eye_r + eye_l) / 2
    lab = lab_image(image)
    grey = lab[..., 0]

    def dist(a, b):
        return float(np.linalg.norm(p[a] - p[b])) / iod

    def eye_aspect(e):
        return (dist(e + 1, e + 5) + dist(e + 2, e + 4)) / (2 * dist(e, e + 3) + 1e-6)

    cheeks = np.concatenate([_patch(lab, (p[3] + p[31]) / 2 + (p[31] - p[3]) * 0.1, 0.12 * iod),
                             _patch(lab, (p[13] + p[35]) / 2 + (p[35] - p[13]) * 0.1, 0.12 * iod)])
    skin_l, _, skin_b = _median(cheeks)
    brow_y = float(p[17:27, 1].mean())
    hair_lab, hair_share = _hair(lab, np.array(_median(cheeks)), eye_r[0] - 0.2 * iod, eye_l[0] + 0.2 * iod,
                                 brow_y - 0.3 * iod, 0.3 * iod)
    chin = np.concatenate([_patch(lab, (p[57] + p[8]) / 2, 0.15 * iod), _patch(lab, (p[5] + p[48]) / 2, 0.12 * iod),
                           _patch(lab, (p[11] + p[54]) / 2, 0.12 * iod)])
    moustache = _patch(lab, (p[33] + p[51]) / 2, 0.1 * iod)
    eyes = np.concatenate([_patch(lab, eye_r, 0.22 * iod), _patch(lab, eye_l, 0.22 * iod)])
    # a frame across the nose bridge: the vertical brightness change there, against the forehead's
    bridge_y, bridge_x = float(p[27, 1]), float(p[27, 0])
    r = max(2, int(round(0.12 * iod)))

    def vertical_edge(cx, cy):
        block = grey[max(0, int(cy) - r):int(cy) + r + 1, max(0, int(cx) - r):int(cx) + r + 1]
        return float(np.abs(np.diff(block, axis=0)).mean()) if block.shape[0] > 1 else 0.0

    eye_y = float((eye_r[1] + eye_l[1]) / 2)

    def row_edges(y0, y1):  # mean vertical brightness change over both eyes' width, rows y0..y1 (iod below the eyes)
        block = grey[max(0, int(eye_y + y0 * iod)):int(eye_y + y1 * iod) + 1, max(0, int(p[36, 0] - 0.15 * iod)):int(p[45, 0] + 0.15 * iod) + 1]
        return float(np.abs(np.diff(block, axis=0)).mean()) if block.shape[0] > 1 and block.size else 0.0

    h, w = image.shape[:2]
    corner = max(2, int(0.08 * min(h, w)))
    background = np.concatenate([lab[:corner, :corner].reshape(-1, 3), lab[:corner, -corner:].reshape(-1, 3)])
    return {
        "iod_px": iod,
        "face_fraction": float(np.linalg.norm(p[16] - p[0])) / w,  # jaw width: the detector box comes in fixed scale steps
        "yaw": float(p[30, 0] - eyes_mid[0]) / iod,
        "mouth_open": (dist(61, 67) + dist(62, 66) + dist(63, 65)) / 3,
        "mouth_width": dist(48, 54),
        "smile_lift": float((p[51, 1] + p[57, 1]) / 2 - (p[48, 1] + p[54, 1]) / 2) / iod,
        "eyes_open": (eye_aspect(36) + eye_aspect(42)) / 2,
        "skin_lab": _median(cheeks),
        "skin_ita": float(np.degrees(np.arctan2(skin_l - 50, skin_b))),
        "hair_lab": hair_lab,  # None: no hair-coloured pixels above the forehead (cropped off, bald)
        "hair_share": hair_share,
        "chin_dark": skin_l - _median(chin)[0],
        "moustache_dark": skin_l - _median(moustache)[0],
        "eyes_dark": skin_l - _median(eyes)[0],
        "bridge_edge": vertical_edge(bridge_x, bridge_y) - vertical_edge(bridge_x, brow_y - 0.5 * iod),
        "rim_edge": row_edges(0.25, 0.5) - row_edges(0.65, 0.9),  # a lens rim under the eyes, against the cheeks
        "background_lab": _median(background),
    }
