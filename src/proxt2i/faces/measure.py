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


def measure(image: np.ndarray, face: Face) -> dict:
    """The measurements the attribute rules read (attributes.py), of `face` in `image` (uint8 RGB, the
    coordinates the face was found in). Readers that failed the hand check (hair colour, skin tone) are gone;
    docs/photofaces.md says what they measured."""
    p = face.landmarks
    eye_r, eye_l = p[36:42].mean(0), p[42:48].mean(0)
    iod = float(np.linalg.norm(eye_l - eye_r)) or 1.0
    lab = lab_image(image)
    grey = lab[..., 0]

    def dist(a, b):
        return float(np.linalg.norm(p[a] - p[b])) / iod

    cheeks = np.concatenate([_patch(lab, (p[3] + p[31]) / 2 + (p[31] - p[3]) * 0.1, 0.12 * iod),
                             _patch(lab, (p[13] + p[35]) / 2 + (p[35] - p[13]) * 0.1, 0.12 * iod)])
    skin = _median(cheeks)
    moustache = _patch(lab, (p[33] + p[51]) / 2, 0.1 * iod)
    # a frame across the nose bridge: the vertical brightness change there, against the forehead's
    brow_y, bridge_y, bridge_x = float(p[17:27, 1].mean()), float(p[27, 1]), float(p[27, 0])
    r = max(2, int(round(0.12 * iod)))

    def vertical_edge(cx, cy):
        block = grey[max(0, int(cy) - r):int(cy) + r + 1, max(0, int(cx) - r):int(cx) + r + 1]
        return float(np.abs(np.diff(block, axis=0)).mean()) if block.shape[0] > 1 else 0.0

    h, w = image.shape[:2]
    corner = max(2, int(0.08 * min(h, w)))
    background = np.concatenate([lab[:corner, :corner].reshape(-1, 3), lab[:corner, -corner:].reshape(-1, 3)])
    return {
        "iod_px": iod,
        "face_fraction": float(np.linalg.norm(p[16] - p[0])) / w,  # jaw width: the detector box comes in fixed scale steps
        "yaw": float(p[30, 0] - (eye_r[0] + eye_l[0]) / 2) / iod,
        "mouth_open": (dist(61, 67) + dist(62, 66) + dist(63, 65)) / 3,
        "skin_lab": skin,
        "moustache_dark": skin[0] - _median(moustache)[0],
        "bridge_edge": vertical_edge(bridge_x, bridge_y) - vertical_edge(bridge_x, brow_y - 0.5 * iod),
        "background_lab": _median(background),
    }
