"""proxt2i serve: the API contract, batching equivalence, bad requests, queue, auth, metrics and the CLI's safety."""

import asyncio
import base64
import io
import threading

import pytest

pytest.importorskip("fastapi")  # the serve extra; the test extra installs it, so CI always runs these
import httpx
from fastapi.testclient import TestClient
from PIL import Image

from proxt2i.cli import main
from proxt2i.pipeline import ProxT2IPipeline
from proxt2i.serve import create_app

MODEL = "synthfaces-prox"
URL = "/v1/images/generations"


@pytest.fixture(scope="module")
def pipe():
    return ProxT2IPipeline.from_pretrained(MODEL)


@pytest.fixture(scope="module")
def client(pipe):
    with TestClient(create_app(MODEL, pipeline=pipe, max_batch=4, max_wait_ms=5)) as c:
        yield c


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


async def in_app(app, work):
    """Run `work(client)` against `app` with its lifespan (the batcher) started, many requests concurrently."""
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            return await work(c)


def test_contract(client):
    r = client.post(URL, json={"prompt": "a smiling woman with long red hair", "n": 2, "steps": 2, "seed": 3, "size": "32x32"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [sorted(d) for d in body["data"]] == [["b64_json", "revised_prompt"]] * 2
    assert all(decode(d["b64_json"]).size == (32, 32) for d in body["data"])
    assert body["seed"] == 3 and body["steps"] == 2 and body["sampler"] == "pda-hybrid"
    assert client.get("/v1/models").json()["data"][0] == {"id": MODEL, "object": "model", "owned_by": "proxt2i",
                                                         "size": "32x32", "objective": "prox"}
    assert client.get("/healthz").json()["status"] == "ok"
    page = client.get("/")
    assert page.status_code == 200 and "<form" in page.text and "http" not in page.text.split("<script>")[1]  # nothing fetched from elsewhere
    unicode = client.post(URL, json={"prompt": "a smiling person with red hair and a zorblax 😀 ünïcode", "steps": 1})
    assert unicode.status_code == 200 and "zorblax" in unicode.json()["warnings"][0]  # unknown words are named, not refused


def test_batched_requests_return_exactly_the_lone_images(pipe):
    app = create_app(MODEL, pipeline=pipe, max_batch=4, max_wait_ms=500)
    asks = [{"prompt": "a smiling man with a beard", "n": 2, "steps": 2, "seed": 10},
            {"prompt": "a sad woman wearing glasses", "n": 1, "steps": 2, "seed": 7},
            {"prompt": "a person with red hair", "n": 1, "steps": 2, "seed": 11}]

    async def together(c):
        answers = await asyncio.gather(*[c.post(URL, json=a) for a in asks])
        return [r.json() for r in answers], app.state.batcher.batches_run

    async def alone(c):
        out = []
        for a in asks:
            out.append((await c.post(URL, json=a)).json())
        lone_seed = await c.post(URL, json={**asks[0], "n": 1, "seed": 11})  # image 1 of asks[0] uses seed 10 + 1
        return out, lone_seed.json(), app.state.batcher.batches_run

    batched, runs = asyncio.run(in_app(app, together))
    assert runs == 1  # all four images in one network batch
    app = create_app(MODEL, pipeline=pipe, max_batch=4, max_wait_ms=0)
    lone, lone_seed, runs = asyncio.run(in_app(app, alone))
    assert runs == 4
    images = lambda answer: [d["b64_json"] for d in answer["data"]]  # noqa: E731
    assert [images(a) for a in batched] == [images(a) for a in lone]  # the PNG bytes, bit for bit
    assert images(lone_seed) == images(batched[0])[1:]
    assert images(batched[0])[1] != images(batched[2])[0]  # same seed, other prompt: another image
    # and the offline pipeline (other batch shapes round differently in the last bits) agrees to one grey level
    import numpy as np

    offline = pipe([asks[1]["prompt"]], num_steps=2, seed=7)[0]
    assert np.abs(np.asarray(offline, dtype=int) - np.asarray(decode(images(lone[1])[0]), dtype=int)).max() <= 1


LONG = "a person " * 223  # 2007 characters
BAD = [
    (b"{", 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"\xff\xfe", 400, "not UTF-8"),
    ({}, 422, "prompt is required"),
    ({"prompt": 5}, 422, "prompt must be a string"),
    ({"prompt": "   "}, 422, "empty prompt"),
    ({"prompt": LONG}, 422, "too long"),
    ({"prompt": "a face", "n": 0}, 422, "n must be in 1..8"),
    ({"prompt": "a face", "n": 9}, 422, "n must be in 1..8"),
    ({"prompt": "a face", "n": 10**9}, 422, "n must be in 1..8"),
    ({"prompt": "a face", "n": "2"}, 422, "n must be an integer"),
    ({"prompt": "a face", "n": True}, 422, "n must be an integer"),
    ({"prompt": "a face", "steps": 51}, 422, "steps must be in 1..50"),
    ({"prompt": "a face", "steps": 0}, 422, "steps must be in 1..50"),
    ({"prompt": "a face", "steps": 2.5}, 422, "steps must be an integer"),
    ({"prompt": "a face", "guidance": -1}, 422, "guidance must be"),
    ({"prompt": "a face", "guidance": "high"}, 422, "guidance must be"),
    ({"prompt": "a face", "seed": -1}, 422, "seed must be in"),
    ({"prompt": "a face", "size": "64x64"}, 422, "size must be '32x32'"),
    ({"prompt": "a face", "size": "1024x1024"}, 422, "size must be '32x32'"),
    ({"prompt": "a face", "response_format": "url"}, 422, "response_format must be \"b64_json\""),
    ({"prompt": "a face", "colour": "red"}, 422, "unknown field 'colour'"),
    ({"prompt": "a face", "sampler": "nope"}, 422, "unknown sampler 'nope'"),
    ({"prompt": "a face", "sampler": "euler-maruyama-denoise"}, 422, "needs a score model"),
    ({"prompt": "a face", "time_grid": "bogus"}, 422, "bogus"),
    ({"prompt": "a face", "time_grid": 3}, 422, "must be strings"),
    (b'{"prompt": "' + b"a" * 70000 + b'"}', 413, "too large"),
]


@pytest.mark.parametrize("body, code, fragment", BAD, ids=[f"{c}-{f[:20]}" for _, c, f in BAD])
def test_bad_request_is_one_line_with_its_code(client, body, code, fragment):
    r = client.post(URL, content=body, headers={"content-type": "application/json"}) if isinstance(body, bytes) else client.post(URL, json=body)
    assert r.status_code == code, r.text
    error = r.json()["error"]
    assert fragment in error["message"] and "\n" not in error["message"] and "Traceback" not in r.text
    assert set(r.json()) == {"error"} and error["type"]


def test_unknown_paths_and_methods_are_json_errors(client):
    assert client.get("/nope").json() == {"error": {"message": "Not Found", "type": "not_found"}}
    r = client.get(URL)
    assert r.status_code == 405 and r.json()["error"]["message"] == "Method Not Allowed"


class Gate:
    """Holds the worker thread inside its batch until released, to fill the queue deterministically."""

    def __init__(self, batcher):
        self.entered, self.release, self.real = threading.Event(), threading.Event(), batcher._run_batch
        batcher._run_batch = self

    def __call__(self, requests):
        self.entered.set()
        assert self.release.wait(30)
        return self.real(requests)


def test_full_queue_is_429_with_retry_after_and_dropped_clients_are_not_computed(pipe):
    app = create_app(MODEL, pipeline=pipe, max_batch=1, max_wait_ms=0, max_queue=2)

    async def work(c):
        batcher = app.state.batcher
        gate = Gate(batcher)
        ask = {"prompt": "a smiling man", "steps": 1}
        running = asyncio.ensure_future(c.post(URL, json=ask))
        await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 30)
        waiting = [asyncio.ensure_future(c.post(URL, json=ask)) for _ in range(2)]
        while batcher.depth < 2:
            await asyncio.sleep(0.01)

        async def gone():
            return True

        from proxt2i.serve.validation import parse_generation

        full = await c.post(URL, json=ask)
        gate.release.set()
        answers = [await running] + [await w for w in waiting]
        # a request whose client has gone is dropped before its batch runs
        batcher._run_batch = gate
        gate.entered.clear(), gate.release.clear()
        blocker = asyncio.ensure_future(c.post(URL, json=ask))
        await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 30)
        left = batcher.submit(parse_generation(ask, objective="prox", image_size=32), gone)
        runs = batcher.batches_run
        gate.release.set()
        await blocker
        with pytest.raises(asyncio.CancelledError):
            await left
        metrics = (await c.get("/metrics")).text
        return full, answers, batcher.batches_run - runs, metrics

    full, answers, extra_runs, metrics = asyncio.run(in_app(app, work))
    assert full.status_code == 429 and full.headers["retry-after"] == "1" and "queue is full" in full.json()["error"]["message"]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert extra_runs == 0 and "proxt2i_dropped_total 1.0" in metrics


