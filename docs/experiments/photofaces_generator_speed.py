"""Seconds per 1024 px PhotoFaces frame from the MobileStyleGAN synthesis network on CPU, by OpenVINO
performance hint, inference precision and batch size (the input reshaped to [N, 512]).

    python docs/experiments/photofaces_generator_speed.py --threads 2 --repeats 3

Prints one JSON object. Run it on an idle machine: it measures wall time.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None) -> int:
    import openvino as ov

    from proxt2i.data.photofaces import generator_files

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    _, synthesis_xml = generator_files()
    core = ov.Core()
    core.set_property("CPU", {"INFERENCE_NUM_THREADS": args.threads})
    rows = []
    for hint, precision, batch in [("LATENCY", "f32", 1), ("THROUGHPUT", "f32", 1), ("LATENCY", "bf16", 1),
                                   ("LATENCY", "f16", 1), ("LATENCY", "f32", 4)]:
        model = core.read_model(str(synthesis_xml))
        model.reshape([batch, 512])
        try:
            compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": precision})
        except RuntimeError as err:  # a precision this CPU cannot run
            rows.append({"hint": hint, "precision": precision, "batch": batch, "error": str(err).splitlines()[0]})
            continue
        request = compiled.create_infer_request()
        w = np.random.default_rng(0).standard_normal((batch, 512)).astype(np.float32)
        request.infer({0: w})  # the first call allocates
        start = time.perf_counter()
        for _ in range(args.repeats):
            request.infer({0: w})
        seconds = (time.perf_counter() - start) / args.repeats / batch
        rows.append({"hint": hint, "precision": precision, "batch": batch, "seconds_per_frame": round(seconds, 3)})
    print(json.dumps({"threads": args.threads, "repeats": args.repeats, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
