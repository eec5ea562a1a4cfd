"""`proxt2i info`: U-ViT presets and their parameter counts."""

from __future__ import annotations

import json

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"info": "list U-ViT presets with parameter counts"}


def register(sub) -> None:
    p = sub.add_parser("info", help=COMMANDS["info"],
                       description="Show every named U-ViT preset (from the CPU 'tiny' to the paper's ~500M) and its parameter count.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from .. import __version__
    from ..models import UVIT_PRESETS, UViT, count_parameters

    rows = []
    for name, cfg in UVIT_PRESETS.items():
        with torch.device("meta"):  # count without allocating
            n = count_parameters(UViT(cfg))
        rows.append({"preset": name, "parameters": n, **cfg.to_dict()})
    if args.json:
        print(json.dumps({"version": __version__, "uvit_presets": rows}))
        return 0
    print(f"proxt2i {__version__}\n")
    print(f"{'preset':<10} {'params':>9}  {'latent':>10}  {'patch':>5}  {'width':>5}  {'depth':>5}  {'heads':>5}")
    for r in rows:
        latent = f"{r['in_channels']}x{r['image_size']}x{r['image_size']}"
        print(f"{r['preset']:<10} {r['parameters'] / 1e6:>8.1f}M  {latent:>10}  {r['patch_size']:>5}  {r['width']:>5}  {r['depth']:>5}  {r['heads']:>5}")
    return 0
