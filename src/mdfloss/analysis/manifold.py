r"""What a discriminator pyramid separates (paper, section 6 and appendix Figs. 10 and 11).

Every photo crop is shown in four versions (:data:`VERSIONS`): the original, JPEG (quality
drawn from [7, 10]), blurred (x4 bilinear down and up) and pyramid-permuted
(:func:`mdfloss.seeds.synthetic.pyramid_permutation`). For each discriminator ``k`` of a loss,
an image's **descriptor** is the spatial mean of every channel of every compared feature map
(the paper averages across the feature maps); the loss's descriptor is the concatenation over
its discriminators. Then, per loss and per discriminator:

* **separability**: the 5-fold cross-validated accuracy of a linear classifier (logistic
  regression on standardised descriptors) telling each distorted version from the originals
  (0.5 = chance, 1 = perfectly separated; folds keep every version of a photo together);
* **t-SNE** of the loss's descriptors in 2-D and 3-D, coloured by version: a picture, not a
  measurement, so the accuracy table is what to read.

A GAN's discriminator (``discriminator.safetensors`` of a ``mdfloss bench`` GAN run, paper Fig. 11)
is described the same way by its last feature maps (:class:`GANFeatures`), as one "scale".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._files import read_rgb

VERSIONS = ("original", "jpeg", "blur", "permuted")
JPEG_QUALITIES = (7, 10)
BLUR_FACTOR = 4


@dataclass
class Descriptors:
    """The descriptors of one loss: ``per_scale[k]`` (images, features) and the version and photo of each row."""

    per_scale: dict[int, np.ndarray]
    versions: list[str]
    photos: list[int]

    @property
    def whole(self) -> np.ndarray:
        """The concatenation over the discriminators: (images, all features)."""
        return np.concatenate([self.per_scale[k] for k in sorted(self.per_scale)], axis=1)


def photo_crops(path: object, size: int, count: int) -> list[torch.Tensor]:
    """Up to ``count`` non-overlapping ``size`` px crops of a photo, row by row from the top left: (3, S, S)."""
    import numpy as np

    pixels = torch.from_numpy(read_rgb(path).astype(np.float32) / 255).permute(2, 0, 1)
    height, width = pixels.shape[-2:]
    corners = [(top, left) for top in range(0, height - size + 1, size) for left in range(0, width - size + 1, size)]
    return [pixels[:, top:top + size, left:left + size] for top, left in corners[:count]]


class GANFeatures(torch.nn.Module):
    """A GAN discriminator's body as a feature extractor with the interface :func:`descriptors` uses."""

    def __init__(self, discriminator: torch.nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator.eval().requires_grad_(False)

    @torch.no_grad()
    def feature_maps(self, images: torch.Tensor) -> dict[int, list[torch.Tensor]]:
        """``{0: [the last feature maps]}`` of (N, 3, H, W) images in [0, 1]."""
        return {0: [self.discriminator.body(images)]}


def four_versions(image: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """``{version: (3, H, W) in [0, 1]}`` of one crop; H and W divisible by :data:`BLUR_FACTOR`."""
    import torch.nn.functional as F

    from ..functional import jpeg_roundtrip_uint8
    from ..seeds.synthetic import pyramid_permutation

    quality = int(torch.randint(JPEG_QUALITIES[0], JPEG_QUALITIES[1] + 1, (), generator=generator))
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    jpeg = torch.from_numpy(jpeg_roundtrip_uint8(pixels, quality).astype(np.float32) / 255).permute(2, 0, 1)
    height, width = image.shape[-2:]
    small = F.interpolate(image[None], size=(height // BLUR_FACTOR, width // BLUR_FACTOR), mode="bilinear",
                          align_corners=False)
    blur = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)[0]
    permuted = pyramid_permutation(image.double(), generator).float()
    return {"original": image.float(), "jpeg": jpeg, "blur": blur.clamp(0, 1), "permuted": permuted}


def descriptors(loss: torch.nn.Module, crops: list[torch.Tensor], generator: torch.Generator) -> Descriptors:
    """The descriptors of ``loss`` (an :class:`mdfloss.MDFLoss`) for the four versions of every crop."""
    per_scale: dict[int, list[np.ndarray]] = {}
    versions, photos = [], []
    for index, crop in enumerate(crops):
        for version, image in four_versions(crop, generator).items():
            maps = loss.feature_maps(image[None].to(next(loss.parameters())))
            for k, features in maps.items():
                means = torch.cat([f.mean(dim=(2, 3))[0] for f in features])
                per_scale.setdefault(k, []).append(means.double().cpu().numpy())
            versions.append(version)
            photos.append(index)
    return Descriptors({k: np.stack(rows) for k, rows in per_scale.items()}, versions, photos)


def separability(features: np.ndarray, versions: list[str], photos: list[int], distorted: str,
                 folds: int = 5) -> float:
    """Cross-validated accuracy of a linear classifier telling ``distorted`` from ``original`` rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = [i for i, version in enumerate(versions) if version in ("original", distorted)]
    labels = np.array([versions[i] == distorted for i in rows], dtype=int)
    groups = np.array([photos[i] for i in rows])
    folds = min(folds, len(set(groups)))
    if folds < 2:
        raise ValueError(f"images: expected at least 2 photos for cross-validation, got {len(set(groups))}")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    scores = cross_val_score(model, features[rows], labels, groups=groups, cv=GroupKFold(n_splits=folds))
    return float(scores.mean())


def embed(features: np.ndarray, dimensions: int, seed: int = 0) -> np.ndarray:
    """t-SNE of standardised ``features``: (images, dimensions)."""
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    perplexity = max(2.0, min(30.0, (features.shape[0] - 1) / 3))
    return TSNE(n_components=dimensions, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        StandardScaler().fit_transform(features))
