"""What the PhotoFaces evaluator can read back at the model's resolution: the alignment ceiling.

    python docs/experiments/photofaces_ceiling.py --images data/photofaces-curated --model runs/photofaces-prox-stage2/final \
        --num 256 --reference-num 256 --out docs/photofaces/ceiling.json

Curated images carry captions written by the face readers at the curated size, so read back as they are they
score alignment 1 by construction. A model trained at 64 px through a VAE can do no better than the same images
taken down to 64 px, and through its VAE. This scores, with their own captions and against reference images
that are not among them (the first --reference-num records are the reference, the next --num the test):

- `curated`: the images at their curated size;
- `resized`: downsampled to the model's image size (Lanczos), as the training pipeline sees them;
- `vae`: `resized`, encoded and decoded by the model folder's autoencoder (the posterior mean).

Prints one JSON object (also written to --out) with the evaluator's numbers per condition, including per family
the alignment, the share of named images whose reading was sure (unsure reads count as misses in alignment) and
the alignment over the sure readings.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None) -> int:
    import torch
    from PIL import Image

    from proxt2i.atomic import atomic_write_json
    from proxt2i.evaluation.photo import descriptors, evaluate_photo_images, parse_prompts, read_all, read_images
    from proxt2i.faces import FaceReader
    from proxt2i.imaging import to_uint8_images
    from proxt2i.models.io import load_model_folder

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", required=True, help="curated PhotoFaces images with their captions (webdataset or imagefolder)")
    p.add_argument("--model", required=True, help="a PhotoFaces model folder: its image size and autoencoder are used")
    p.add_argument("--num", type=int, default=256, help="test images, after the reference ones")
    p.add_argument("--reference-num", type=int, default=256)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    images, captions = read_images(args.images, args.reference_num + args.num)
    if len(images) <= args.reference_num + 1:
        raise SystemExit(f"{args.images}: {len(images)} images, need more than --reference-num ({args.reference_num})")
    reader = FaceReader()
    real = descriptors(read_all(reader, images[:args.reference_num]))
    test, test_captions = images[args.reference_num:], captions[args.reference_num:]
    targets = parse_prompts(test_captions)
    folder = load_model_folder(args.model)
    size = int(folder.config["image_size"])

    resized = [np.asarray(Image.fromarray(im).resize((size, size), Image.LANCZOS)) for im in test]
    with torch.no_grad():
        x = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float() / 255
        decoded = torch.cat([folder.autoencoder.decode(folder.autoencoder.encode(b)) for b in x.split(32)])
    vae = list(to_uint8_images(decoded))

    result = {"images": args.images, "model": args.model, "image_size": size, "n": len(test), "conditions": {}}
    for name, imgs in (("curated", test), ("resized", resized), ("vae", vae)):
        t = time.time()
        scores = evaluate_photo_images(imgs, test_captions, real, reader, targets)
        result["conditions"][name] = {**{k: scores[k] for k in ("face_rate", "fd", "precision", "recall", "alignment",
                                                                 "alignment_all", "alignment_per_family", "sure_per_family",
                                                                 "alignment_when_sure_per_family")},
                                      "seconds": round(time.time() - t, 1)}
    atomic_write_json(args.out, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
