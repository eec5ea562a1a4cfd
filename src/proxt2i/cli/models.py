"""`proxt2i models`: the shipped models, their size, parameters and training recipe."""

from __future__ import annotations

import json

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"models": "list shipped models (size, parameters, training recipe)"}


def register(sub) -> None:
    p = sub.add_parser("models", help=COMMANDS["models"],
                       description="List the models shipped inside the package, addressable by name with --model.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..shipped import ASSETS, DEFAULT_MODEL, SHIPPED
    from ..training.recipe import recipe_stages

    rows = []
    for name, info in SHIPPED.items():
        path = ASSETS / name
        row = {"name": name, "default": name == DEFAULT_MODEL, "about": info["about"], "built": (path / "config.json").exists(),
               "rebuild": info["rebuild"]}
        if row["built"]:
            from safetensors import safe_open

            cfg = json.loads((path / "config.json").read_text())
            params = 0
            for f in path.glob("*.safetensors"):
                with safe_open(str(f), "pt") as sf:
                    params += sum(_prod(sf.get_slice(k).get_shape()) for k in sf.keys())
            row.update(size_mb=round(sum(f.stat().st_size for f in path.iterdir()) / 1e6, 2), parameters=params,
                       objective=cfg["objective"], image_size=cfg["image_size"], recipe=cfg.get("recipe", {}))
        rows.append(row)
    if args.json:
        print(json.dumps({"models": rows}))
        return 0
    for r in rows:
        flag = " (default)" if r["default"] else ""
        print(f"{r['name']}{flag}: {r['about']}")
        if r["built"]:
            stages = recipe_stages(r["recipe"])  # the runs a model was initialised or fine-tuned from, oldest first
            training = [st for st in stages if "finetune" not in st] or [{}]
            steps = " + ".join(str(st.get("steps", "?")) for st in training)
            wall = " + ".join(str(st.get("wall_seconds", "?")) for st in training)
            print(f"  {r['size_mb']} MB, {r['parameters'] / 1e6:.2f}M parameters (U-ViT + text encoder + VAE), {r['image_size']} px, "
                  f"{steps} steps x batch {training[-1].get('config', {}).get('batch', '?')}, wall {wall} s")
            for st in stages:
                if "finetune" in st:
                    ft = st["finetune"]
                    print(f"  fine-tuned: {ft.get('algorithm')}, {st.get('steps_done')} iterations x "
                          f"{ft.get('prompts_per_step', 0) * ft.get('group', 0)} images, reward {ft.get('reward')}, "
                          f"{ft.get('num_steps')}-step {ft.get('chain')} chain, wall {st.get('wall_seconds')} s")
            decoder = next((st["autoencoder"] for st in reversed(stages) if st.get("autoencoder")), None)
            if decoder:  # a decoder put in afterwards (proxt2i export --autoencoder)
                print(f"  decoder: {decoder.get('recipe', {}).get('command', decoder.get('from'))}")
        else:
            print("  not built in this checkout")
        print(f"  rebuild: {r['rebuild']}")
    return 0


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n
