// kmsim's console: every action is one call to /console/api/<Operation>, which kmsim audits like any other; the
// live audit and system events are streams the server holds open (/console/api/TailAuditEvents and
// WatchSystemEvents), topped up from the store whenever they (re)open, so a reload or a server restart loses nothing.
"use strict";

const $ = (id) => document.getElementById(id);
const element = (name, attributes = {}, text) => {
  const made = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
  if (text !== undefined) made.textContent = text;
  return made;
};

// What the page remembers across a reload: the open key (in the address, so it can be shared), the audit query and
// where the lesson stands (in this browser).
const remembered = {
  get query() { return localStorage.getItem("kmsim.console.query"); },
  set query(value) { localStorage.setItem("kmsim.console.query", value); },
  get lesson() { try { return JSON.parse(localStorage.getItem("kmsim.console.lesson")) || null; } catch { return null; } },
  set lesson(value) { localStorage.setItem("kmsim.console.lesson", JSON.stringify(value)); },
};
// The page's own reads (it reads after every change) would bury what matters; everything else shows, its
// cryptography and its refusals too.
const OWN_READS = ["ListKeys", "DescribeKey", "ListKeyVersions", "GetClock", "QueryAuditEvents", "ListSystemEvents",
  "TailAuditEvents", "WatchSystemEvents"];
const DEFAULT_QUERY = `not (frontend:console and (${OWN_READS.map((name) => "eventName:" + name).join(" or ")}))`;

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

async function post(operation, params, signal) {
  const path = "/console/api/" + operation, body = JSON.stringify(params);
  const response = await fetch(path, { method: "POST", headers: await signed(path, body), body, signal });
  if (!response.ok) {
    const answer = await response.json();
    const error = new Error(`${answer.Code} (${answer.HttpStatus}): ${answer.Message}`);
    error.answer = answer;
    throw error;
  }
  return response;
}

const call = async (operation, params = {}) => (await post(operation, params)).json();

// A live view: `onOpen` once the server holds it open (and has subscribed), then `onEvent(name, data)` per event.
// Returns when the server ends it (a restart); throws when it is refused or the connection drops.
async function watch(operation, params, signal, onOpen, onEvent) {
  const response = await post(operation, params, signal);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", opened = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    for (let end; (end = buffer.indexOf("\n\n")) >= 0; buffer = buffer.slice(end + 2)) {
      if (!opened) { opened = true; await onOpen(); }
      const block = buffer.slice(0, end);
      const event = /^event: (.*)$/m.exec(block), data = /^data: (.*)$/m.exec(block);
      if (event && data) onEvent(event[1], JSON.parse(data[1]));
    }
  }
}

// Keeps a live view open: on any end it says so, waits a little longer each time, and opens it again.
function keepWatching(operation, params, { onOpen, onEvent }) {
  const controller = new AbortController();
  (async () => {
    for (let wait = 500; !controller.signal.aborted; wait = Math.min(wait * 2, 8000)) {
      try {
        await watch(operation, params(), controller.signal, async () => { wait = 500; live(operation, true); await onOpen(); }, onEvent);
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error.answer) live(operation, false, error.message);
      }
      live(operation, false);
      await new Promise((resume) => setTimeout(resume, wait));
    }
  })();
  return controller;
}

const liveViews = {};
function live(operation, open, problem) {
  liveViews[operation] = open;
  const status = $("live"), all = Object.values(liveViews).every(Boolean);
  status.textContent = all ? "● live" : problem || "○ reconnecting…";
  status.className = all ? "live" : "stale";
}

function show(target, error) {
  target.textContent = error.message;
  target.className = "error";
}

// --- Clock ------------------------------------------------------------------

