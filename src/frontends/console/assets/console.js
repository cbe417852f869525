// kmsim's console: every action is one call to /console/api/<Operation>, which kmsim audits like any other.
"use strict";

const STATES = ["Enabled", "Disabled", "PendingDeletion", "PendingImport"];
// The key-state machine as the page draws it: where each state sits, and the transitions between them.
const NODES = { Enabled: [110, 50], Disabled: [430, 50], PendingImport: [110, 190], PendingDeletion: [430, 190] };
const EDGES = [
  ["Enabled", "Disabled", "DisableKey", -14], ["Disabled", "Enabled", "EnableKey", 14],
  ["Enabled", "PendingDeletion", "ScheduleKeyDeletion", -10], ["Disabled", "PendingDeletion", "ScheduleKeyDeletion", 14],
  ["PendingDeletion", "Enabled", "CancelKeyDeletion", 10], ["PendingImport", "PendingDeletion", "ScheduleKeyDeletion", 0],
  ["PendingImport", "Enabled", "ImportKeyMaterial", 0],
];
const SVG = "http://www.w3.org/2000/svg";
function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// The diagram, the current state lit and the transitions it allows drawn as the way out.
function drawStates(current) {
  const drawing = svg("svg", { viewBox: "0 0 540 240", role: "img", "aria-label": `Key state: ${current}` });
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z" }));
  const defs = svg("defs", {});
  defs.append(marker);
  drawing.append(defs);
  for (const [from, to, operation, bend] of EDGES) {
    const [x1, y1] = NODES[from], [x2, y2] = NODES[to];
    const dx = x2 - x1, dy = y2 - y1, length = Math.hypot(dx, dy), ux = dx / length, uy = dy / length;
    const start = [x1 + ux * 70 - uy * bend, y1 + uy * 28 + ux * bend], end = [x2 - ux * 70 - uy * bend, y2 - uy * 28 + ux * bend];
    const line = svg("line", { x1: start[0], y1: start[1], x2: end[0], y2: end[1], "marker-end": "url(#arrow)",
      class: "edge" + (from === current ? " legal" : "") });
    line.append(svg("title", {}, operation));
    drawing.append(line);
  }
  for (const state of STATES) {
    const [x, y] = NODES[state];
    const group = svg("g", { class: "node" + (state === current ? " current" : "") });
    group.append(svg("rect", { x: x - 70, y: y - 28, width: 140, height: 56, rx: 28 }));
    group.append(svg("text", { x, y: y + 6, "text-anchor": "middle" }, state));
    drawing.append(group);
  }
  return drawing;
}
const $ = (id) => document.getElementById(id);
let selected = null;

// --- Calls ------------------------------------------------------------------

const encoder = new TextEncoder();
const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
const sha256 = async (text) => hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
async function hmac(key, text) {
  const imported = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", imported, encoder.encode(text));
}

