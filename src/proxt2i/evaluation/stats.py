"""Distribution metrics over feature vectors: Frechet distance and k-NN precision / recall.

Frechet distance between Gaussians fitted to two feature sets (FID, Heusel et al. 2017):
    FD = ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2).
The trace term is computed from the eigenvalues of the symmetric PSD matrix S1^1/2 S2 S1^1/2, which
equal those of S1 S2, so no non-symmetric matrix square root (and no imaginary parts) is needed.

Precision / recall (Kynkaanniemi et al. 2019, "Improved precision and recall"): each set is a union
of balls around its points, radius = distance to the k-th nearest neighbour in the same set.
Precision = fraction of generated points inside the reference manifold; recall = fraction of
reference points inside the generated manifold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class GaussianStats:
    """mean [F] and covariance [F, F] (float64) of n feature vectors."""

    mean: np.ndarray
    cov: np.ndarray
    n: int


def gaussian_stats(features: np.ndarray | torch.Tensor) -> GaussianStats:
    """[N, F] -> GaussianStats, unbiased covariance (N >= 2)."""
    x = np.asarray(features.detach().float().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need features [N >= 2, F], got shape {x.shape}")
    return GaussianStats(x.mean(0), np.cov(x, rowvar=False), x.shape[0])


def psd_sqrt(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix (negative eigenvalues from round-off clipped to 0)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """Frechet distance between N(a.mean, a.cov) and N(b.mean, b.cov); >= 0, 0 iff equal."""
    s1 = psd_sqrt(a.cov)
    m = s1 @ b.cov @ s1
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    d = float(np.sum((a.mean - b.mean) ** 2) + np.trace(a.cov) + np.trace(b.cov) - 2 * tr_sqrt)
    return max(d, 0.0)


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """[N, F] -> [N], the distance of each point to its k-th nearest other point."""
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the point itself at distance 0


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """k-NN manifold precision and recall of fake [M, F] against real [N, F]; both in [0, 1].
    Needs N, M > k. Use equal N and M: the radii shrink as a set grows."""
    if real.shape[0] <= k or fake.shape[0] <= k:
        raise ValueError(f"precision/recall needs more than k={k} points per set")
    real, fake = real.double(), fake.double()
    d = torch.cdist(fake, real)  # [M, N]
    precision = (d <= knn_radii(real, k)[None, :]).any(1).double().mean()
    recall = (d <= knn_radii(fake, k)[:, None]).any(0).double().mean()
    return float(precision), float(recall)