// The simulated clock runs at the wall clock's pace from an offset: the page ticks it itself, and reads it again
// whenever something may have moved it.
let clockOffsetMs = null;
const simulatedNow = () => new Date(Date.now() + clockOffsetMs);
const instant = (date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

async function refreshClock() {
  try {
    const { Now } = await call("GetClock");
    clockOffsetMs = Date.parse(Now) - Date.now();
    tick();
  } catch (error) { show($("now"), error); }
}

function tick() {
  if (clockOffsetMs === null) return;
  $("now").textContent = instant(simulatedNow());
  $("now").className = "";
  for (const countdown of document.querySelectorAll(".countdown")) {
    const left = Date.parse(countdown.dataset.deleteDate) - simulatedNow();
    const days = Math.floor(left / 86400000), hours = Math.floor((left % 86400000) / 3600000);
    countdown.textContent = left > 0 ? ` deleted in ${days} d ${hours} h (simulated)` : " due now";
  }
}

for (const button of document.querySelectorAll("[data-advance]")) {
  button.addEventListener("click", async () => {
    try {
      await call("AdvanceClock", { Seconds: Number(button.dataset.advance) });
    } catch (error) { show($("now"), error); }
    await refreshState();
  });
}

$("set-clock").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await call("SetClock", { Time: $("set-time").value.trim() });
  } catch (error) { show($("now"), error); }
  await refreshState();
});

// --- Keys -------------------------------------------------------------------

const KEYS_PER_PAGE = 100;
let keysPage = 1;

async function refreshKeys() {
  const rows = $("key-rows");
  try {
    const { Keys, TotalCount } = await call("ListKeys", { PageNumber: keysPage, PageSize: KEYS_PER_PAGE });
    rows.replaceChildren(...Keys.map((key) => {
      const row = element("tr", { tabindex: 0, "data-key-id": key.KeyId });
      if (key.KeyId === selected) row.setAttribute("aria-selected", "true");
      const rotation = key.AutomaticRotation === "Enabled" ? `every ${key.RotationIntervalDays} d` : "off";
      for (const text of [key.KeyId, key.KeyState, key.KeySpec, key.KeyUsage, key.Aliases.join(", "), rotation]) {
        row.append(element("td", {}, text));
      }
      row.children[1].className = "state-" + key.KeyState;
      const open = () => selectKey(key.KeyId);
      row.addEventListener("click", open);
      row.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
      return row;
    }));
    const first = TotalCount ? (keysPage - 1) * KEYS_PER_PAGE + 1 : 0, last = Math.min(keysPage * KEYS_PER_PAGE, TotalCount);
    $("keys-count").textContent = `${first}–${last} of ${TotalCount}`;
    $("keys-previous").disabled = keysPage <= 1;
    $("keys-next").disabled = last >= TotalCount;
    if (!performance.getEntriesByName("kmsim:keys").length) performance.mark("kmsim:keys");
  } catch (error) {
    const cell = element("td", { colspan: 6 });
    show(cell, error);
    rows.replaceChildren(element("tr"));
    rows.firstChild.append(cell);
  }
}
$("keys-previous").addEventListener("click", () => { keysPage -= 1; refreshKeys(); });
$("keys-next").addEventListener("click", () => { keysPage += 1; refreshKeys(); });

$("create-key").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const params = { KeySpec: $("spec").value, KeyUsage: $("usage").value, Description: $("description").value };
    const { Key } = await call("CreateKey", params);
    await selectKey(Key.KeyId);
    await refreshKeys();
  } catch (error) { show($("create-result"), error); }
});

// --- A key ------------------------------------------------------------------

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
  const made = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
  if (text !== undefined) made.textContent = text;
  return made;
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

const TRANSITIONS = [
  { label: "Enable", operation: "EnableKey", from: ["Disabled"] },
  { label: "Disable", operation: "DisableKey", from: ["Enabled"] },
  { label: "Schedule deletion", operation: "ScheduleKeyDeletion", from: ["Enabled", "Disabled", "PendingImport"],
    params: () => ({ PendingWindowInDays: Number($("window").value) }) },
  { label: "Cancel deletion", operation: "CancelKeyDeletion", from: ["PendingDeletion"] },
  { label: "Rotate now", operation: "CreateKeyVersion", from: ["Enabled"] },
];

// What "try it" does with a key, by what the key is for: each action names its call and what it sends.
const SIGNING = { RSA_2048: "RSA_PKCS1_SHA_256", RSA_3072: "RSA_PKCS1_SHA_256", RSA_4096: "RSA_PKCS1_SHA_256",
  EC_P256: "ECDSA_SHA_256", EC_P256K: "ECDSA_SHA_256", EC_P384: "ECDSA_SHA_384", EC_P521: "ECDSA_SHA_512", EC_SM2: "SM2DSA" };
