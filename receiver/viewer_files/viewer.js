// gesco result viewer: upload -> sender POST /transmit -> poll receiver /result/<id> -> show.
// Plain script, no dependencies. Everything shown is set with textContent or as an image
// URL built from the receiver's own links: no HTML is ever built from data.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 300;
  let config = null;
  let shown = "";          // the location hash currently rendered
  let pollToken = 0;       // bumped to stop the polls of a view that was left
  const objectUrls = [];   // blob: URLs of the current view (revoked when it changes)

  // ------------------------------------------------------------------ helpers
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  /** A number as the page shows it: integers as they are, others with 3 decimals (or 3 digits when tiny). */
  function fmt(v) {
    if (v === null || v === undefined) return "\u2014";
    if (Array.isArray(v)) return v.join(", ");
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      return Math.abs(v) >= 0.01 ? v.toFixed(3) : v.toPrecision(3);
    }
    return String(v);
  }

  /** The reason in an error reply: FastAPI's {"detail": "..."} or its list of validation errors. */
  function detailText(body) {
    if (body && typeof body === "object" && "detail" in body) {
      const d = body.detail;
      if (Array.isArray(d)) {
        return d.map((x) => `${(x.loc || []).filter((p) => p !== "body").join(".")}: ${x.msg}`).join("; ");
      }
      return typeof d === "string" ? d : JSON.stringify(d);
    }
    return typeof body === "string" ? body : JSON.stringify(body);
  }

  async function readBody(response) {
    const text = await response.text();
    try { return JSON.parse(text); } catch (e) { return text; }
  }

  /**
   * The API key (services with keys on): typed into the page's password field and kept in
   * this variable only, never stored (no cookie, no localStorage) nor put in a URL; it is
   * sent as an `Authorization: Bearer` header on the API calls, and images are fetched
   * with it and shown from blob URLs. A reload forgets it.
   */
  let apiKey = "";

  function authHeaders() {
    return apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  }

  async function getJSON(url) {
    let r;
    try { r = await fetch(url, { cache: "no-store", headers: authHeaders() }); } catch (e) {
      throw new Error(`the receiver cannot be reached (${e.message})`);
    }
    const body = await readBody(r);
    if (!r.ok) throw new Error(`${r.status} from the receiver: ${detailText(body)}`);
    return body;
  }

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  function clearError() {
    $("error").textContent = "";
    $("error").hidden = true;
  }

  function setStatus(message) { $("status").textContent = message; }

  function blobUrl(blob) {
    const url = URL.createObjectURL(blob);
    objectUrls.push(url);
    return url;
  }

  /**
   * Show an image: hidden until it has loaded, and if it cannot load it stays hidden and
   * `onFail(message)` says so (a broken-image icon is never displayed).
   */
  function showImage(img, url, onFail) {
    img.hidden = true;
    img.onload = () => { img.hidden = false; };
    img.onerror = () => {
      img.hidden = true;
      if (onFail) onFail(`cannot load ${img.alt} (${url})`);
    };
    if (!apiKey || url.startsWith("blob:")) {
      img.src = url;
      return;
    }
    fetch(url, { cache: "no-store", headers: authHeaders() })
      .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(`${r.status}`))))
      .then((blob) => { img.src = blobUrl(blob); })
      .catch(() => img.onerror());
  }

  function clearImage(img) {
    img.onload = null;
    img.onerror = null;
    img.removeAttribute("src");
    img.hidden = true;
  }

  /** Warnings in a list (hidden when there are none). */
  function showWarnings(list, warnings) {
    list.replaceChildren(...(warnings || []).map((w) => el("li", w)));
    list.hidden = list.children.length === 0;
  }

  function resetView() {
    pollToken += 1;
    while (objectUrls.length) URL.revokeObjectURL(objectUrls.pop());
    for (const id of ["sent-image", "label-image", "received-image", "denoised-image", "generated-image"]) {
      clearImage($(id));
    }
    for (const id of ["sent-note", "label-note", "sent-name", "result-settings", "upload-note"]) $(id).textContent = "";
    showWarnings($("warnings"), []);
    showWarnings($("compare-warnings"), []);
    frameSentImage(null, false);
    $("budget-table").tBodies[0].replaceChildren();
    $("timings-table").tBodies[0].replaceChildren();
    $("result-panel").hidden = true;
    $("compare-panel").hidden = true;
  }

  // ------------------------------------------------------------------ sending
  function selectedFiles() {
    const image = $("image-file").files[0];
    if (!image) {
      showError("choose an image first");
      return null;
    }
    return { image, label: $("label-file").files[0] || null, instance: $("instance-file").files[0] || null };
  }

  /** POST the files to the sender; resolves to its 202 reply, rejects with its status and reason. */
  async function transmit(files, psnr) {
    const fd = new FormData();
    fd.append("image", files.image, files.image.name);
    if (files.label) fd.append("label", files.label, files.label.name);
    if (files.instance) fd.append("instance", files.instance, files.instance.name);
    fd.append("psnr_db", psnr === undefined ? $("psnr").value : String(psnr));
    fd.append("channel", $("channel").value);
    fd.append("sampler", $("sampler").value);
    fd.append("steps", $("steps").value);
    fd.append("seed", $("seed").value);
    fd.append("fds", $("fds").checked ? "true" : "false");
    fd.append("appearance", $("appearance").value);
    if ($("appearance").value !== "off") {  // the side channel's depth and repeat only when it is on
      fd.append("appearance_bits", $("appearance-bits").value);
      fd.append("appearance_repeat", $("appearance-repeat").value);
    }
    let r;
    try {
      r = await fetch(`${config.sender_url}/transmit`, { method: "POST", body: fd, headers: authHeaders() });
    } catch (e) {
      throw new Error(`the sender at ${config.sender_url} cannot be reached (${e.message})`);
    }
    const body = await readBody(r);
    if (!r.ok) throw new Error(`${r.status} from the sender: ${detailText(body)}`);
    return body;
  }

  function navigate(hash) {
    history.pushState(null, "", `#${hash}`);
    shown = location.hash;
  }

  async function onSend(event) {
    event.preventDefault();
    clearError();
    const files = selectedFiles();
    if (!files) return;
    setStatus("sending ...");
    let accepted;
    try {
      accepted = await transmit(files);
    } catch (e) {
      setStatus("");
      showError(e.message);
      return;
    }
    navigate(`result=${accepted.id}`);
    setStatus(`accepted: ${accepted.id}`);
    await showResult(accepted.id, { files, accepted });
    loadHistory();
  }

  async function onCompare() {
    clearError();
    const files = selectedFiles();
    if (!files) return;
    const ids = [];
    try {
      for (const psnr of config.compare_psnrs_db) {
        setStatus(`sending at ${psnr} dB (${ids.length + 1} of ${config.compare_psnrs_db.length}) ...`);
        ids.push((await transmit(files, psnr)).id);
      }
    } catch (e) {
      setStatus("");
      showError(e.message);
      if (!ids.length) return;
    }
    navigate(`compare=${ids.join(",")}`);
    setStatus(`accepted: ${ids.length} transmissions`);
    await showCompare(ids, files.image.name);
    loadHistory();
  }

  // ------------------------------------------------------------------ one result
  const BUDGET_ROWS = [
    ["maps", "maps sent"],
    ["present_classes", "present classes"],
    ["payload_bits", "payload bits"],
    ["header_bits", "header bits"],
    ["total_bits", "bits of the maps (frame)"],
    ["bits_per_pixel", "bits per pixel"],
    ["png_bits", "PNG image bits"],
    ["jpeg_bits", "JPEG image bits"],
    ["jpeg_quality", "JPEG quality"],
    ["reduction_png_pct", "saved vs PNG (%)"],
    ["reduction_jpeg_pct", "saved vs JPEG (%)"],
    ["appearance_bits", "colour side-channel bits"],
    ["appearance_channel_uses", "colour side-channel channel uses"],
    ["channel_uses", "channel uses"],
    ["channel_uses_per_pixel", "channel uses per pixel"],
    ["psnr_db", "PSNR requested (dB)"],
    ["measured_snr_db", "SNR measured (dB)"],
    ["codec", "codec"],
  ];
  const SENDER_TIMINGS = ["decode_s", "resize_s", "segment_s", "encode_s", "reference_s", "channel_s"];
  const RECEIVER_TIMINGS = ["queue_wait_s", "fds_s", "sampling_s", "png_s", "total_s", "batch_size", "device"];

  function fillTable(table, rows) {
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const [field, label, value] of rows) {
      const tr = el("tr");
      tr.dataset.field = field;
      tr.append(el("th", label), el("td", fmt(value), typeof value === "number" ? "num" : ""));
      body.append(tr);
    }
  }

  async function showLabel(files) {
    if (files && files.label) {
      const fd = new FormData();
      fd.append("label", files.label, files.label.name);
      const r = await fetch("/viewer/label.png", { method: "POST", body: fd, headers: authHeaders() });
      if (!r.ok) {
        $("label-image").hidden = true;
        $("label-note").textContent = `cannot show the label map: ${r.status} ${detailText(await readBody(r))}`;
        return;
      }
      showImage($("label-image"), blobUrl(await r.blob()), (m) => { $("label-note").textContent = m; });
      $("label-note").textContent = `${files.label.name} (uploaded, colour-coded)`
        + (files.instance ? `; instance map ${files.instance.name} (uploaded, sent as its edges)` : "");
    } else if (files) {
      $("label-image").hidden = true;
      $("label-note").textContent = "made by the sender's segmenter and not sent back; "
        + "the received maps at a high PSNR show it";
    } else {
      $("label-image").hidden = true;
      $("label-note").textContent = "not stored: the receiver only has what the channel delivered";
    }
  }

  function renderResult(doc, ctx) {
    $("result-status").textContent = doc.status;
    $("result-status").className = `badge ${doc.status}`;
    const s = doc.settings;
    $("result-settings").textContent = `PSNR ${fmt(s.psnr_db)} dB, ${s.channel}, ${s.sampler} `
      + `${s.steps} steps, guidance ${fmt(s.guidance_scale)}, seed ${s.seed}, FDS ${s.fds ? "on" : "off"}, `
      + `colours ${s.appearance === "off" ? "off" : `${s.appearance} at ${s.appearance_bits} bits x ${s.appearance_repeat}`}; `
      + `stored ${doc.created_at}`;
    fillTable($("budget-table"), BUDGET_ROWS.map(([k, label]) => [k, label, doc.budget[k]]));
    const sender = ctx && ctx.accepted ? ctx.accepted.timings : null;
    const rows = sender
      ? SENDER_TIMINGS.map((k) => [`sender.${k}`, `sender ${k.replace(/_s$/, "")}`, sender[k]])
      : [["sender", "sender", "not stored: only the sender's reply has its timings, shown when you send from this page"]];
    for (const k of RECEIVER_TIMINGS) {
      rows.push([`receiver.${k}`, `receiver ${k.replace(/_s$/, "").replace("_", " ")}`, doc.timings[k]]);
    }
    fillTable($("timings-table"), rows);
    const accepted = ctx && ctx.accepted ? ctx.accepted : {};
    showUpload(doc.upload || accepted.upload, doc.upload ? doc.warnings : accepted.warnings, Boolean(ctx && ctx.files));
    if (doc.status === "done" && !$("generated-image").getAttribute("src")) {
      const fail = (m) => showError(m);
      showImage($("received-image"), doc.links.received_maps, fail);
      showImage($("denoised-image"), doc.links.denoised_maps, fail);
      showImage($("generated-image"), doc.links.image, fail);
    } else if (doc.status === "failed") {
      showError(`the receiver could not finish ${doc.id}: ${doc.reason}`);
    }
  }

  /** One line on how the sender prepared the upload (the result's `upload`, an UploadReport). */
  function uploadSummary(upload) {
    const [h, w] = upload.source_size;
    const [H, W] = config.resolution;
    const parts = [`upload ${h}x${w} (H x W) for the model's ${H}x${W}`];
    if (!upload.aspect_adjusted) parts.push("same aspect ratio, resized");
    else if (upload.aspect === "crop") parts.push("aspect crop: the hatched part was cut off");
    else if (upload.aspect === "letterbox") parts.push("aspect letterbox: scaled whole, black bars added");
    else parts.push(`aspect ${upload.aspect}: distorted to the model's ratio`);
    if (!upload.segmented) parts.push("label map uploaded");
    else if (upload.domain_scored) {
      parts.push(`label map from the sender's segmenter, confidence ${fmt(upload.domain_score)} `
        + `(threshold ${fmt(upload.domain_threshold)}): ${upload.out_of_domain ? "OUT OF DOMAIN" : "in domain"}`);
    } else parts.push("label map from the sender's segmenter, confidence not measurable");
    const edges = { uploaded: "instance edges from the uploaded instance map",
      derived: "instance edges derived from the label map (touching objects of one class merge)",
      none: "no instance edges" };
    if (upload.edges) parts.push(edges[upload.edges] || `instance edges: ${upload.edges}`);
    return parts.join("; ");
  }

  /** The upload note, the warnings, and the sent image framed as it was sent. */
  function showUpload(upload, warnings, haveImage) {
    showWarnings($("warnings"), warnings);
    $("upload-note").textContent = upload ? uploadSummary(upload) : "";
    frameSentImage(upload, haveImage);
  }

  const pct = (v, of) => `${(100 * v) / of}%`;

  /** Position an element over the box [top, left, bottom, right) of an h x w area (percent of its parent). */
  function place(e, [top, left, bottom, right], h, w) {
    e.style.top = pct(top, h);
    e.style.left = pct(left, w);
    e.style.height = pct(bottom - top, h);
    e.style.width = pct(right - left, w);
  }

  /**
   * The sent image as the sender fitted it to the model (UploadReport boxes):
   * crop: the whole upload with the cut-off part hatched and the kept box outlined;
   * letterbox: the upload scaled into a frame of the model's ratio, black bars around it;
   * stretch: the upload distorted to the model's ratio. Without the image (a result opened
   * from the history) a grey box of the upload's shape shows the same marks.
   */
  function frameSentImage(upload, haveImage) {
    const frame = $("sent-frame");
    const img = $("sent-image");
    frame.querySelectorAll(".cut, .kept").forEach((e) => e.remove());
    frame.className = "frame";
    frame.dataset.aspect = "";
    frame.style.aspectRatio = "";
    for (const k of ["top", "left", "height", "width"]) img.style[k] = "";
    if (!upload) return;
    const [h, w] = upload.source_size;
    const [H, W] = config.resolution;
    frame.dataset.aspect = upload.aspect_adjusted ? upload.aspect : "resized";
    if (!haveImage) {
      frame.classList.add("placeholder");
      frame.style.aspectRatio = `${w} / ${h}`;
    }
    if (!upload.aspect_adjusted) return;
    if (upload.aspect === "crop" && upload.source_box) {
      const [t, l, b, r] = upload.source_box;
      for (const box of [[0, 0, t, w], [b, 0, h, w], [t, 0, b, l], [t, r, b, w]]) {  // above, below, left, right
        if (box[2] <= box[0] || box[3] <= box[1]) continue;
        const cut = el("div", null, "cut");
        cut.title = "cut off by the sender (not sent)";
        place(cut, box, h, w);
        frame.append(cut);
      }
      const kept = el("div", null, "kept");
      kept.title = "the part that was sent";
      place(kept, upload.source_box, h, w);
      frame.append(kept);
    } else if (upload.aspect === "letterbox" || upload.aspect === "stretch") {
      frame.className = "frame model";
      frame.style.aspectRatio = `${W} / ${H}`;
      const box = upload.aspect === "letterbox" && upload.content_box ? upload.content_box : [0, 0, H, W];
      place(img, box, H, W);
      if (!haveImage) {
        const kept = el("div", null, "kept");
        kept.title = "where the upload sits in the model's frame";
        place(kept, box, H, W);
        frame.append(kept);
      }
    }
  }

  async function poll(id, token, onDoc) {
    for (;;) {
      const doc = await getJSON(`/result/${encodeURIComponent(id)}`);
      if (token !== pollToken) return null;
      onDoc(doc);
      if (doc.status === "done" || doc.status === "failed") return doc;
      await sleep(POLL_MS);
    }
  }

  async function showResult(id, ctx) {
    resetView();
    const token = pollToken;
    $("result-panel").hidden = false;
    $("result-id").textContent = id;
    const files = ctx ? ctx.files : null;
    if (files) {
      showImage($("sent-image"), blobUrl(files.image), (m) => { $("sent-note").textContent = m; });
      $("sent-name").textContent = files.image.name;
      $("sent-note").textContent = "your upload, shown from the file (the sender transmits only its semantic maps)";
      if (ctx.accepted) showUpload(ctx.accepted.upload, ctx.accepted.warnings, true);
    } else {
      $("sent-note").textContent = "not stored: the sender transmits only the semantic maps";
    }
    try {
      await showLabel(files);
      const doc = await poll(id, token, (d) => renderResult(d, ctx));
      if (doc && doc.status === "done") setStatus(`done: ${id}`);
    } catch (e) {
      showError(e.message);
    }
  }

  // ------------------------------------------------------------------ compare view
  async function showCompare(ids, name) {
    resetView();
    const token = pollToken;
    $("compare-panel").hidden = false;
    $("compare-note").textContent = `${name ? `${name}: ` : ""}the same scene and settings at ${ids.length} PSNRs `
      + "(the paper's Fig. 9)";
    const head = el("tr");
    head.append(el("th", ""));
    const rowNames = [["received", "received maps"], ["denoised", "after FDS"], ["image", "generated"],
      ["total_bits", "bits of the maps"], ["measured_snr_db", "SNR measured (dB)"], ["status", "status"]];
    const cells = {};
    const warnings = new Set();  // every transmission's warnings, once each (the same upload gives the same)
    const body = $("compare-table").tBodies[0];
    body.replaceChildren();
    for (const [key, label] of rowNames) {
      const tr = el("tr");
      tr.dataset.field = key;
      tr.append(el("th", label));
      cells[key] = ids.map(() => tr.appendChild(el("td")));
      body.append(tr);
    }
    ids.forEach((id) => head.append(el("th", id.slice(0, 8))));
    $("compare-table").tHead.replaceChildren(head);
    const render = (i) => (doc) => {
      head.children[i + 1].textContent = `${fmt(doc.settings.psnr_db)} dB`;
      cells.total_bits[i].textContent = fmt(doc.budget.total_bits);
      cells.measured_snr_db[i].textContent = fmt(doc.budget.measured_snr_db);
      cells.status[i].textContent = doc.status === "failed" ? `failed: ${doc.reason}` : doc.status;
      if (doc.status === "done") {
        for (const [key, link] of [["received", "received_maps"], ["denoised", "denoised_maps"], ["image", "image"]]) {
          if (cells[key][i].querySelector("img")) continue;
          const img = el("img");
          img.alt = `${key} at ${doc.settings.psnr_db} dB`;
          cells[key][i].replaceChildren(img);
          showImage(img, doc.links[link], (m) => cells[key][i].replaceChildren(el("span", m, "error")));
        }
      }
      for (const w of doc.warnings || []) warnings.add(w);
      showWarnings($("compare-warnings"), [...warnings]);
    };
    try {
      await Promise.all(ids.map((id, i) => poll(id, token, render(i))));
    } catch (e) {
      showError(e.message);
    }
  }

  // ------------------------------------------------------------------ history
  async function loadHistory() {
    let list;
    try {
      list = await getJSON("/results?limit=30");
    } catch (e) {
      showError(`cannot load the history: ${e.message}`);
      return;
    }
    const ol = $("history-list");
    ol.replaceChildren();
    for (const r of list.results) {
      const li = el("li");
      const open = el("button", r.id);
      open.type = "button";
      open.addEventListener("click", () => { clearError(); navigate(`result=${r.id}`); showResult(r.id, null); });
      li.append(open, el("span", ` ${r.created_at} \u00b7 ${fmt(r.psnr_db)} dB \u00b7 ${r.sampler} ${r.steps} `
        + `\u00b7 ${fmt(r.total_bits)} bits \u00b7 ${r.status}`, "muted"));
      ol.append(li);
    }
    if (!list.results.length) ol.append(el("li", "no results yet", "muted"));
  }

  // ------------------------------------------------------------------ routing
  function route() {
    if (location.hash === shown) return;
    shown = location.hash;
    clearError();
    const m = /^#(result|compare)=(.+)$/.exec(location.hash);
    if (!m) { resetView(); return; }
    const value = decodeURIComponent(m[2]);
    if (m[1] === "result") showResult(value, null);
    else showCompare(value.split(",").filter(Boolean), null);
  }

  function fillSelect(select, values, selected) {
    select.replaceChildren(...values.map((v) => {
      const o = el("option", v);
      o.value = v;
      o.selected = v === selected;
      return o;
    }));
  }

  async function init() {
    try {
      config = await getJSON("/viewer/config.json");
    } catch (e) {
      showError(`cannot load the viewer's settings: ${e.message}`);
      return;
    }
    fillSelect($("channel"), config.channels, "awgn");
    fillSelect($("sampler"), config.samplers, config.default_sampler);
    $("steps").value = String(config.default_steps);
    fillSelect($("appearance"), config.appearance_modes, config.appearance_modes[0]);
    for (const [id, value, range] of [["appearance-bits", config.appearance_bits_default, config.appearance_bits_range],
      ["appearance-repeat", config.appearance_repeat_default, config.appearance_repeat_range]]) {
      $(id).value = String(value);
      [$(id).min, $(id).max] = range.map(String);
    }
    $("model-info").textContent = `Model: ${config.class_space}, ${config.resolution.join("x")}; `
      + `sender: ${config.sender_url}`;
    $("compare-button").textContent = `Compare PSNRs (${config.compare_psnrs_db.join(", ")} dB)`;
    $("send-form").addEventListener("submit", onSend);
    $("compare-button").addEventListener("click", onCompare);
    $("history-refresh").addEventListener("click", loadHistory);
    $("api-key").addEventListener("change", (e) => { apiKey = e.target.value.trim(); clearError(); loadHistory(); });
    window.addEventListener("hashchange", route);
    window.addEventListener("popstate", route);
    document.body.dataset.ready = "true";
    loadHistory();
    route();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