// With an AccessKey given (kmsim run with --auth required), each call is SigV4-signed as any AWS client signs.
async function signed(path, body) {
  const id = sessionStorage.getItem("kmsim.id"), secret = sessionStorage.getItem("kmsim.secret");
  const headers = { "content-type": "application/json" };
  if (!id || !secret) return headers;
  const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8), region = "us-east-1", host = location.host;
  const signedHeaders = "content-type;host;x-amz-date";
  const canonical = ["POST", path, "", `content-type:application/json\nhost:${host}\nx-amz-date:${amzDate}\n`,
    signedHeaders, await sha256(body)].join("\n");
  const scope = `${day}/${region}/kms/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, await sha256(canonical)].join("\n");
  let key = encoder.encode("AWS4" + secret);
  for (const part of [day, region, "kms", "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  headers["x-amz-date"] = amzDate;
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${id}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}

async function call(operation, params = {}) {
  const path = "/console/api/" + operation, body = JSON.stringify(params);
  const response = await fetch(path, { method: "POST", headers: await signed(path, body), body });
  const answer = await response.json();
  if (!response.ok) {
    const error = new Error(`${answer.Code} (${answer.HttpStatus}): ${answer.Message}`);
    error.answer = answer;
    throw error;
  }
  return answer;
}

function show(element, error) {
  element.textContent = error.message;
  element.className = "error";
}

// --- Clock ------------------------------------------------------------------

async function refreshClock() {
  try { $("now").textContent = (await call("GetClock")).Now; } catch (error) { show($("now"), error); }
}

for (const button of document.querySelectorAll("[data-advance]")) {
  button.addEventListener("click", async () => {
    try {
      await call("AdvanceClock", { Seconds: Number(button.dataset.advance) });
    } catch (error) { show($("now"), error); }
    await refreshAll();
  });
}

$("set-clock").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await call("SetClock", { Time: $("set-time").value.trim() });
  } catch (error) { show($("now"), error); }
  await refreshAll();
});

// --- Keys -------------------------------------------------------------------

async function refreshKeys() {
  const rows = $("key-rows");
  try {
    const { Keys } = await call("ListKeys", { PageSize: 100 });
    rows.replaceChildren(...Keys.map((key) => {
      const row = document.createElement("tr");
      row.tabIndex = 0;
      row.dataset.keyId = key.KeyId;
      const rotation = key.AutomaticRotation === "Enabled" ? `every ${key.RotationIntervalDays} d` : "off";
      for (const text of [key.KeyId, key.KeyState, key.KeySpec, key.KeyUsage, key.Aliases.join(", "), rotation]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      const open = () => selectKey(key.KeyId);
      row.addEventListener("click", open);
      row.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
      return row;
    }));
  } catch (error) {
    const row = document.createElement("tr"), cell = document.createElement("td");
    cell.colSpan = 6;
    show(cell, error);
    row.append(cell);
    rows.replaceChildren(row);
  }
}

$("create-key").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const { Key } = await call("CreateKey", { KeySpec: $("spec").value, Description: $("description").value });
    await refreshAll();
    await selectKey(Key.KeyId);
  } catch (error) { alert(error.message); }
});

// --- A key ------------------------------------------------------------------

const TRANSITIONS = [
  { label: "Enable", operation: "EnableKey", from: ["Disabled"] },
  { label: "Disable", operation: "DisableKey", from: ["Enabled"] },
  { label: "Schedule deletion (7 days)", operation: "ScheduleKeyDeletion", from: ["Enabled", "Disabled", "PendingImport"],
    params: { PendingWindowInDays: 7 } },
  { label: "Cancel deletion", operation: "CancelKeyDeletion", from: ["PendingDeletion"] },
  { label: "Rotate now", operation: "CreateKeyVersion", from: ["Enabled"] },
];

async function selectKey(keyId) {
  selected = keyId;
  $("key").hidden = false;
  await refreshKey();
}

async function refreshKey() {
  if (!selected) return;
  let key;
  try {
    key = (await call("DescribeKey", { KeyId: selected })).Key;
  } catch (error) {
    show($("key-title"), error);
    return;
  }
  $("key-title").className = "";
  $("key-title").textContent = `${key.KeyId} · ${key.KeySpec} · ${key.KeyUsage}`;
  const lit = document.createElement("p");
  lit.className = "state current";
  lit.setAttribute("aria-current", "true");
  lit.textContent = key.KeyState;
  if (key.KeyState === "PendingDeletion" && key.DeleteDate) {
    const countdown = document.createElement("span");
    countdown.className = "countdown";
    countdown.dataset.deleteDate = key.DeleteDate;
    lit.append(countdown);
  }
  $("states").replaceChildren(drawStates(key.KeyState), lit);
  $("transitions").replaceChildren(...TRANSITIONS.map((transition) => {
    const button = document.createElement("button");
    button.textContent = transition.label;
    button.disabled = !transition.from.includes(key.KeyState);
    button.addEventListener("click", async () => {
      try {
        await call(transition.operation, { KeyId: key.KeyId, ...(transition.params || {}) });
        $("try-result").textContent = "";
      } catch (error) { show($("try-result"), error); }
      await refreshAll();
    });
    return button;
  }));
  await updateCountdown();
  try {
    const { KeyVersions } = await call("ListKeyVersions", { KeyId: key.KeyId });
    $("versions").replaceChildren(...KeyVersions.map((version, index) => {
      const item = document.createElement("li");
      const how = index === 0 ? "created" : version.OnDemand ? "rotated on demand" : "rotated on schedule";
      item.textContent = `${version.CreationDate} · ${how} · ${version.KeyVersionId}`;
      return item;
    }));
    if (key.NextRotationDate) {
      const next = document.createElement("li");
      next.textContent = `${key.NextRotationDate} · next scheduled rotation`;
      $("versions").append(next);
    }
  } catch (error) { show($("versions"), error); }
}

$("try").addEventListener("submit", (event) => event.preventDefault());
for (const button of document.querySelectorAll("[data-try]")) {
  button.addEventListener("click", async (event) => {
    event.preventDefault();
    const operation = button.dataset.try, input = $("try-input").value, result = $("try-result");
    const params = operation === "Encrypt" ? { KeyId: selected, Plaintext: input } : { CiphertextBlob: input };
    try {
      const answer = await call(operation, params);
      result.className = "success";
      result.textContent = operation === "Encrypt" ? answer.CiphertextBlob : answer.Plaintext;
      if (operation === "Encrypt") $("try-input").value = answer.CiphertextBlob;
    } catch (error) { show(result, error); }
    await refreshAudit();
  });
}

// The deletion date counts down in simulated time: days and hours left on the simulated clock.
async function updateCountdown() {
  const countdown = document.querySelector(".countdown");
  if (!countdown) return;
  try {
    const now = Date.parse((await call("GetClock")).Now), left = Date.parse(countdown.dataset.deleteDate) - now;
    const days = Math.floor(left / 86400000), hours = Math.floor((left % 86400000) / 3600000);
    countdown.textContent = left > 0 ? ` deleted in ${days} d ${hours} h (simulated)` : " due now";
  } catch (error) { show(countdown, error); }
}

// --- Audit ------------------------------------------------------------------

async function refreshAudit() {
  const rows = $("audit-rows");
  try {
    const { Events } = await call("QueryAuditEvents", { Query: $("audit-query").value, PageSize: 50 });
    rows.replaceChildren(...Events.map((event) => {
      const item = document.createElement("li");
      const outcome = event.errorCode ? `${event.errorCode} (${event.httpStatus})` : "ok";
      const at = new Date(event.eventTime).toISOString();
      item.textContent = `${at} ${event.eventName} ${event.keyId || ""} ${outcome} · ${event.userAgent || ""}`;
      if (event.errorCode) item.className = "error";
      item.tabIndex = 0;
      const open = () => openRecord(event.requestId);
      item.addEventListener("click", open);
      item.addEventListener("keydown", (key) => { if (key.key === "Enter") open(); });
      return item;
    }));
  } catch (error) {
    const item = document.createElement("li");
    show(item, error);
    rows.replaceChildren(item);
  }
}

// A record in any of its three renderings: the same record, as kmsim, ActionTrail and CloudTrail write it.
let openRequestId = null;
async function openRecord(requestId, format = "native") {
  openRequestId = requestId;
  $("record").hidden = false;
  for (const tab of document.querySelectorAll("[data-format]")) tab.setAttribute("aria-selected", String(tab.dataset.format === format));
  try {
    const { Events } = await call("QueryAuditEvents", { Query: `requestId:"${requestId}"`, PageSize: 1, Format: format });
    $("record-text").className = "";
    $("record-text").textContent = JSON.stringify(Events[0], null, 2);
  } catch (error) { show($("record-text"), error); }
}
for (const tab of document.querySelectorAll("[data-format]")) {
  tab.addEventListener("click", () => openRequestId && openRecord(openRequestId, tab.dataset.format));
}

// --- System events ----------------------------------------------------------

async function refreshEvents() {
  const rows = $("event-rows");
  try {
    const { Events } = await call("ListSystemEvents", { PageSize: 30 });
    rows.replaceChildren(...Events.map((event) => {
      const item = document.createElement("li");
      const subject = (event.resourceId || "").split(/[/:]/).pop();
      item.textContent = `${new Date(event.time).toISOString()} ${event.name} ${subject}`;
      return item;
    }));
  } catch (error) {
    const item = document.createElement("li");
    show(item, error);
    rows.replaceChildren(item);
  }
}

$("audit-filter").addEventListener("submit", (event) => { event.preventDefault(); refreshAudit(); });

// --- Sign-in ------------------------------------------------------------------

$("signin").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("kmsim.id", $("access-key-id").value.trim());
  sessionStorage.setItem("kmsim.secret", $("access-key-secret").value);
  $("access-key-secret").value = "";
  refreshAll();
});

async function refreshAll() {
  await Promise.all([refreshClock(), refreshKeys(), refreshKey(), refreshAudit(), refreshEvents()]);
}

refreshAll();
// The page's own polling is audited like every call; the default filter above leaves it out of the view.
setInterval(() => { refreshAudit(); refreshEvents(); }, 2000);
setInterval(() => { refreshClock(); updateCountdown(); }, 5000);