const MAC = { HMAC_224: "HMAC_SHA_224", HMAC_256: "HMAC_SHA_256", HMAC_384: "HMAC_SHA_384", HMAC_512: "HMAC_SHA_512" };
function tryActions(key) {
  const text = () => $("try-input").value, result = () => $("try-output").value.trim();
  const base = { KeyId: key.KeyId };
  switch (key.KeyUsage) {
    case "SIGN/VERIFY": {
      const Algorithm = SIGNING[key.KeySpec];
      return [
        { label: "Sign", operation: "Sign", params: () => ({ ...base, Algorithm, Message: text() }), output: (a) => a.Signature },
        { label: "Verify", operation: "Verify", params: () => ({ ...base, Algorithm, Message: text(), Signature: result() }),
          output: (a) => (a.Value ? "valid" : "not valid") },
      ];
    }
    case "GENERATE/VERIFY_MAC": {
      const Algorithm = MAC[key.KeySpec];
      return [
        { label: "MAC", operation: "GenerateMac", params: () => ({ ...base, Algorithm, Message: text() }), output: (a) => a.Mac },
        { label: "Verify MAC", operation: "VerifyMac", params: () => ({ ...base, Algorithm, Message: text(), Mac: result() }),
          output: (a) => (a.Value ? "valid" : "not valid") },
      ];
    }
    default:
      if (key.KeySpec.startsWith("RSA") || key.KeySpec === "EC_SM2") {
        const Algorithm = key.KeySpec === "EC_SM2" ? "SM2PKE" : "RSAES_OAEP_SHA_256";
        return [
          { label: "Encrypt", operation: "AsymmetricEncrypt", params: () => ({ ...base, Algorithm, Plaintext: text() }),
            output: (a) => a.CiphertextBlob },
          { label: "Decrypt", operation: "AsymmetricDecrypt", params: () => ({ ...base, Algorithm, CiphertextBlob: result() }),
            output: (a) => a.Plaintext },
        ];
      }
      return [
        { label: "Encrypt", operation: "Encrypt", params: () => ({ ...base, Plaintext: text() }), output: (a) => a.CiphertextBlob },
        { label: "Decrypt", operation: "Decrypt", params: () => ({ CiphertextBlob: result() }), output: (a) => a.Plaintext },
      ];
  }
}

let selected = null;

async function selectKey(keyId) {
  selected = keyId;
  history.replaceState(null, "", keyId ? "#key=" + encodeURIComponent(keyId) : location.pathname);
  $("key").hidden = !keyId;
  $("try-result").textContent = "";
  $("try-output").value = "";
  for (const row of document.querySelectorAll("#key-rows tr")) {
    row.toggleAttribute("aria-selected", row.dataset.keyId === keyId);
  }
  await refreshKey();
}

async function refreshKey() {
  if (!selected) return;
  let key;
  try {
    key = (await call("DescribeKey", { KeyId: selected })).Key;
  } catch (error) {
    show($("key-title"), error);
    $("states").replaceChildren();
    $("transitions").replaceChildren();
    $("try-buttons").replaceChildren();
    return;
  }
  $("key-title").className = "";
  $("key-title").textContent = `${key.KeyId} · ${key.KeySpec} · ${key.KeyUsage}`;
  const lit = element("p", { class: "state current", "aria-current": "true" }, key.KeyState);
  if (key.KeyState === "PendingDeletion" && key.DeleteDate) {
    lit.append(element("span", { class: "countdown", "data-delete-date": key.DeleteDate }));
  }
  $("states").replaceChildren(drawStates(key.KeyState), lit);
  $("transitions").replaceChildren(...TRANSITIONS.map((transition) => {
    const button = element("button", { type: "button" }, transition.label);
    button.disabled = !transition.from.includes(key.KeyState);
    button.addEventListener("click", async () => {
      try {
        await call(transition.operation, { KeyId: key.KeyId, ...(transition.params ? transition.params() : {}) });
        $("try-result").textContent = "";
      } catch (error) { show($("try-result"), error); }
      await refreshState();
    });
    return button;
  }));
  $("try-buttons").replaceChildren(...tryActions(key).map((action) => {
    const button = element("button", { type: "button", "data-try": action.operation }, action.label);
    button.addEventListener("click", () => tryIt(action));
    return button;
  }));
  tick();
  try {
    const { KeyVersions } = await call("ListKeyVersions", { KeyId: key.KeyId });
    $("versions").replaceChildren(...KeyVersions.map((version, index) => {
      const how = index === 0 ? "created" : version.OnDemand ? "rotated on demand" : "rotated on schedule";
      return element("li", { class: how.replace(/ /g, "-") }, `${version.CreationDate} · ${how} · ${version.KeyVersionId}`);
    }));
    if (key.NextRotationDate) $("versions").append(element("li", { class: "due" }, `${key.NextRotationDate} · next scheduled rotation`));
  } catch (error) { show($("versions"), error); }
}

