// The console: plain JavaScript over the REST API (/api/v1), no build step.
"use strict";

const API = "/api/v1";
const COOKIE = "face_recognizer_key";
const PAGE_SIZE = 24;
const $ = (id) => document.getElementById(id);
let key = localStorage.getItem("apiKey") || "";
let health = null;
let offset = 0;
let statusTimer = null;

function setCookie(value) {
  // Only <img> requests (face crops, the live stream) use the cookie; everything else sends
  // the x-api-key header. SameSite=Strict keeps other sites from using it.
  const age = value ? "" : "; max-age=0";
  document.cookie = `${COOKIE}=${encodeURIComponent(value)}; path=/; SameSite=Strict${age}`;
}

async function api(path, options = {}) {
  const headers = Object.assign({ "x-api-key": key }, options.headers || {});
  const response = await fetch(API + path, Object.assign({}, options, { headers }));
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (response.status === 401) { logout("Your key is no longer valid; log in again."); }
  if (!response.ok) {
    const error = new Error((body && body.error) || `The server answered ${response.status}.`);
    error.body = body;
    throw error;
  }
  return body;
}

function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 3500);
}

function enc(name) { return encodeURIComponent(name); }

// "1 photo", "2 photos" (the CLI's words.plural)
function plural(n, noun) { return `${n} ${n === 1 ? noun : noun + "s"}`; }

// -- pages ----------------------------------------------------------------------------------
function show(page) {
  for (const el of document.querySelectorAll(".page")) el.hidden = el.id !== page;
  for (const el of document.querySelectorAll(".tab")) el.classList.toggle("active", el.dataset.page === page);
  $("nav").hidden = page === "login";
  if (page !== "live") stopLive();
  if (page === "live") startLive();
  if (page === "people") loadPeople();
}

function route() {
  if (!key) { show("login"); return; }
  const page = (location.hash || "#live").slice(1);
  show(["live", "people", "identify"].includes(page) ? page : "live");
}

async function login(candidate) {
  key = candidate.trim();
  try {
    await api("/whoami");
  } catch (error) {
    key = "";
    $("login-error").textContent = error.message;
    return;
  }
  localStorage.setItem("apiKey", key);
  setCookie(key);
  $("login-error").textContent = "";
  health = await api("/health");
  if (!location.hash) location.hash = "#live";
  route();
}

function logout(message) {
  key = "";
  localStorage.removeItem("apiKey");
  setCookie("");
  stopLive();
  $("login-error").textContent = message || "";
  show("login");
}

// -- live -----------------------------------------------------------------------------------
async function startLive() {
  if (!health) health = await api("/health");
  $("live-off").hidden = health.live;
  $("live-on").hidden = !health.live;
  if (!health.live) return;
  $("live-img").src = `${API}/live/stream.mjpeg?t=${Date.now()}`;
  pollStatus();
}

function stopLive() {
  clearTimeout(statusTimer);
  statusTimer = null;
  if ($("live-img").src) $("live-img").removeAttribute("src");
}

async function pollStatus() {
  try {
    const s = await api("/live/status");
    $("live-status").textContent = s.error ? `${s.status} | ${s.error}` : s.status;
    const names = $("live-names");
    names.replaceChildren();
    for (const face of s.faces) {
      const tag = document.createElement("span");
      tag.textContent = face.name ? `${face.name} ${face.similarity.toFixed(2)}` : "Unknown";
      if (!face.name) tag.className = "unknown";
      names.append(tag);
    }
  } catch (error) {
    $("live-status").textContent = error.message;
  }
  if (!$("live").hidden && key) statusTimer = setTimeout(pollStatus, 500);
}

async function snap(event) {
  event.preventDefault();
  const name = $("snap-name").value.trim();
  const out = $("snap-result");
  out.textContent = "Snapping...";
  try {
    const frame = await fetch(`${API}/live/frame.jpg`, { headers: { "x-api-key": key } });
    if (!frame.ok) throw new Error((await frame.json()).error);
    const form = new FormData();
    form.append("file", await frame.blob(), "live snap.jpg");
    const r = await api(`/people/${enc(name)}/faces`, { method: "POST", body: form });
    out.textContent = r.added ? `Added a photo to ${r.name}, who now has ${r.person_photos}.`
                              : `Not added: ${r.photos[0].result}.`;
  } catch (error) {
    out.textContent = error.message;
  }
}

// -- people ---------------------------------------------------------------------------------
async function loadPeople() {
  let page;
  try {
    page = await api(`/people?limit=${PAGE_SIZE}&offset=${offset}`);
  } catch (error) { toast(error.message); return; }
  if (page.people.length === 0 && offset > 0) { offset = Math.max(0, offset - PAGE_SIZE); return loadPeople(); }
  $("people-summary").textContent = page.total === 0 ? "No one is enrolled yet."
    : `${page.total} ${page.total === 1 ? "person" : "people"}`
      + (page.total > PAGE_SIZE ? ` (showing ${offset + 1}-${offset + page.people.length})` : "");
  const list = $("people-list");
  list.replaceChildren(...page.people.map(personCard));
  document.querySelector(".pager").hidden = page.total <= PAGE_SIZE;
  $("prev").disabled = offset === 0;
  $("next").disabled = offset + PAGE_SIZE >= page.total;
  $("page-label").textContent = `page ${offset / PAGE_SIZE + 1} of ${Math.ceil(page.total / PAGE_SIZE)}`;
}

