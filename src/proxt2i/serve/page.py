"""The page at /: one self-contained HTML file with inline CSS and JS (no CDN, no build step), so it works
offline and adds no dependency; gradio would add a heavy extra and fetch its front end assets."""

from __future__ import annotations

import html
import json

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>proxt2i: __MODEL__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font: 15px system-ui, sans-serif; margin: 2em auto; max-width: 46em; padding: 0 1em; }
 label { display: inline-block; margin: .3em 1em .3em 0; }
 #prompt { width: 100%; box-sizing: border-box; font-size: 1.05em; padding: .4em; }
 input[type=number] { width: 6em; }
 #status { margin: .8em 0; min-height: 1.3em; }
 #error { color: #b00020; } #warning { color: #8a5a00; }
 #grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(128px, 1fr)); gap: 8px; }
 #grid img { width: 100%; image-rendering: pixelated; border: 1px solid #ccc; }
</style></head>
<body>
<h1>proxt2i</h1>
<p>Model <b>__MODEL__</b>, __SIZE__ px images.</p>
<form id="form" novalidate><!-- novalidate: the server checks every field and its one-line message is shown below -->
 <input id="prompt" name="prompt" placeholder="a smiling woman with long red hair and glasses" autofocus>
 <br><label>steps <input id="steps" type="number" min="1" max="50" value="4"></label>
 <label>guidance <input id="guidance" type="number" min="0" max="50" step="0.5" value="__GUIDANCE__"></label>
 <label>seed <input id="seed" type="number" min="0" value="0"> <button type="button" id="randomise">randomise</button></label>
 <label>images <input id="n" type="number" min="1" max="__MAX__" value="4"></label>
 <label id="keylabel" hidden>API key <input id="key" type="password"></label>
 <br><button id="generate" type="submit">Generate</button>
</form>
<div id="status"></div><progress id="progress" max="1" value="0" hidden></progress><div id="warning"></div><div id="error" role="alert"></div>
<div id="grid"></div>
<script>
const $ = (id) => document.getElementById(id);
if (__NEEDS_KEY__) $("keylabel").hidden = false;
$("randomise").onclick = () => { $("seed").value = Math.floor(Math.random() * 2147483647); };
function number(id) { const v = $(id).value.trim(); return v === "" ? NaN : Number(v); }
$("form").onsubmit = async (event) => {
  event.preventDefault();
  $("error").textContent = ""; $("warning").textContent = "";
  $("generate").disabled = true; $("status").textContent = "generating...";
  const started = performance.now();
  const body = {prompt: $("prompt").value, steps: number("steps"), guidance: number("guidance"),
                seed: number("seed"), n: number("n"), response_format: "b64_json"};
  for (const k of ["steps", "guidance", "seed", "n"]) if (Number.isNaN(body[k])) delete body[k];
  const headers = {"Content-Type": "application/json"};
  if ($("key").value) headers["Authorization"] = "Bearer " + $("key").value;
  body.progress_id = "page-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
  const bar = $("progress"); bar.hidden = false; bar.value = 0; bar.dataset.id = body.progress_id;
  let polling = true;
  const poll = async () => {  // per-step progress: GET /v1/progress/ID while the generation runs
    while (polling) {
      try {
        const r = await fetch("/v1/progress/" + body.progress_id, {headers});
        const p = r.ok ? await r.json() : null;
        if (!polling) return;  // the answer came while this poll was out: it has the last word
        if (p) { bar.max = p.steps; bar.value = p.step;
                 if (p.state === "running") $("status").textContent = "step " + p.step + " of " + p.steps; }
      } catch (e) { /* the answer below reports errors */ }
      await new Promise((done) => setTimeout(done, 150));
    }
  };
  poll();
  try {
    const response = await fetch("/v1/images/generations", {method: "POST", headers, body: JSON.stringify(body)});
    const answer = await response.json().catch(() => ({error: {message: "the server answered " + response.status}}));
    if (!response.ok) throw new Error(answer.error ? answer.error.message : "error " + response.status);
    $("grid").replaceChildren(...answer.data.map((item, i) => {
      const img = new Image(); img.src = "data:image/png;base64," + item.b64_json;
      img.alt = body.prompt + " (seed " + (answer.seed + i) + ")"; img.className = "result"; return img; }));
    if (answer.warnings) $("warning").textContent = answer.warnings.join(" ");
    bar.max = 1; bar.value = 1;
    $("status").textContent = answer.data.length + " images in " + Math.round(performance.now() - started) + " ms";
  } catch (err) {
    $("status").textContent = ""; $("error").textContent = err.message;
  } finally { polling = false; $("generate").disabled = false; }
};
</script></body></html>
"""


def page_html(model: str, size: int, max_images: int, needs_key: bool, guidance: float = 4.0) -> str:
    """The page for `model`; the guidance field starts at the model's own scale (1 for a guidance-distilled model)."""
    return (PAGE.replace("__MODEL__", html.escape(model)).replace("__SIZE__", str(int(size))).replace("__GUIDANCE__", f"{float(guidance):g}")
            .replace("__MAX__", str(int(max_images))).replace("__NEEDS_KEY__", json.dumps(bool(needs_key))))