// One try: the exact answer or the exact error, and the record the call left, opened beside it.
async function tryIt(action) {
  const result = $("try-result");
  try {
    const response = await post(action.operation, action.params());
    const answer = await response.json();
    result.className = "success";
    result.textContent = `${action.label}: ${action.output(answer)}`;
    if (/Sign|MAC|Encrypt/.test(action.label) && !/Verify/.test(action.label)) $("try-output").value = action.output(answer);
    await openRecord(response.headers.get("x-kmsim-request-id"));
  } catch (error) {
    show(result, error);
    if (error.answer) await openRecord(error.answer.RequestId);
  }
}

// --- Audit ------------------------------------------------------------------

const SHOWN_RECORDS = 200;
const records = new Map();

function addRecords(list) {
  for (const record of list) records.set(record.eventId, record);
  const newest = [...records.values()].sort((a, b) => b.eventTime - a.eventTime).slice(0, SHOWN_RECORDS);
  records.clear();
  for (const record of newest) records.set(record.eventId, record);
  $("audit-rows").replaceChildren(...newest.map((record) => {
    const outcome = record.errorCode ? `${record.errorCode} (${record.httpStatus})` : "ok";
    const item = element("li", { tabindex: 0, class: record.errorCode ? "error" : "" });
    item.append(element("time", {}, instant(new Date(record.eventTime))), " ",
      element("strong", {}, record.eventName), ` ${record.keyId || record.secretName || ""} ${outcome} `,
      element("span", { class: "via", title: record.userAgent || "" }, `· ${record.frontend || "kmsim"} · ${client(record.userAgent)}`));
    const open = () => openRecord(record.requestId);
    item.addEventListener("click", open);
    item.addEventListener("keydown", (key) => { if (key.key === "Enter") open(); });
    return item;
  }));
  if (!performance.getEntriesByName("kmsim:audit").length) performance.mark("kmsim:audit");
}

// Who called, in a word: the browser and its version, or the User-Agent's first product (`kmsim-cli/0.1.0`,
// `Boto3/1.40.0`); the whole of it is the row's tooltip and in the record.
function client(userAgent = "") {
  const browser = /(HeadlessChrome|Firefox|Edg|Chrome|Safari)\/\d+/.exec(userAgent);
  return browser ? browser[0] : userAgent.split(" ")[0];
}

// The newest stored records for the query: what the live view starts from and, after a reconnect, fills in.
async function loadStoredRecords() {
  const { Events } = await call("QueryAuditEvents", { Query: auditQuery(), PageSize: 50 });
  addRecords(Events);
}

const auditQuery = () => $("audit-query").value.trim();
let auditView = null;
function watchAudit() {
  auditView?.abort();
  records.clear();
  $("audit-rows").replaceChildren();
  auditView = keepWatching("TailAuditEvents", () => ({ Query: auditQuery() }), {
    onOpen: () => loadStoredRecords().catch((error) => show($("audit-problem"), error)),
    onEvent: (name, record) => {
      if (name !== "audit") return loadStoredRecords();
      addRecords([record]);
      // A change anywhere (another front end, the CLI, the scheduler) shows on the page as it happens.
      if (record.eventRw !== "Read" || record.eventName === "SetClock" || record.eventName === "AdvanceClock") stateChanged();
    },
  });
}

$("audit-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  $("audit-problem").textContent = "";
  remembered.query = auditQuery();
  watchAudit();
});

