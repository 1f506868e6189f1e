"""``mdfloss analyze manifold``: how well each loss's features separate distorted from original crops."""

from __future__ import annotations

import argparse

SEPARABILITY_CSV, SEPARABILITY_MD = "separability.csv", "separability.md"


def run(args: argparse.Namespace) -> int:
    import torch

    from ..._files import list_images
    from ...loss import MDFLoss
    from ...losses import build_loss
    from ...losses.spec import loss_label, loss_spec
    from ...runtime import resolve_device
    from .. import report
    from ..manifold import VERSIONS, GANFeatures, descriptors, photo_crops, separability

    device = resolve_device(args.device, "--device")
    if not args.loss and not args.discriminator:
        raise ValueError("--loss / --discriminator: expected at least one MDF loss or GAN discriminator, got none")
    losses = {}
    for text in args.loss:
        spec = loss_spec(text)
        loss = build_loss(spec, device=device)
        if not isinstance(loss, MDFLoss):
            raise ValueError(f"--loss: expected an MDF loss (a name, a .safetensors or a Ds_*.pth), got {text!r}")
        losses[loss_label(spec)] = loss
    if args.discriminator:
        from ...bench.gan import load_discriminator

        for path in args.discriminator:
            losses[f"gan:{path.parent.name}"] = GANFeatures(load_discriminator(path, device))
    paths = [path for folder in args.images for path in list_images(folder, "--images")]
    crops, photos = [], []
    for index, path in enumerate(paths):
        for crop in photo_crops(path, args.crop - args.crop % 4, args.crops_per_image):
            crops.append(crop)
            photos.append(index)
    if len(set(photos)) < 2:
        raise ValueError(f"--images: expected at least 2 photos of at least {args.crop} px, found {len(set(photos))}")
    rows, embedded = [], {}
    for label, loss in losses.items():
        found = descriptors(loss, crops, torch.Generator().manual_seed(args.seed))
        found.photos = [photos[i] for i in found.photos]
        for scale, features in [("all", found.whole), *sorted(found.per_scale.items())]:
            for version in VERSIONS[1:]:
                rows.append({"loss": label, "scale": scale, "version": version,
                             "accuracy": separability(features, found.versions, found.photos, version)})
        embedded[label] = found
    written = [report.write_separability(args.out / SEPARABILITY_CSV, rows),
               report.write_text(args.out / SEPARABILITY_MD, report.separability_markdown(
                   args.command_line, rows, len(set(photos)), len(crops)))]
    for label, found in embedded.items():
        written += report.tsne_plots(args.out, label, found, args.seed)
    print("wrote " + ", ".join(str(path) for path in written))
    return 0
