"""Markdown tables of scale-check records (OUT/scale_check.json of `proxt2i scale-check`), as in docs/scale.md.

    python docs/experiments/scale_table.py RUN/scale_check.json [MORE.json ...]
"""

import json
import sys


def tables(record: dict) -> str:
    cfg = record["config"]
    head = (f"**{cfg['preset']}**, t5={cfg['t5']}, batch {cfg['batch']}, on {record['device']} "
            f"({record['machine']['cuda'] or str(record['machine']['cpu_threads']) + ' CPU threads'}), {record['dtype']}\n")
    rows = ["| component | class | parameters | dtype | folder GiB |", "|---|---|---:|---|---:|"]
    for name, c in record["components"].items():
        rows.append(f"| {name} | {c['class']} | {c['parameters'] / 1e6:,.1f} M | {c['dtype']} | {c['folder_gib']} |")
    rows.append(f"| U-ViT ({cfg['model'] or 'preset'}, {record['uvit_tokens']} tokens) | UViT | {record['parameters']['uvit'] / 1e6:,.1f} M | "
                f"float32 (trained) | |")
    stage_rows = ["| stage | seconds | peak memory GiB | what |", "|---|---:|---:|---|"]
    for name, s in record["stages"].items():
        mem = s.get("peak_cuda_gib", s["peak_rss_gib"])
        what = {"train": lambda: f"seconds per step {s['seconds_per_step']}",
                "resume": lambda: f"bit-exact: {s['bit_exact']} (model, EMA, optimizer)",
                "generate": lambda: f"{s['seconds_per_image']} s per image (4 steps, {s['network_passes']} network passes, {s['image'][1]} px)",
                "grpo": lambda: f"one iteration, group {s['group']}: {s['iteration_seconds']} s",
                "export": lambda: f"model folder {s['gib']} GiB",
                "build": lambda: f"built {', '.join(s['built']) or 'none'}",
                "data": lambda: f"{s['images']} images, {s['shards']} shards"}.get(name, lambda: "")()
        stage_rows.append(f"| {name} | {s['seconds']} | {mem} | {what} |")
    e = record["estimate_gib"]
    est = (f"Estimate before allocating: {e['total']} GiB (U-ViT training state {e['uvit_training_state']}, frozen weights "
           f"{e['frozen_weights']}, activations {e['activations']}).")
    return "\n".join([head, *rows, "", *stage_rows, "", est, ""])


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(tables(json.load(open(path))))
