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

  async function getJSON(url) {
    let r;
    try { r = await fetch(url, { cache: "no-store" }); } catch (e) {
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

  function resetView() {
    pollToken += 1;
    while (objectUrls.length) URL.revokeObjectURL(objectUrls.pop());
    for (const id of ["sent-image", "label-image", "received-image", "denoised-image", "generated-image"]) {
      $(id).removeAttribute("src");
      $(id).hidden = false;
    }
    for (const id of ["sent-note", "label-note", "sent-name", "result-settings"]) $(id).textContent = "";
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
    return { image, label: $("label-file").files[0] || null };
  }

  /** POST the files to the sender; resolves to its 202 reply, rejects with its status and reason. */
  async function transmit(files, psnr) {
    const fd = new FormData();
    fd.append("image", files.image, files.image.name);
    if (files.label) fd.append("label", files.label, files.label.name);
    fd.append("psnr_db", psnr === undefined ? $("psnr").value : String(psnr));
    fd.append("channel", $("channel").value);
    fd.append("sampler", $("sampler").value);
    fd.append("steps", $("steps").value);
    fd.append("seed", $("seed").value);
    fd.append("fds", $("fds").checked ? "true" : "false");
    let r;
    try {
      r = await fetch(`${config.sender_url}/transmit`, { method: "POST", body: fd });
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
      const r = await fetch("/viewer/label.png", { method: "POST", body: fd });
      if (!r.ok) {
        $("label-image").hidden = true;
        $("label-note").textContent = `cannot show the label map: ${r.status} ${detailText(await readBody(r))}`;
        return;
      }
      $("label-image").src = blobUrl(await r.blob());
      $("label-note").textContent = `${files.label.name} (uploaded, colour-coded)`;
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
      + `${s.steps} steps, guidance ${fmt(s.guidance_scale)}, seed ${s.seed}, FDS ${s.fds ? "on" : "off"}; `
      + `stored ${doc.created_at}`;
    fillTable($("budget-table"), BUDGET_ROWS.map(([k, label]) => [k, label, doc.budget[k]]));
    const sender = ctx && ctx.accepted ? ctx.accepted.timings : null;
    const rows = SENDER_TIMINGS.map((k) => [`sender.${k}`, `sender ${k.replace(/_s$/, "")}`, sender ? sender[k] : null]);
    for (const k of RECEIVER_TIMINGS) {
      rows.push([`receiver.${k}`, `receiver ${k.replace(/_s$/, "").replace("_", " ")}`, doc.timings[k]]);
    }
    fillTable($("timings-table"), rows);
    if (doc.status === "done") {
      $("received-image").src = doc.links.received_maps;
      $("denoised-image").src = doc.links.denoised_maps;
      $("generated-image").src = doc.links.image;
    } else if (doc.status === "failed") {
      showError(`the receiver could not finish ${doc.id}: ${doc.reason}`);
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
      $("sent-image").src = blobUrl(files.image);
      $("sent-name").textContent = files.image.name;
      $("sent-note").textContent = "your upload, shown from the file (the sender transmits only its semantic maps)";
    } else {
      $("sent-image").hidden = true;
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
          const img = el("img");
          img.alt = `${key} at ${doc.settings.psnr_db} dB`;
          img.src = doc.links[link];
          cells[key][i].replaceChildren(img);
        }
      }
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
    $("model-info").textContent = `Model: ${config.class_space}, ${config.resolution.join(" x ")}; `
      + `sender: ${config.sender_url}`;
    $("compare-button").textContent = `Compare PSNRs (${config.compare_psnrs_db.join(", ")} dB)`;
    $("send-form").addEventListener("submit", onSend);
    $("compare-button").addEventListener("click", onCompare);
    $("history-refresh").addEventListener("click", loadHistory);
    window.addEventListener("hashchange", route);
    window.addEventListener("popstate", route);
    document.body.dataset.ready = "true";
    loadHistory();
    route();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