function personCard(person) {
  const card = document.createElement("div");
  card.className = "person";
  card.dataset.name = person.name;
  const thumbs = document.createElement("div");
  thumbs.className = "thumbs";
  person.faces.slice(0, 6).forEach((face, i) => {
    const img = document.createElement("img");
    img.src = face.crop;
    img.alt = `${person.name}, photo ${i + 1}`;
    img.title = "Click to remove this photo";
    img.className = i === 0 ? "main" : "";
    img.addEventListener("click", () => removeFace(person, face.id));
    thumbs.append(img);
  });
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = person.name;
  const count = document.createElement("div");
  count.className = "count";
  count.textContent = `${person.photos} photo${person.photos === 1 ? "" : "s"}`;
  const actions = document.createElement("div");
  actions.className = "actions";
  const rename = document.createElement("button");
  rename.className = "quiet rename";
  rename.textContent = "Rename";
  rename.addEventListener("click", () => renamePerson(person));
  const remove = document.createElement("button");
  remove.className = "danger remove";
  remove.textContent = "Remove";
  remove.addEventListener("click", () => removePerson(person));
  actions.append(rename, remove);
  card.append(thumbs, name, count, actions);
  return card;
}

async function renamePerson(person) {
  const name = prompt(`New name for ${person.name}:`, person.name);
  if (!name || name.trim() === person.name) return;
  try {
    await api(`/people/${enc(person.name)}`, {
      method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ name }),
    });
    toast(`Renamed ${person.name} to ${name.trim()}.`);
  } catch (error) { toast(error.message); }
  loadPeople();
}

async function removePerson(person) {
  if (!confirm(`Remove ${person.name} and ${plural(person.photos, "photo")}? This cannot be undone.`)) return;
  try {
    await api(`/people/${enc(person.name)}`, { method: "DELETE" });
    toast(`Removed ${person.name}.`);
  } catch (error) { toast(error.message); }
  loadPeople();
}

async function removeFace(person, id) {
  const last = person.photos === 1 ? ` It is ${person.name}'s only photo, so ${person.name} goes too.` : "";
  if (!confirm(`Remove this photo of ${person.name}?${last}`)) return;
  try {
    await api(`/faces/${id}`, { method: "DELETE" });
    toast("Photo removed.");
  } catch (error) { toast(error.message); }
  loadPeople();
}

async function addPerson(event) {
  event.preventDefault();
  const name = $("add-name").value.trim();
  const files = $("add-files").files;
  const out = $("add-result");
  out.replaceChildren(line(`Uploading ${plural(files.length, "photo")}...`));
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);
  let report;
  try {
    report = await api(`/people/${enc(name)}/faces`, { method: "POST", body: form });
  } catch (error) {
    out.replaceChildren(line(error.message, "bad"));
    for (const p of (error.body && error.body.photos) || []) out.append(line(`${p.file}: ${p.result}`, "bad"));
    return;
  }
  out.replaceChildren(line(`${report.name}: ${report.added} added, ${plural(report.person_photos, "photo")} in all.`, "ok"));
  for (const p of report.photos) out.append(line(`${p.file}: ${p.result}`, p.result === "ok" ? "ok" : "bad"));
  $("add-files").value = "";
  $("add-name").value = "";
  loadPeople();
}

function line(text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  return li;
}

// -- identify -------------------------------------------------------------------------------
async function identify(file) {
  const out = $("identify-result");
  out.textContent = "Looking...";
  const form = new FormData();
  form.append("file", file, file.name);
  let result;
  try {
    result = await api("/identify", { method: "POST", body: form });
  } catch (error) { out.textContent = error.message; $("identify-canvas").hidden = true; return; }
  const known = result.faces.filter((f) => f.name).map((f) => `${f.name} (${f.similarity.toFixed(2)})`);
  out.textContent = result.faces.length === 0 ? "No face found."
    : `${plural(result.faces.length, "face")}: ` + (known.length ? known.join(", ") : "nobody known")
      + (result.faces.length > known.length ? `, ${result.faces.length - known.length} unknown` : "");
  const image = await createImageBitmap(file);
  const canvas = $("identify-canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0);
  const line = Math.max(2, Math.round(image.width / 300));
  ctx.font = `600 ${Math.max(14, Math.round(image.width / 40))}px system-ui, sans-serif`;
  for (const face of result.faces) {
    const [x1, y1, x2, y2] = face.box;
    const color = face.name ? "#2f9e44" : "#f0592a";
    const label = face.name ? `${face.name} ${face.similarity.toFixed(2)}` : "Unknown";
    ctx.lineWidth = line;
    ctx.strokeStyle = color;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const h = parseInt(ctx.font.match(/(\d+)px/)[1], 10) + 6;
    const w = ctx.measureText(label).width + 8;
    const top = y1 - h >= 0 ? y1 - h : y2;
    ctx.fillStyle = color;
    ctx.fillRect(x1, top, w, h);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, x1 + 4, top + h - 6);
  }
  canvas.hidden = false;
}

// -- wiring ---------------------------------------------------------------------------------
window.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("key").value); });
  $("logout").addEventListener("click", () => logout());
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => { location.hash = `#${tab.dataset.page}`; });
  }
  window.addEventListener("hashchange", route);
  $("add-form").addEventListener("submit", addPerson);
  $("snap-form").addEventListener("submit", snap);
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE_SIZE); loadPeople(); });
  $("next").addEventListener("click", () => { offset += PAGE_SIZE; loadPeople(); });
  $("identify-file").addEventListener("change", (e) => { if (e.target.files[0]) identify(e.target.files[0]); });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) identify(e.dataTransfer.files[0]);
  });
  if (key) { setCookie(key); login(key); } else { route(); }
});