def test_a_request_past_its_timeout_is_answered_and_not_computed(pipe):
    app = create_app(MODEL, pipeline=pipe, max_batch=1, max_wait_ms=0, timeout_s=0.2)

    async def work(c):
        gate = Gate(app.state.batcher)
        first = asyncio.ensure_future(c.post(URL, json={"prompt": "a man", "steps": 1}))
        await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 30)
        late = await c.post(URL, json={"prompt": "a woman", "steps": 1})  # waits behind the held batch, past 0.2 s
        gate.release.set()
        return late, await first

    late, first = asyncio.run(in_app(app, work))
    assert late.status_code == 504 and "longer than 0.2 s" in late.json()["error"]["message"]
    assert first.status_code == 504  # the held one too; the server stays up and answers the next


def test_api_key(pipe):
    with TestClient(create_app(MODEL, pipeline=pipe, api_key="s3cret", max_wait_ms=0)) as c:
        ask = {"prompt": "a smiling man", "steps": 1}
        assert c.post(URL, json=ask).status_code == 401
        wrong = c.post(URL, json=ask, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "API key" in wrong.json()["error"]["message"]
        assert c.get("/v1/models").status_code == 401 and c.get("/metrics").status_code == 401
        assert c.post(URL, json=ask, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200  # no secrets there


def test_metrics(client):
    client.post(URL, json={"prompt": "a smiling man", "steps": 1})
    client.post(URL, json={"prompt": ""})
    text = client.get("/metrics").text
    for name in ["proxt2i_queue_depth", "proxt2i_batch_images_bucket", "proxt2i_request_seconds_bucket",
                 'proxt2i_errors_total{kind="invalid_request_error"}', 'proxt2i_requests_total{code="200"}']:
        assert name in text, name


def test_cli_binds_loopback_and_refuses_a_remote_host_without_the_flag(monkeypatch, capsys):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    monkeypatch.delenv("PROXT2I_API_KEY", raising=False)
    assert main(["serve", "--model", MODEL]) == 0
    assert calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 8000
    for argv, fragment in [(["--host", "0.0.0.0"], "--allow-remote"), (["--host", "10.0.0.2", "--allow-remote"], "API key")]:
        assert main(["serve", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and fragment in err, err
    monkeypatch.setenv("PROXT2I_API_KEY", "k")
    assert main(["serve", "--model", MODEL, "--host", "0.0.0.0", "--allow-remote"]) == 0 and calls[-1]["host"] == "0.0.0.0"


def test_missing_serve_extra_is_one_line(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'proxt2i[serve]'" in err and len(err.strip().splitlines()) == 1


def test_load_benchmark_runs_and_reports(capsys):
    import json

    from proxt2i.serve.bench import main as bench

    assert bench(["--clients", "3", "--requests", "6", "--duration", "30", "--steps", "1", "--max-batch", "3", "--max-wait-ms", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    for mode in ("batching_on", "batching_off"):
        assert out[mode]["ok"] == out[mode]["answered"] >= 6 and out[mode]["errors_5xx"] == 0
        assert out[mode]["p50_ms"] <= out[mode]["p99_ms"]
    assert out["batching_off"]["mean_batch_images"] == 1 and out["batching_on"]["mean_batch_images"] >= 1
    assert out["offline"]["images_per_s"] > 0 and "on_over_off" in out


def test_progress_is_reported_after_every_step(pipe, monkeypatch):
    """A request with a progress_id is readable at GET /v1/progress/ID: queued, running step by step, done."""
    from proxt2i.serve.worker import Batcher

    seen = []
    original = Batcher._set_progress

    def record(self, requests, state, step=None, steps=None):
        original(self, requests, state, step, steps)
        for r in requests:
            if r.progress_id:
                seen.append((state, self.progress[r.progress_id]["step"], self.progress[r.progress_id]["steps"]))

    monkeypatch.setattr(Batcher, "_set_progress", record)
    app = create_app(MODEL, pipeline=pipe, max_batch=2, max_wait_ms=5)

    async def work(c):
        polled = []
        task = asyncio.ensure_future(c.post(URL, json={"prompt": "a smiling man", "n": 3, "steps": 2, "progress_id": "job-1"}))
        while not task.done():
            r = await c.get("/v1/progress/job-1")
            if r.status_code == 200:
                polled.append(r.json())
            await asyncio.sleep(0.01)
        final = await c.get("/v1/progress/job-1")
        missing = await c.get("/v1/progress/nobody")
        bad = await c.post(URL, json={"prompt": "a smiling man", "progress_id": "../../etc"})
        return (await task), polled, final, missing, bad

    answer, polled, final, missing, bad = asyncio.run(in_app(app, work))
    assert answer.status_code == 200 and len(answer.json()["data"]) == 3
    # n=3 on max_batch=2 runs two chunks of 2 steps: 4 steps in all, each reported
    assert seen == [("queued", 0, 2), ("running", 0, 4), ("running", 1, 4), ("running", 2, 4), ("running", 3, 4),
                    ("running", 4, 4), ("done", 4, 4)]
    assert final.json() == {"state": "done", "step": 4, "steps": 4}
    steps = [p["step"] for p in polled]
    assert steps == sorted(steps) and all(p["state"] in ("queued", "running", "done") for p in polled)
    assert missing.status_code == 404 and "nobody" in missing.json()["error"]["message"]
    assert bad.status_code == 422 and "progress_id" in bad.json()["error"]["message"]


def test_a_corrupt_or_vanished_model_folder_fails_before_serving(monkeypatch, tmp_path, capsys):
    import shutil

    import uvicorn

    from proxt2i.shipped import resolve_model

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(app))
    broken = tmp_path / "broken"
    shutil.copytree(resolve_model(MODEL), broken)
    weights = broken / "uvit.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    for folder in (broken, tmp_path / "gone"):
        assert main(["serve", "--model", str(folder)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("proxt2i: error:") and str(folder) in err[0], err
    assert calls == []
    assert main(["serve", "--model", MODEL, "--no-pad-batches"]) == 0 and len(calls) == 1
