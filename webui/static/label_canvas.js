// The Label view's canvas (see webui/views/label_canvas.py): the image, SAM's current mask
// (composited here, semi-transparent), the prompts and the brush strokes, with one history.
// Prompts are drawn at once; only their coordinates go to the server (through the hidden
// "ask" button, a Gradio event) and SAM's mask comes back as a 1-bit PNG. Nothing redraws
// unless something changed: no animation loop, so an idle page costs no CPU.
(() => {
  "use strict";
  const MASK_RGB = "rgb(0, 114, 178)";  // Okabe-Ito blue: visible on X-rays, safe for colour-blind eyes
  const MASK_ALPHA = 0.45;
  const POS = "#009e73", NEG = "#d55e00", BOX = "#e69f00";  // and told apart by shape (+ / ×), not colour alone
  const ZOOM_STEP = 1.25, ZOOM_MAX = 16;

  const S = {
    host: null, canvas: null, ctx: null,
    image: null, imageId: null, w: 0, h: 0,
    start: null,          // the start mask (a canvas, white where the mask is)
    history: [],          // actions: {kind: "point"|"box"|"stroke", …}; prompts keep their answer
    mode: "box", brush: 16, zoom: 1, panX: 0, panY: 0,
    mask: null, tint: null, maskDirty: true,
    drag: null, inflight: null, queued: false, nextId: 1, lastOpen: null,
    answers: 0, latencies: [], frame: 0, spaceDown: false,
  };

  function blank(w, h) {
    const c = document.createElement("canvas");
    c.width = w; c.height = h;
    return c;
  }

  // ---------------------------------------------------------------- mounting
  function mount() {
    const host = document.getElementById("kmine-canvas");
    if (!host || host === S.host) return !!host;
    S.host = host;
    S.canvas = host.querySelector("canvas");
    S.ctx = S.canvas.getContext("2d");
    S.canvas.addEventListener("pointerdown", onDown);
    S.canvas.addEventListener("pointermove", onMove);
    S.canvas.addEventListener("pointerup", onUp);
    S.canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    S.canvas.addEventListener("wheel", onWheel, {passive: false});
    host.querySelectorAll("[data-mode]").forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));
    host.querySelector("[data-brush-size]").addEventListener("input", (e) => { S.brush = +e.target.value; });
    const actions = {"undo": undo, "zoom-in": () => zoomBy(ZOOM_STEP), "zoom-out": () => zoomBy(1 / ZOOM_STEP),
                     "zoom-reset": resetView};
    host.querySelectorAll("[data-action]").forEach((b) => b.addEventListener("click", actions[b.dataset.action]));
    setMode(S.mode);
    return true;
  }

  function visible() {
    return S.host && S.host.isConnected && S.host.offsetParent !== null;
  }

  // ---------------------------------------------------------------- opening an image
  // Each opening carries its own token: an event that left the field as it was (an error, a
  // refused save) hands the same text again, and must not wipe the prompts and strokes.
  function load(text) {
    if (!mount()) return;
    if (!text) { clear(); return; }
    const data = JSON.parse(text);
    if (data.open === S.lastOpen) return;
    S.lastOpen = data.open;
    const image = new Image();
    image.onload = () => {
      S.image = image; S.imageId = data.image_id; S.w = image.naturalWidth; S.h = image.naturalHeight;
      S.history = []; S.inflight = null; S.queued = false;
      S.mask = blank(S.w, S.h); S.tint = blank(S.w, S.h);
      S.start = blank(S.w, S.h);
      S.host.dataset.image = String(data.image_id);
      S.host.dataset.opened = String(+(S.host.dataset.opened || 0) + 1);
      status("");
      resetView();
      if (data.mask) {
        maskFromPng(data.mask, (m) => { S.start = m; changed(); });
      } else {
        changed();
      }
    };
    image.src = data.image;
  }

  // No image open (the end of the list, or none found).
  function clear() {
    S.image = null; S.imageId = null; S.history = []; S.inflight = null; S.queued = false; S.lastOpen = null;
    S.ctx.setTransform(1, 0, 0, 1, 0, 0);
    S.ctx.clearRect(0, 0, S.canvas.width, S.canvas.height);
    S.host.dataset.image = "";
    status("");
  }

  // A 1-bit (or 0/255) PNG as a canvas whose alpha is the mask.
  function maskFromPng(url, done) {
    const png = new Image();
    png.onload = () => {
      const c = blank(png.naturalWidth, png.naturalHeight);
      const ctx = c.getContext("2d");
      ctx.drawImage(png, 0, 0);
      const px = ctx.getImageData(0, 0, c.width, c.height);
      const d = px.data;
      for (let i = 0; i < d.length; i += 4) {
        const on = d[i] > 127;
        d[i] = d[i + 1] = d[i + 2] = 255;
        d[i + 3] = on ? 255 : 0;
      }
      ctx.putImageData(px, 0, 0);
      done(c);
    };
    png.src = url;
  }

  // ---------------------------------------------------------------- the mask shown
  // SAM's answer to the latest answered prompts (or the start mask), with every brush stroke on top.
  function base() {
    for (let i = S.history.length - 1; i >= 0; i--) {
      const a = S.history[i];
      if (a.kind !== "stroke" && a.answer) return a.answer.mask;
    }
    return S.start;
  }

  function composeMask() {
    const ctx = S.mask.getContext("2d");
    ctx.globalCompositeOperation = "source-over";
    ctx.clearRect(0, 0, S.w, S.h);
    ctx.drawImage(base(), 0, 0);
    S.history.filter((a) => a.kind === "stroke").forEach((a) => paint(ctx, a));
    tintMask();
    S.maskDirty = false;
  }

  function paint(ctx, stroke) {
    ctx.globalCompositeOperation = stroke.erase ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = "#fff";
    ctx.lineWidth = 2 * stroke.r; ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(stroke.pts[0][0], stroke.pts[0][1]);
    stroke.pts.forEach(([x, y]) => ctx.lineTo(x, y));
    if (stroke.pts.length === 1) ctx.lineTo(stroke.pts[0][0] + 0.01, stroke.pts[0][1]);
    ctx.stroke();
    ctx.globalCompositeOperation = "source-over";
  }

  function tintMask() {
    const ctx = S.tint.getContext("2d");
    ctx.globalCompositeOperation = "source-over";
    ctx.clearRect(0, 0, S.w, S.h);
    ctx.drawImage(S.mask, 0, 0);
    ctx.globalCompositeOperation = "source-in";
    ctx.fillStyle = MASK_RGB;
    ctx.fillRect(0, 0, S.w, S.h);
    ctx.globalCompositeOperation = "source-over";
  }

  function changed() {
    S.maskDirty = true;
    redraw();
  }

  // ---------------------------------------------------------------- drawing (on demand only)
  function redraw() {
    if (S.frame) return;
    S.frame = requestAnimationFrame(() => {
      S.frame = 0;
      draw();
      afterDraw();
    });
  }

  function scale() {
    return (Math.min(S.canvas.width / S.w, S.canvas.height / S.h) || 1) * S.zoom;
  }

  function draw() {
    if (!S.image) return;
    if (S.maskDirty) composeMask();
    const ctx = S.ctx, k = scale();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#111";
    ctx.fillRect(0, 0, S.canvas.width, S.canvas.height);
    ctx.setTransform(k, 0, 0, k, S.panX, S.panY);
    ctx.imageSmoothingEnabled = S.zoom < 2;
    ctx.drawImage(S.image, 0, 0);
    ctx.globalAlpha = MASK_ALPHA;
    ctx.drawImage(S.tint, 0, 0);
    ctx.globalAlpha = 1;
    S.history.forEach((a) => drawPrompt(ctx, a, k));
    if (S.drag && S.drag.kind === "box") drawBox(ctx, S.drag, k, true);
    if (S.drag && S.drag.kind === "stroke") drawStrokePreview(ctx, S.drag, k);
  }

  function drawPrompt(ctx, a, k) {
    if (a.kind === "box") drawBox(ctx, a, k, false);
    if (a.kind === "point") drawPoint(ctx, a, k);
  }

  function drawBox(ctx, b, k, dashed) {
    ctx.lineWidth = 2 / k;
    ctx.setLineDash(dashed ? [6 / k, 4 / k] : []);
    ctx.strokeStyle = BOX;
    ctx.strokeRect(Math.min(b.x0, b.x1), Math.min(b.y0, b.y1), Math.abs(b.x1 - b.x0), Math.abs(b.y1 - b.y0));
    ctx.setLineDash([]);
  }

  function drawPoint(ctx, p, k) {
    const r = 7 / k;
    ctx.beginPath();
    ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
    ctx.fillStyle = p.label ? POS : NEG;
    ctx.fill();
    ctx.lineWidth = 1.5 / k;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
    ctx.beginPath();  // + for an object point, × for a background one
    const d = r * 0.55;
    if (p.label) {
      ctx.moveTo(p.x - d, p.y); ctx.lineTo(p.x + d, p.y); ctx.moveTo(p.x, p.y - d); ctx.lineTo(p.x, p.y + d);
    } else {
      ctx.moveTo(p.x - d, p.y - d); ctx.lineTo(p.x + d, p.y + d); ctx.moveTo(p.x + d, p.y - d); ctx.lineTo(p.x - d, p.y + d);
    }
    ctx.stroke();
  }

  // A stroke being drawn: its outline only (the mask takes it on release).
  function drawStrokePreview(ctx, s, k) {
    ctx.save();
    ctx.globalAlpha = 0.6;
    ctx.strokeStyle = s.erase ? NEG : MASK_RGB;
    ctx.lineWidth = 2 * s.r; ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(s.pts[0][0], s.pts[0][1]);
    s.pts.forEach(([x, y]) => ctx.lineTo(x, y));
    ctx.stroke();
    ctx.restore();
  }

  // Once a frame with an answer is on screen: its latency, and attributes tests wait on.
  function afterDraw() {
    const now = performance.now();
    S.history.forEach((a) => {
      if (a.t0 !== undefined && a.covered) { S.latencies.push(now - a.t0); delete a.t0; }
    });
    S.host.dataset.answers = String(S.answers);
    S.host.dataset.history = String(S.history.length);
    pending();
  }

  // ---------------------------------------------------------------- pointer
  function imagePoint(e) {
    const r = S.canvas.getBoundingClientRect();
    const cx = (e.clientX - r.left) * (S.canvas.width / r.width), cy = (e.clientY - r.top) * (S.canvas.height / r.height);
    const k = scale();
    return {cx, cy, x: (cx - S.panX) / k, y: (cy - S.panY) / k};
  }

  function clamp(v, hi) { return Math.max(0, Math.min(hi, v)); }

  function onDown(e) {
    if (!S.image) return;
    S.canvas.setPointerCapture(e.pointerId);
    S.host.focus({preventScroll: true});
    const p = imagePoint(e);
    if (e.button === 1 || S.spaceDown) {
      S.drag = {kind: "pan", cx: p.cx, cy: p.cy, panX: S.panX, panY: S.panY};
    } else if (S.mode === "add" || S.mode === "erase") {
      S.drag = {kind: "stroke", erase: S.mode === "erase", r: S.brush / 2 / scale(), pts: [[p.x, p.y]]};
    } else {
      const sign = S.mode === "neg" || e.button === 2 || e.shiftKey ? 0 : 1;
      S.drag = {kind: S.mode === "box" ? "box" : "click", x0: p.x, y0: p.y, x1: p.x, y1: p.y, cx: p.cx, cy: p.cy, sign};
    }
    redraw();
  }

  function onMove(e) {
    const d = S.drag;
    if (!d) return;
    const p = imagePoint(e);
    if (d.kind === "pan") { S.panX = d.panX + p.cx - d.cx; S.panY = d.panY + p.cy - d.cy; }
    else if (d.kind === "stroke") d.pts.push([p.x, p.y]);
    else { d.x1 = clamp(p.x, S.w); d.y1 = clamp(p.y, S.h); }
    redraw();
  }

  function onUp(e) {
    const d = S.drag;
    S.drag = null;
    if (!d) return;
    const p = imagePoint(e);
    const moved = Math.hypot(p.cx - (d.cx ?? p.cx), p.cy - (d.cy ?? p.cy)) > 4;
    if (d.kind === "stroke") push({kind: "stroke", erase: d.erase, r: d.r, pts: d.pts});
    else if (d.kind === "box" && moved) {
      push({kind: "box", x0: clamp(d.x0, S.w), y0: clamp(d.y0, S.h), x1: clamp(p.x, S.w), y1: clamp(p.y, S.h)});
    } else if (d.kind !== "pan" && (d.kind === "click" || !moved) && inside(d.x0, d.y0)) {
      // a click without a drag is a point, whatever the mode (box mode: an object point)
      push({kind: "point", x: d.x0, y: d.y0, label: d.sign});
    }
    redraw();
  }

  function inside(x, y) { return x >= 0 && y >= 0 && x <= S.w && y <= S.h; }

  function onWheel(e) {
    if (!S.image) return;
    e.preventDefault();
    const p = imagePoint(e);
    zoomBy(e.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, p.cx, p.cy);
  }

  function zoomBy(f, cx, cy) {
    if (!S.image) return;
    cx = cx ?? S.canvas.width / 2; cy = cy ?? S.canvas.height / 2;
    const before = scale();
    S.zoom = Math.max(1, Math.min(ZOOM_MAX, S.zoom * f));
    const after = scale();
    S.panX = cx - (cx - S.panX) * after / before;  // the point under the cursor stays put
    S.panY = cy - (cy - S.panY) * after / before;
    if (S.zoom === 1) centre();
    redraw();
  }

  function centre() {
    const k = scale();
    S.panX = (S.canvas.width - S.w * k) / 2;
    S.panY = (S.canvas.height - S.h * k) / 2;
  }

  function resetView() {
    S.zoom = 1;
    centre();
    redraw();
  }

  // ---------------------------------------------------------------- history
  function push(action) {
    action.id = S.nextId++;
    S.history.push(action);
    if (action.kind === "stroke") changed();
    else { action.t0 = performance.now(); ask(); }
  }

  function undo() {
    const last = S.history.pop();
    if (!last) return;
    const prompts = S.history.some((a) => a.kind !== "stroke");
    // An earlier state's mask is in its answer already: undo asks the server nothing, unless
    // its answer never came (then the remaining prompts are asked for again).
    const latest = latestPrompt();
    if (last.kind !== "stroke" && latest && !latest.answer) ask();
    if (!prompts) S.queued = false;
    status(`undid ${last.kind === "stroke" ? "a brush stroke" : last.kind === "box" ? "a box" : "a point"}`);
    changed();
  }

  function latestPrompt() {
    for (let i = S.history.length - 1; i >= 0; i--) if (S.history[i].kind !== "stroke") return S.history[i];
    return null;
  }

  function previousToken(before) {
    for (let i = S.history.indexOf(before) - 1; i >= 0; i--) {
      const a = S.history[i];
      if (a.kind !== "stroke" && a.answer) return a.answer.token;
    }
    return null;
  }

  // ---------------------------------------------------------------- talking to SAM
  // One request at a time: clicks made meanwhile are sent together once it is answered.
  function ask() {
    if (S.inflight) { S.queued = true; return; }
    const latest = latestPrompt();
    if (!latest || latest.answer) return;
    const boxes = [], points = [], labels = [];
    S.history.forEach((a) => {
      if (a.kind === "box") boxes.push([a.x0, a.y0, a.x1, a.y1].map(round));
      if (a.kind === "point") { points.push([round(a.x), round(a.y)]); labels.push(a.label); }
    });
    if (!boxes.length && !labels.includes(1)) {
      status("Background points alone say nothing: add an object point or a box.");
      return;
    }
    S.inflight = {id: latest.id, image: S.imageId, body: {image_id: S.imageId, seq: latest.id, boxes, points, labels,
                                                          previous: previousToken(latest)}};
    status("asking SAM…");
    pending();
    const button = document.querySelector("#label-ask");
    if (button) button.click();
  }

  function round(v) { return Math.round(v * 10) / 10; }

  function request() {
    return JSON.stringify(S.inflight ? S.inflight.body : {});
  }

  function answer(text) {
    const sent = S.inflight;
    S.inflight = null;
    const data = text ? JSON.parse(text) : {};
    const action = sent && sent.image === S.imageId ? S.history.find((a) => a.id === data.seq) : null;
    if (data.error) {
      status(data.error);  // asked again only for clicks made since, never in a loop
      if (S.queued) followUp();
      pending();
      return;
    }
    if (!action) { followUp(); return; }  // undone meanwhile, or another image opened
    maskFromPng(data.mask, (mask) => {
      action.answer = {mask, token: data.token};
      S.answers += 1;
      S.history.forEach((a) => { if (a.id <= action.id) a.covered = true; });
      status(`${data.pixels} px`);
      changed();
      followUp();
    });
  }

  function followUp() {
    S.queued = false;
    ask();
    pending();
  }

  function pending() {
    if (S.host) S.host.dataset.pending = S.inflight || S.queued ? "1" : "0";
  }

  function status(text) {
    const el = S.host && S.host.querySelector(".kmine-canvas-status");
    if (el) el.textContent = text;
  }

  // ---------------------------------------------------------------- saving
  // The mask on screen as a PNG, white on black, at the image's size.
  function maskPayload() {
    if (!S.image) return JSON.stringify({});
    if (S.maskDirty) composeMask();
    const out = blank(S.w, S.h), ctx = out.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, S.w, S.h);
    ctx.drawImage(S.mask, 0, 0);
    const edited = S.history.some((a) => a.kind === "stroke") ? "brush"
      : S.history.some((a) => a.answer) ? "sam" : null;
    return JSON.stringify({image_id: S.imageId, mask_png: out.toDataURL("image/png"), origin: edited});
  }

  // Pixels in the mask on screen (for tests and the benchmark).
  function maskPixels() {
    if (!S.image) return 0;
    if (S.maskDirty) composeMask();
    const d = S.mask.getContext("2d").getImageData(0, 0, S.w, S.h).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) n += d[i] > 127;
    return n;
  }

  // ---------------------------------------------------------------- keys
  function setMode(mode) {
    S.mode = mode;
    if (!S.host) return;
    S.host.querySelectorAll("[data-mode]").forEach((b) => b.classList.toggle("active", b.dataset.mode === mode));
    S.canvas.style.cursor = mode === "add" || mode === "erase" ? "cell" : "crosshair";
  }

  function setBrush(size) {
    S.brush = Math.max(2, Math.min(80, size));
    const input = S.host.querySelector("[data-brush-size]");
    if (input) input.value = String(S.brush);
    status(`brush ${S.brush} px`);
  }

  function clickButton(id) {
    const b = document.getElementById(id);
    if (b && b.offsetParent !== null) b.click();
  }

  const KEYS = {
    "b": () => setMode("box"), "p": () => setMode("pos"), "o": () => setMode("neg"),
    "a": () => setMode("add"), "e": () => setMode("erase"),
    "[": () => setBrush(S.brush - 4), "]": () => setBrush(S.brush + 4),
    "+": () => zoomBy(ZOOM_STEP), "=": () => zoomBy(ZOOM_STEP), "-": () => zoomBy(1 / ZOOM_STEP), "0": resetView,
    "arrowright": () => clickButton("label-next"), "arrowleft": () => clickButton("label-prev"),
  };

  document.addEventListener("keydown", (e) => {
    const t = e.target, tag = (t && t.tagName || "").toLowerCase();
    if (tag === "input" && t.type !== "range" || tag === "textarea" || (t && t.isContentEditable)) return;
    if (!visible()) return;
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === "z") { e.preventDefault(); undo(); return; }
    if (key === " ") { S.spaceDown = true; e.preventDefault(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey || !KEYS[key]) return;
    e.preventDefault();
    KEYS[key]();
  });
  document.addEventListener("keyup", (e) => { if (e.key === " ") S.spaceDown = false; });

  // Where image pixel (x, y) is on the page (for tests and the benchmark, which click there).
  function toPage(x, y) {
    const r = S.canvas.getBoundingClientRect(), k = scale();
    return {x: r.left + (S.panX + x * k) * r.width / S.canvas.width, y: r.top + (S.panY + y * k) * r.height / S.canvas.height};
  }

  window.kmineLabel = {load, request, answer, maskPayload, maskPixels, undo, setMode, toPage,
                       size: () => ({w: S.w, h: S.h}), latencies: () => S.latencies.slice()};
})();