// A record in any of its three renderings: the same record, as kmsim, ActionTrail and CloudTrail write it.
let openRequestId = null;
async function openRecord(requestId, format = "native") {
  if (!requestId) return;
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

const systemEvents = new Map();
function addSystemEvents(list) {
  for (const event of list) systemEvents.set(event.id, event);
  const newest = [...systemEvents.values()].sort((a, b) => Date.parse(b.time) - Date.parse(a.time)).slice(0, 100);
  $("event-rows").replaceChildren(...newest.map((event) => {
    const subject = (event.resourceId || "").split(/[/:]/).pop();
    return element("li", { class: "level-" + String(event.level).toLowerCase() }, `${instant(new Date(event.time))} ${event.name} ${subject}`);
  }));
}

keepWatching("WatchSystemEvents", () => ({}), {
  onOpen: async () => {
    try { addSystemEvents((await call("ListSystemEvents", { PageSize: 50 })).Events); } catch (error) { show($("event-rows"), error); }
  },
  onEvent: (name, event) => { if (name === "system") { addSystemEvents([event]); stateChanged(); } },
});

// --- The lesson ---------------------------------------------------------------

// The tutorial's path (docs/tutorial.md), each step one or two calls, then a pointer at what changed.
const LESSON = [
  { title: "Create a key", look: "key",
    says: "A symmetric key (Aliyun_AES_256): it starts Enabled, with one version.",
    run: async (l) => {
      const { Key } = await call("CreateKey", { KeySpec: "Aliyun_AES_256", Description: "lesson: the life of a key" });
      l.keyId = Key.KeyId;
      await selectKey(Key.KeyId);
      return `Created ${Key.KeyId}: ${Key.KeyState}.`;
    } },
  { title: "Encrypt and decrypt", look: "try",
    says: "Encrypt a message. The ciphertext names the key version that sealed it; Decrypt needs nothing else.",
    run: async (l) => {
      const sealed = await call("Encrypt", { KeyId: l.keyId, Plaintext: "hello, class" });
      l.blob = sealed.CiphertextBlob;
      const opened = await call("Decrypt", { CiphertextBlob: sealed.CiphertextBlob });
      $("try-output").value = sealed.CiphertextBlob;
      return `Sealed under version ${sealed.KeyVersionId}; decrypted back to "${opened.Plaintext}".`;
    } },
  { title: "Rotate the key", look: "versions",
    says: "A new version: new encryptions use it, and the old ciphertext still decrypts.",
    run: async (l) => {
      const version = await call("CreateKeyVersion", { KeyId: l.keyId });
      const opened = await call("Decrypt", { CiphertextBlob: l.blob });
      return `New version ${version.KeyVersionId}; the old ciphertext still opens: "${opened.Plaintext}".`;
    } },
  { title: "Disable the key", look: "states",
    says: "A disabled key keeps its material but refuses all cryptography.",
    run: async (l) => { await call("DisableKey", { KeyId: l.keyId }); return "The key is Disabled."; } },
  { title: "Meet Rejected.Disabled", look: "try",
    says: "Encrypt again: KMS refuses, with the code and HTTP status every SDK sees.",
    run: async (l) => {
      try {
        await call("Encrypt", { KeyId: l.keyId, Plaintext: "hello again" });
        return "The key encrypted: it was not disabled.";
      } catch (error) {
        show($("try-result"), error);
        await openRecord(error.answer?.RequestId);
        return `Refused: ${error.answer?.Code} (${error.answer?.HttpStatus}).`;
      }
    } },
  { title: "Find the failure in the audit trail", look: "audit",
    says: "Every call leaves a record, refused or not. Query the trail for this key's refusals.",
    run: async (l) => {
      $("audit-query").value = `errorCode:"Rejected.Disabled" and keyId:"${l.keyId}"`;
      remembered.query = auditQuery();
      watchAudit();
      const { Events } = await call("QueryAuditEvents", { Query: auditQuery(), PageSize: 10 });
      return `${Events.length} refused call${Events.length === 1 ? "" : "s"} on record, with client, caller and code.`;
    } },
  { title: "Schedule the deletion", look: "states",
    says: "Deletion waits out a window (7 to 366 days), during which it can be cancelled.",
    run: async (l) => {
      const { DeleteDate } = await call("ScheduleKeyDeletion", { KeyId: l.keyId, PendingWindowInDays: 7 });
      return `PendingDeletion; due ${DeleteDate} (simulated time).`;
    } },
  { title: "Fast-forward a week", look: "clock",
    says: "Move the simulated clock a week and an hour ahead: the deletion falls due, and kmsim carries it out.",
    run: async () => {
      const { Now } = await call("AdvanceClock", { Seconds: 7 * 86400 + 3600 });
      return `The simulated clock reads ${Now}.`;
    } },
  { title: "Watch the deletion event", look: "events",
    says: "KMS tells CloudMonitor when a key is deleted: a system event, in CloudMonitor's own JSON.",
    run: async (l) => {
      const { Events } = await call("ListSystemEvents", { Name: "Key:DeleteKey:ActualDeletion", PageSize: 50 });
      const mine = Events.find((event) => (event.resourceId || "").endsWith(l.keyId));
      return mine ? `Key:DeleteKey:ActualDeletion at ${mine.time}.` : "No deletion event yet.";
    } },
  { title: "The key is gone", look: "key",
    says: "A deleted key is gone for good: its ciphertext can never be opened again.",
    run: async (l) => {
      try {
        await call("Decrypt", { CiphertextBlob: l.blob });
        return "The ciphertext still opened: the key is not gone.";
      } catch (error) {
        show($("try-result"), error);
        await refreshKey();
        return `Decrypt: ${error.answer?.Code} (${error.answer?.HttpStatus}).`;
      }
    } },
];

function drawLesson() {
  const progress = remembered.lesson || { step: 0, results: [] };
  $("lesson-steps").replaceChildren(...LESSON.map((step, index) => {
    const item = element("li", { class: index < progress.step ? "done" : index === progress.step ? "current" : "" });
    item.append(element("strong", {}, step.title));
    if (index === progress.step) {
      item.setAttribute("aria-current", "step");
      item.append(element("p", {}, step.says));
      const button = element("button", { type: "button", id: "lesson-do" }, `Do step ${index + 1}`);
      button.addEventListener("click", () => doStep(index));
      item.append(button);
    }
    if (progress.results[index]) item.append(element("p", { class: "result" }, progress.results[index]));
    return item;
  }));
  $("lesson-restart").hidden = progress.step === 0;
  if (progress.step >= LESSON.length) $("lesson-steps").append(element("li", { class: "current" }, "Lesson complete."));
}

async function doStep(index) {
  const progress = remembered.lesson || { step: 0, results: [] };
  const step = LESSON[index];
  $("lesson-do").disabled = true;
  let said;
  try {
    said = await step.run(progress);
  } catch (error) {
    said = error.message;
  }
  progress.results[index] = said;
  progress.step = index + 1;
  remembered.lesson = progress;
  drawLesson();
  await refreshState();
  // Point at what changed.
  const look = $(step.look);
  look.classList.remove("look");
  void look.offsetWidth;
  look.classList.add("look");
  look.scrollIntoView({ block: "nearest" });
  $("lesson-do")?.focus();
}

$("lesson-restart").addEventListener("click", () => { remembered.lesson = null; drawLesson(); });

// --- Sign-in ------------------------------------------------------------------

$("signin").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("kmsim.id", $("access-key-id").value.trim());
  sessionStorage.setItem("kmsim.secret", $("access-key-secret").value);
  $("access-key-secret").value = "";
  refreshState();
  watchAudit();
});

// --- Putting it together --------------------------------------------------------

async function refreshState() {
  await Promise.all([refreshClock(), refreshKeys(), refreshKey()]);
}

// Changes arrive in bursts (a year on the clock is many rotations): one refresh after the burst.
let pending = null;
function stateChanged() {
  clearTimeout(pending);
  pending = setTimeout(refreshState, 200);
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") $("record").hidden = true;
});

$("audit-query").value = remembered.query ?? DEFAULT_QUERY;
const fromAddress = /^#key=(.+)$/.exec(location.hash);
if (fromAddress) selectKey(decodeURIComponent(fromAddress[1]));
drawLesson();
refreshState();
watchAudit();
setInterval(tick, 1000);
