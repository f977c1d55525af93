// The meshbroker console: a client of the resource API like any other. The
// token stays in this tab's sessionStorage; every request carries it, and the
// server decides what it may see and change.
"use strict";

const state = { token: null, who: null, objects: {}, watches: [], tail: null, rates: {}, sample: null, poller: null };

// How often the Mesh page's edge rates are sampled.
const RATE_EVERY_MS = 2000;

// How many tail records the page keeps (newest first).
const TAIL_SHOWN = 200;

const $ = (selector) => document.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) made.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    made.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return made;
}

// The server's own words for a refusal: a Kubernetes Status `message`, or the
// `description` of the other APIs.
async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: `Bearer ${state.token}` }, options.headers || {});
  if (options.body !== undefined && !headers["Content-Type"]) headers["Content-Type"] = "application/json";
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (!response.ok) {
    const said = body && (body.message || body.description || body.error);
    throw new Error(said || `${response.status} ${response.statusText}`);
  }
  return body;
}

function key(object) {
  const meta = object.metadata || {};
  return `${meta.namespace || ""}/${meta.name}`;
}

// Reads a stream of JSON lines, handing each object to `each` and calling
// `after` once per chunk, until the server ends it.
async function readLines(response, each, after = () => {}) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) each(JSON.parse(line));
    }
    after();
  }
}

// One stream of every kind the page shows (the server picks them by who the
// token is). A fresh stream starts with every object as ADDED, so a reconnect
// rebuilds everything from scratch.
function watch() {
  const controller = new AbortController();
  state.watches.push(controller);
  const run = async () => {
    while (!controller.signal.aborted) {
      try {
        const response = await fetch("/console/api/watch", {
          headers: { Authorization: `Bearer ${state.token}` },
          signal: controller.signal,
        });
        if (!response.ok) throw new Error(`watch: ${response.status}`);
        state.objects = {};
        await readLines(response, (event) => apply(event.kind, event), render);
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  run();
}

function apply(kind, event) {
  const objects = state.objects[kind] || (state.objects[kind] = new Map());
  if (event.type === "DELETED") objects.delete(key(event.object));
  else if (event.type === "ADDED" || event.type === "MODIFIED") objects.set(key(event.object), event.object);
}

function list(kind) {
  return Array.from((state.objects[kind] || new Map()).values())
    .sort((a, b) => key(a).localeCompare(key(b)));
}

function readiness(object) {
  const conditions = (object.status && object.status.conditions) || [];
  const ready = conditions.find((c) => c.type === "Ready");
  if (ready && ready.status === "True") return element("span", { class: "state ready" }, "Ready");
  const why = ready ? [ready.reason, ready.message].filter(Boolean).join(": ") : "no status yet";
  return element("span", { class: "state not-ready" }, `Not ready: ${why}`);
}

function subscriberText(destination) {
  if (!destination) return "";
  if (destination.uri && !destination.ref) return destination.uri;
  const ref = destination.ref || {};
  return `${ref.kind || ""} ${ref.namespace ? ref.namespace + "/" : ""}${ref.name || ""}${destination.uri ? " " + destination.uri : ""}`;
}

function filterText(trigger) {
  const spec = trigger.spec || {};
  const parts = [];
  const attributes = (spec.filter && spec.filter.attributes) || {};
  for (const [name, value] of Object.entries(attributes)) parts.push(`${name} = ${value}`);
  const words = { exact: "=", prefix: "starts with", suffix: "ends with" };
  for (const filter of spec.filters || []) {
    if (filter.cesql) parts.push(`CESQL: ${filter.cesql}`);
    else if (filter.exact || filter.prefix || filter.suffix) {
      for (const [dialect, word] of Object.entries(words)) {
        for (const [name, value] of Object.entries(filter[dialect] || {})) parts.push(`${name} ${word} ${value}`);
      }
    } else parts.push(JSON.stringify(filter));
  }
  return parts.join("; ") || "everything";
}

function triggersOf(namespace, broker) {
  return list("triggers").filter((t) => t.metadata.namespace === namespace && (t.spec || {}).broker === broker);
}

// Events per second on an edge, from two samples of the server's counts.
function rateOf(label) {
  const rate = state.rates[label];
  if (!rate) return null;
  const text = `${rate.delivered.toFixed(1)}/s` + (rate.failed > 0 ? `, ${rate.failed.toFixed(1)} failed/s` : "");
  return element("span", { class: rate.failed > 0 ? "rate not-ready" : "rate", "data-rate": label }, text);
}

async function sampleRates() {
  try {
    const counts = await api("/console/api/rates");
    const now = performance.now();
    const previous = state.sample;
    const channels = Object.fromEntries(Object.entries(counts.channels || {}).map(([label, c]) => [`channel:${label}`, c]));
    state.sample = { at: now, counts: Object.assign({}, counts.triggers, counts.subscriptions, channels) };
    if (!previous) return;
    const seconds = (now - previous.at) / 1000;
    const rates = {};
    for (const [label, [delivered, failed]] of Object.entries(state.sample.counts)) {
      const [before, failedBefore] = previous.counts[label] || [0, 0];
      // A count that went down belongs to a subscriber started anew.
      rates[label] = {
        delivered: Math.max(0, delivered - before) / seconds,
        failed: Math.max(0, failed - failedBefore) / seconds,
      };
    }
    state.rates = rates;
    renderMesh();
  } catch (_) {
    // The next sample tries again; the watch shows what is wrong.
  }
}

function triggerList(namespace, broker) {
  const items = triggersOf(namespace, broker).map((trigger) =>
    element("li", { "data-mesh-trigger": key(trigger) },
      `${trigger.metadata.name} → ${subscriberText(trigger.spec.subscriber)} `, readiness(trigger), " ", rateOf(key(trigger))));
  return items.length ? element("ul", {}, ...items) : "no Triggers";
}

function brokerCell(broker) {
  return element("td", {}, `${broker.metadata.namespace}/${broker.metadata.name} `, readiness(broker));
}

function renderMesh() {
  const body = $("#mesh tbody");
  const rows = [];
  const wired = new Set();
  const brokers = new Map(list("brokers").map((b) => [key(b), b]));
  for (const application of list("applications")) {
    const name = application.metadata.name;
    const channel = list("channels").find((c) => c.metadata.name === name && c.metadata.namespace === state.who.integrationNamespace);
    const subscriptions = list("subscriptions").filter((s) => ((s.spec || {}).channel || {}).name === name);
    const applicationCell = element("td", {}, `${name} `, readiness(application));
    const channelCell = element("td", {}, channel ? channel.metadata.name + " " : "—", channel ? readiness(channel) : null,
      " ", channel ? rateOf(`channel:${key(channel)}`) : null);
    if (subscriptions.length === 0) {
      rows.push(element("tr", { "data-flow": `${name}` }, applicationCell, channelCell,
        element("td", {}, "not provisioned anywhere"), element("td"), element("td")));
    }
    for (const subscription of subscriptions) {
      const ref = ((subscription.spec || {}).subscriber || {}).ref || {};
      const brokerKey = `${ref.namespace || subscription.metadata.namespace}/${ref.name}`;
      const broker = brokers.get(brokerKey);
      wired.add(brokerKey);
      rows.push(element("tr", { "data-flow": `${name}/${brokerKey}` },
        applicationCell.cloneNode(true), channelCell.cloneNode(true),
        element("td", {}, `${subscription.metadata.name} `, readiness(subscription), " ", rateOf(key(subscription))),
        broker ? brokerCell(broker) : element("td", {}, brokerKey),
        element("td", {}, broker ? triggerList(broker.metadata.namespace, broker.metadata.name) : "")));
    }
  }
  for (const [brokerKey, broker] of brokers) {
    if (wired.has(brokerKey)) continue;
    rows.push(element("tr", { "data-flow": brokerKey },
      element("td", {}, "—"), element("td", {}, "—"), element("td", {}, "—"),
      brokerCell(broker), element("td", {}, triggerList(broker.metadata.namespace, broker.metadata.name))));
  }
  body.replaceChildren(...rows);
}

function renderTriggers() {
  const rows = list("triggers").map((trigger) => {
    const remove = element("button", { type: "button", "data-delete": key(trigger) }, "Delete");
    remove.addEventListener("click", () => deleteTrigger(trigger));
    const change = element("button", { type: "button", "data-edit": key(trigger) }, "Edit");
    change.addEventListener("click", () => editTrigger(trigger));
    return element("tr", { "data-trigger": key(trigger) },
      element("td", {}, trigger.metadata.namespace),
      element("td", {}, trigger.metadata.name),
      element("td", {}, (trigger.spec || {}).broker || ""),
      element("td", {}, filterText(trigger)),
      element("td", {}, subscriberText((trigger.spec || {}).subscriber)),
      element("td", {}, readiness(trigger)),
      element("td", {}, change, " ", remove));
  });
  $("#triggers tbody").replaceChildren(...rows);
  const select = $("#trigger-namespace");
  const wanted = state.who.caller === "admin"
    ? list("namespaces").map((n) => n.metadata.name)
    : [state.who.namespace];
  const current = Array.from(select.options).map((o) => o.value);
  if (current.join() !== wanted.join()) {
    const chosen = select.value;
    select.replaceChildren(...wanted.map((n) => element("option", { value: n }, n)));
    if (wanted.includes(chosen)) select.value = chosen;
  }
  const types = new Set();
  for (const application of list("applications")) {
    for (const service of (application.spec || {}).services || []) {
      // AsyncAPI channels are named `<type>.v<version>`.
      for (const entry of service.entries || []) {
        const channels = (entry.specification && entry.specification.channels) || {};
        for (const channel of Object.keys(channels)) types.add(channel.replace(/\.v\d+$/, ""));
      }
    }
  }
  $("#event-types").replaceChildren(...Array.from(types).sort().map((t) => element("option", { value: t })));
}

function eventTypesOf(service) {
  const types = [];
  for (const entry of service.entries || []) {
    const channels = (entry.specification && entry.specification.channels) || {};
    for (const [channel, operations] of Object.entries(channels)) {
      const match = channel.match(/^(.*)\.(v\d+)$/);
      const message = ((operations || {}).subscribe || (operations || {}).publish || {}).message || {};
      types.push({ type: match ? match[1] : channel, version: match ? match[2] : "v1", schema: message.payload });
    }
  }
  return types;
}

function renderApplications() {
  const container = $("#applications");
  if (state.who.caller !== "admin") {
    const mapped = list("applicationmappings").map((m) => element("li", {}, m.metadata.name));
    container.replaceChildren(
      element("p", {}, `Applications are the admin's; mapped into namespace ${state.who.namespace}:`),
      mapped.length ? element("ul", {}, ...mapped) : element("p", {}, "none"));
    return;
  }
  const cards = list("applications").map((application) => {
    const name = application.metadata.name;
    const services = ((application.spec || {}).services || []).map((service) =>
      element("li", {},
        `${service.displayName || service.name} (${service.id})`,
        element("ul", {}, ...eventTypesOf(service).map((t) =>
          element("li", { "data-event-type": `${name}/${t.type}/${t.version}` }, `${t.type} ${t.version} `,
            t.schema ? element("details", {}, element("summary", {}, "payload schema"),
              element("pre", {}, JSON.stringify(t.schema, null, 2))) : "")))));
    const mappings = list("applicationmappings").filter((m) => m.metadata.name === name)
      .map((m) => m.metadata.namespace);
    const credentials = list("accesstokens").filter((t) => (t.spec || {}).application === name)
      .map((token) => {
        const revoke = element("button", { type: "button", "data-revoke": key(token) }, "Revoke");
        revoke.addEventListener("click", () => revokeCredential(token));
        return element("li", { "data-credential": key(token) },
          `${token.metadata.name} (since ${token.metadata.creationTimestamp || "?"}) `, revoke);
      });
    const issue = element("button", { type: "button", "data-issue": name }, "Issue a new credential");
    issue.addEventListener("click", () => issueCredential(name));
    return element("article", { "data-application": name },
      element("h3", {}, `${name} `, readiness(application)),
      element("p", {}, `Events: ${(application.status || {}).eventsUrl || "—"}`),
      element("h4", {}, "Services and events"), element("ul", {}, ...services),
      element("h4", {}, "Mapped into"), element("p", {}, mappings.join(", ") || "no namespace"),
      element("h4", {}, "Credentials"), element("ul", {}, ...credentials), issue);
  });
  container.replaceChildren(...cards);
}

async function issueCredential(application) {
  $("#applications-error").textContent = "";
  const token = {
    apiVersion: "meshbroker.io/v1alpha1", kind: "AccessToken",
    metadata: { name: `${application}-${Date.now().toString(36)}` },
    spec: { application, description: "issued from the console" },
  };
  try {
    const created = await api(`/apis/meshbroker.io/v1alpha1/namespaces/${state.who.integrationNamespace}/accesstokens`,
      { method: "POST", body: JSON.stringify(token) });
    $("#new-credential").replaceChildren(
      `New credential for ${application} (shown once): `,
      element("code", { id: "new-credential-token" }, created.status.token));
  } catch (error) {
    $("#applications-error").textContent = error.message;
  }
}

async function revokeCredential(token) {
  $("#applications-error").textContent = "";
  try {
    await api(`/apis/meshbroker.io/v1alpha1/namespaces/${token.metadata.namespace}/accesstokens/${token.metadata.name}`, { method: "DELETE" });
  } catch (error) {
    $("#applications-error").textContent = error.message;
  }
}

function render() {
  if (!state.who) return;
  renderMesh();
  renderTriggers();
  renderApplications();
  renderEvents();
  renderCatalog();
}

// OSB requests carry the API version; the admin token opens the OSB API.
function osb(path, options = {}) {
  const headers = Object.assign({ "X-Broker-API-Version": "2.17" }, options.headers || {});
  return api(path, Object.assign({}, options, { headers }));
}

async function loadClasses() {
  const namespace = $("#catalog-namespace").value;
  $("#catalog-error").textContent = "";
  if (!namespace) return;
  try {
    const catalog = await osb(`/${namespace}/v2/catalog`);
    const rows = (catalog.services || []).map((service) => {
      const plan = element("select", { "aria-label": `Plan of ${service.name}` },
        ...service.plans.map((p) => element("option", { value: p.id }, p.name)));
      const provision = element("button", { type: "button", "data-provision": service.name }, "Provision");
      provision.addEventListener("click", () => provisionClass(namespace, service, plan.value));
      return element("tr", { "data-class": service.name },
        element("td", {}, service.name), element("td", {}, service.description || ""),
        element("td", {}, plan), element("td", {}, provision));
    });
    $("#classes tbody").replaceChildren(...rows);
    if (rows.length === 0) $("#catalog-error").textContent = `No classes for ${namespace}: map an Application into it first.`;
  } catch (error) {
    $("#classes tbody").replaceChildren();
    $("#catalog-error").textContent = error.message;
  }
}

function renderCatalog() {
  const namespaces = state.who.caller === "admin"
    ? list("namespaces").map((n) => n.metadata.name)
    : [state.who.namespace];
  const select = $("#catalog-namespace");
  const before = select.value;
  fillSelect(select, namespaces.map((n) => [n, n]));
  if (select.value !== before) loadClasses();
  const rows = list("serviceinstances")
    .filter((instance) => !(instance.status || {}).deleted)
    .map((instance) => {
      const operations = (instance.status || {}).operations || [];
      const last = operations[operations.length - 1];
      const id = instance.spec.instanceId;
      const remove = element("button", { type: "button", "data-deprovision": id }, "Deprovision");
      remove.addEventListener("click", () => deprovisionInstance(instance));
      return element("tr", { "data-instance": id },
        element("td", {}, id), element("td", {}, instance.spec.namespace),
        element("td", {}, instance.spec.application),
        element("td", {}, last ? `${last.kind} ${last.state}: ${last.description}` : ""),
        element("td", {}, remove));
    });
  $("#instances tbody").replaceChildren(...rows);
}

// Shows each new description of an operation until it ends.
async function followOperation(instance, operation, what) {
  const shown = $("#operation");
  shown.replaceChildren();
  let last = null;
  for (;;) {
    let answer;
    try {
      answer = await osb(`/v2/service_instances/${instance}/last_operation?operation=${encodeURIComponent(operation)}`);
    } catch (error) {
      // Gone: a deprovisioned instance, OSB's way of saying it ended well.
      if (what === "deprovision" && /gone|410/i.test(error.message)) answer = { state: "succeeded", description: "deprovisioned" };
      else throw error;
    }
    if (answer.description !== last) {
      last = answer.description;
      shown.append(element("li", { "data-state": answer.state }, `${what} ${instance}: ${answer.description}`));
    }
    if (answer.state !== "in progress") return answer.state;
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

async function provisionClass(namespace, service, planId) {
  $("#catalog-error").textContent = "";
  const instance = `${service.name}-${namespace}`.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63);
  const body = {
    service_id: service.id, plan_id: planId, organization_guid: "meshbroker", space_guid: namespace,
    context: { platform: "kubernetes", namespace },
  };
  try {
    const answer = await osb(`/v2/service_instances/${instance}?accepts_incomplete=true`, { method: "PUT", body: JSON.stringify(body) });
    if (answer && answer.operation) await followOperation(instance, answer.operation, "provision");
    else $("#operation").replaceChildren(element("li", { "data-state": "succeeded" }, `provision ${instance}: done`));
  } catch (error) {
    $("#catalog-error").textContent = error.message;
  }
}

async function deprovisionInstance(instance) {
  $("#catalog-error").textContent = "";
  const name = instance.spec.instanceId;
  const query = `service_id=${encodeURIComponent(instance.spec.serviceId)}&plan_id=${encodeURIComponent(instance.spec.planId)}&accepts_incomplete=true`;
  try {
    const answer = await osb(`/v2/service_instances/${name}?${query}`, { method: "DELETE" });
    if (answer && answer.operation) await followOperation(name, answer.operation, "deprovision");
  } catch (error) {
    $("#catalog-error").textContent = error.message;
  }
}

// Replaces a select's options only when they changed, keeping the choice.
function fillSelect(select, options) {
  const wanted = options.map(([value]) => value).join("\n");
  const present = [...select.options].map((option) => option.value).join("\n");
  if (wanted === present) return;
  const chosen = select.value;
  select.replaceChildren(...options.map(([value, label]) => element("option", { value }, label)));
  if (options.some(([value]) => value === chosen)) select.value = chosen;
}

function renderEvents() {
  const brokers = list("brokers").map(key).sort();
  fillSelect($("#tail-broker"), brokers.map((broker) => [broker, broker]));
  const applications = state.who.caller === "admin" ? list("applications").map((a) => a.metadata.name).sort() : [];
  fillSelect($("#send-to"), [
    ...brokers.map((broker) => [`broker:${broker}`, `Broker ${broker}`]),
    ...applications.map((application) => [`application:${application}`, `as Application ${application}`]),
  ]);
}

function newEventId() {
  return window.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

// A structured-mode event to the Broker's (or the Application's) ingress,
// which the control listener serves for this page with the same checks.
async function sendEvent(event) {
  event.preventDefault();
  $("#send-error").textContent = "";
  $("#send-result").textContent = "";
  let data;
  try {
    data = JSON.parse($("#send-data").value || "null");
  } catch (error) {
    $("#send-error").textContent = `The data is not JSON: ${error.message}`;
    $("#send-data").focus();
    return;
  }
  const [kind, target] = $("#send-to").value.split(/:(.*)/s);
  const path = kind === "broker"
    ? `/console/api/brokers/${target}/events`
    : `/console/api/applications/${target}/events`;
  const cloudEvent = {
    specversion: "1.0", id: newEventId(), source: $("#send-source").value.trim(),
    type: $("#send-type").value.trim(), datacontenttype: "application/json", data,
  };
  const version = $("#send-version").value.trim();
  if (version) cloudEvent.eventtypeversion = version;
  try {
    await api(path, {
      method: "POST", body: JSON.stringify(cloudEvent),
      headers: { "Content-Type": "application/cloudevents+json" },
    });
    $("#send-result").textContent = `Sent event ${cloudEvent.id}: accepted.`;
  } catch (error) {
    $("#send-error").textContent = error.message;
  }
}

// One tail record as a line for people.
function tailText(record) {
  const event = record.event || {};
  switch (record.type) {
    case "TAILING": return `Tailing Broker ${record.namespace}/${record.broker}.`;
    case "RECEIVED": {
      const passes = record.triggers.length ? `→ ${record.triggers.join(", ")}` : "no Trigger passes it";
      const data = event.data === undefined ? "" : ` data ${JSON.stringify(event.data).slice(0, 200)}`;
      return `${record.time} RECEIVED ${event.type} id=${event.id} source=${event.source} via ${record.via} ${passes}${data}`;
    }
    case "REFUSED": return `${record.time} REFUSED id=${record.id} via ${record.via}: ${record.reason}`;
    case "DELIVERED": return `${record.time} DELIVERED id=${record.id} to ${record.trigger} (${record.status})`;
    case "DEAD_LETTERED":
      return `${record.time} DEAD_LETTERED id=${record.id} from ${record.trigger}: ${record.reason} (knativeerrorcode ${record.knativeerrorcode ?? "none"}, knativeerrordest ${record.knativeerrordest}) → ${record.sink}`;
    case "UNDELIVERABLE": return `${record.time} UNDELIVERABLE id=${record.id} from ${record.trigger}: ${record.reason}`;
    case "SKIPPED": return `… ${record.count} records skipped (the page read too slowly)`;
    default: return JSON.stringify(record);
  }
}

function showTailRecord(record) {
  const item = element("li", { "data-tail": record.type, "data-id": record.id || (record.event || {}).id }, tailText(record));
  const shown = $("#tail");
  shown.prepend(item);
  while (shown.children.length > TAIL_SHOWN) shown.lastElementChild.remove();
}

function stopTail() {
  if (state.tail) state.tail.abort();
  state.tail = null;
  $("#tail-toggle").textContent = "Start tail";
  $("#tail-toggle").setAttribute("aria-pressed", "false");
}

async function startTail() {
  $("#tail-error").textContent = "";
  const [namespace, broker] = $("#tail-broker").value.split("/");
  if (!broker) return;
  const controller = new AbortController();
  state.tail = controller;
  $("#tail-toggle").textContent = "Stop tail";
  $("#tail-toggle").setAttribute("aria-pressed", "true");
  try {
    const response = await fetch(`/apis/eventing.knative.dev/v1/namespaces/${namespace}/brokers/${broker}/tail`, {
      headers: { Authorization: `Bearer ${state.token}` }, signal: controller.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error((body && body.message) || `${response.status} ${response.statusText}`);
    }
    await readLines(response, showTailRecord);
  } catch (error) {
    if (!controller.signal.aborted) $("#tail-error").textContent = error.message;
  }
  if (state.tail === controller) stopTail();
}

async function deleteTrigger(trigger) {
  $("#triggers-error").textContent = "";
  try {
    await api(`/apis/eventing.knative.dev/v1/namespaces/${trigger.metadata.namespace}/triggers/${trigger.metadata.name}`, { method: "DELETE" });
  } catch (error) {
    $("#triggers-error").textContent = `Deleting ${key(trigger)}: ${error.message}`;
  }
}

let cesqlCheck = 0;
async function checkCesql() {
  const box = $("#trigger-cesql");
  const expression = box.value.trim();
  const mine = ++cesqlCheck;
  if (!expression) {
    box.removeAttribute("aria-invalid");
    $("#cesql-error").textContent = "";
    return true;
  }
  try {
    const answer = await api("/console/api/cesql", { method: "POST", body: JSON.stringify({ expression }) });
    if (mine !== cesqlCheck) return answer.valid;
    box.setAttribute("aria-invalid", answer.valid ? "false" : "true");
    $("#cesql-error").textContent = answer.valid ? "" : `${answer.error}\n${expression}\n${" ".repeat(Math.max(0, answer.column - 1))}^`;
    return answer.valid;
  } catch (error) {
    $("#cesql-error").textContent = error.message;
    return false;
  }
}

// The filter builder's rows: an attribute, how it must match, a value.
const MATCHES = [["exact", "equals"], ["prefix", "starts with"], ["suffix", "ends with"]];

function addFilterRow(dialect = "exact", name = "", value = "") {
  const index = document.querySelectorAll("#filter-rows .filter-row").length;
  const how = element("select", { class: "match", "aria-label": `How attribute ${index + 1} matches` },
    ...MATCHES.map(([v, label]) => element("option", { value: v }, label)));
  how.value = dialect;
  const attribute = element("input", { class: "attribute", "aria-label": `Attribute ${index + 1}`, placeholder: "source", value: name });
  const wanted = element("input", { class: "wanted", "aria-label": `Value ${index + 1}`, value });
  const remove = element("button", { type: "button", "aria-label": `Remove attribute ${index + 1}` }, "Remove");
  const row = element("div", { class: "filter-row" }, attribute, how, wanted, remove);
  remove.addEventListener("click", () => { row.remove(); previewFilter(); });
  for (const input of [how, attribute, wanted]) input.addEventListener("input", previewFilter);
  $("#filter-rows").append(row);
  previewFilter();
}

// What the form's filter fields make: Knative's attribute filter while
// everything is an exact match, else the Subscriptions API's filters.
function filterOfForm() {
  const rows = [];
  const type = $("#trigger-type").value.trim();
  if (type) rows.push({ dialect: "exact", name: "type", value: type });
  for (const row of document.querySelectorAll("#filter-rows .filter-row")) {
    const name = row.querySelector(".attribute").value.trim();
    if (name) rows.push({ dialect: row.querySelector(".match").value, name, value: row.querySelector(".wanted").value });
  }
  const cesql = $("#trigger-cesql").value.trim();
  if (!cesql && rows.every((r) => r.dialect === "exact")) {
    if (rows.length === 0) return {};
    return { filter: { attributes: Object.fromEntries(rows.map((r) => [r.name, r.value])) } };
  }
  // One filter per row, so each row's dialect is its own.
  const filters = rows.map((r) => ({ [r.dialect]: { [r.name]: r.value } }));
  if (cesql) filters.push({ cesql });
  return { filters };
}

function previewFilter() {
  const filter = filterOfForm();
  $("#filter-preview").textContent = Object.keys(filter).length ? JSON.stringify(filter, null, 2) : "(no filter: every event)";
}

function sampleEvent() {
  const type = $("#trigger-type").value.trim() || "order.created";
  return JSON.stringify({ specversion: "1.0", id: "sample-1", source: "commerce", type, eventtypeversion: "v1", datacontenttype: "application/json", data: {} }, null, 2);
}

async function testFilter() {
  const result = $("#filter-test-result");
  result.textContent = "";
  result.removeAttribute("data-passes");
  let event;
  try {
    event = JSON.parse($("#sample-event").value || sampleEvent());
  } catch (error) {
    result.textContent = `The sample event is not JSON: ${error.message}`;
    return;
  }
  try {
    const answer = await api("/console/api/filter-test", { method: "POST", body: JSON.stringify(Object.assign({ event }, filterOfForm())) });
    result.setAttribute("data-passes", String(answer.passes));
    result.textContent = answer.passes
      ? "Passes: the Trigger would deliver this event."
      : `Filtered out: the Trigger would not deliver this event.${answer.limit ? ` (${answer.limit})` : ""}`;
  } catch (error) {
    result.textContent = error.message;
  }
}

// A subscriber as a URI, or a reference the server resolves.
const REFERENCES = { Service: "v1", Broker: "eventing.knative.dev/v1" };

function subscriberKindChanged() {
  const kind = $("#trigger-subscriber-kind").value;
  const input = $("#trigger-subscriber");
  input.type = kind === "uri" ? "url" : "text";
  input.placeholder = kind === "uri" ? "http://…" : "name";
  $("#trigger-subscriber-label").textContent = kind === "uri" ? "Subscriber URI" : `${kind} name`;
}

function subscriberOfForm() {
  const kind = $("#trigger-subscriber-kind").value;
  const value = $("#trigger-subscriber").value.trim();
  return kind === "uri" ? { uri: value } : { ref: { apiVersion: REFERENCES[kind], kind, name: value } };
}

function deliveryOfForm() {
  const delivery = {};
  const retry = $("#delivery-retry").value.trim();
  if (retry) delivery.retry = Number(retry);
  const policy = $("#delivery-backoff-policy").value;
  if (policy) delivery.backoffPolicy = policy;
  const delay = $("#delivery-backoff-delay").value.trim();
  if (delay) delivery.backoffDelay = delay;
  const sink = $("#delivery-dead-letter").value.trim();
  if (sink) delivery.deadLetterSink = { uri: sink };
  return Object.keys(delivery).length ? delivery : undefined;
}

// Editing: the form holds a stored Trigger until it is saved or cancelled.
let editing = null;

function resetTriggerForm() {
  editing = null;
  $("#trigger-form").reset();
  $("#filter-rows").replaceChildren();
  $("#trigger-namespace").disabled = false;
  $("#trigger-name").readOnly = false;
  $("#trigger-form-title").textContent = "New Trigger";
  $("#trigger-create").textContent = "Create Trigger";
  $("#trigger-cancel").hidden = true;
  $("#cesql-error").textContent = "";
  subscriberKindChanged();
  previewFilter();
}

function editTrigger(trigger) {
  const spec = trigger.spec || {};
  const filters = spec.filters || [];
  if (filters.some((f) => !(f.exact || f.prefix || f.suffix || f.cesql !== undefined))) {
    $("#triggers-error").textContent = `${key(trigger)} uses all/any/not filters: change it with the resource API or meshbroker apply.`;
    return;
  }
  resetTriggerForm();
  editing = trigger;
  $("#trigger-namespace").value = trigger.metadata.namespace;
  $("#trigger-namespace").disabled = true;
  $("#trigger-name").value = trigger.metadata.name;
  $("#trigger-name").readOnly = true;
  $("#trigger-broker").value = spec.broker || "default";
  const attributes = Object.entries((spec.filter && spec.filter.attributes) || {});
  const rows = filters.length
    ? filters.flatMap((f) => MATCHES.flatMap(([dialect]) => Object.entries(f[dialect] || {}).map(([n, v]) => [dialect, n, v])))
    : attributes.map(([n, v]) => ["exact", n, v]);
  for (const [dialect, name, value] of rows) {
    if (dialect === "exact" && name === "type" && !$("#trigger-type").value) $("#trigger-type").value = value;
    else addFilterRow(dialect, name, value);
  }
  $("#trigger-cesql").value = (filters.find((f) => f.cesql !== undefined) || {}).cesql || "";
  const subscriber = spec.subscriber || {};
  const referenced = subscriber.ref && REFERENCES[subscriber.ref.kind] && !subscriber.uri;
  $("#trigger-subscriber-kind").value = referenced ? subscriber.ref.kind : "uri";
  subscriberKindChanged();
  $("#trigger-subscriber").value = referenced ? subscriber.ref.name : subscriber.uri || "";
  const delivery = spec.delivery || {};
  $("#delivery-retry").value = delivery.retry ?? "";
  $("#delivery-backoff-policy").value = delivery.backoffPolicy || "";
  $("#delivery-backoff-delay").value = delivery.backoffDelay || "";
  $("#delivery-dead-letter").value = (delivery.deadLetterSink && delivery.deadLetterSink.uri) || "";
  $("#delivery-options").open = Object.keys(delivery).length > 0;
  $("#trigger-form-title").textContent = `Edit Trigger ${key(trigger)}`;
  $("#trigger-create").textContent = "Save Trigger";
  $("#trigger-cancel").hidden = false;
  previewFilter();
  $("#trigger-broker").focus();
}

async function saveTrigger(event) {
  event.preventDefault();
  $("#trigger-error").textContent = "";
  if (!(await checkCesql())) {
    $("#trigger-cesql").focus();
    return;
  }
  const namespace = $("#trigger-namespace").value;
  const name = $("#trigger-name").value.trim();
  const spec = Object.assign(
    { broker: $("#trigger-broker").value.trim(), subscriber: subscriberOfForm() },
    filterOfForm(),
  );
  const delivery = deliveryOfForm();
  if (delivery) spec.delivery = delivery;
  const metadata = { name };
  const collection = `/apis/eventing.knative.dev/v1/namespaces/${namespace}/triggers`;
  try {
    if (editing) {
      // The stored resourceVersion: a change made meanwhile is a conflict, not lost.
      metadata.resourceVersion = editing.metadata.resourceVersion;
      metadata.labels = editing.metadata.labels;
      metadata.annotations = editing.metadata.annotations;
      await api(`${collection}/${name}`, { method: "PUT", body: JSON.stringify({ apiVersion: "eventing.knative.dev/v1", kind: "Trigger", metadata, spec }) });
    } else {
      await api(collection, { method: "POST", body: JSON.stringify({ apiVersion: "eventing.knative.dev/v1", kind: "Trigger", metadata, spec }) });
      // The next Trigger likely shares the rest.
      $("#trigger-name").value = "";
      return;
    }
    resetTriggerForm();
  } catch (error) {
    $("#trigger-error").textContent = error.message;
  }
}

function show(page) {
  for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== `page-${page}`;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  if (!state.who) return show("signin");
  const page = location.hash.replace("#", "") || "mesh";
  show(["mesh", "triggers", "applications", "catalog", "events"].includes(page) ? page : "mesh");
}

async function signIn(token) {
  state.token = token;
  state.who = await api("/console/api/whoami");
  sessionStorage.setItem("meshbroker-token", token);
  $("#who").textContent = state.who.caller === "admin" ? "admin" : `namespace ${state.who.namespace}`;
  $("#nav").hidden = false;
  $("#signout").hidden = false;
  watch();
  state.poller = setInterval(sampleRates, RATE_EVERY_MS);
  sampleRates();
  route();
  render();
}

function signOut() {
  stopTail();
  clearInterval(state.poller);
  Object.assign(state, { rates: {}, sample: null, poller: null });
  for (const controller of state.watches) controller.abort();
  Object.assign(state, { token: null, who: null, objects: {}, watches: [] });
  sessionStorage.removeItem("meshbroker-token");
  $("#who").textContent = "";
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  $("#mesh tbody").replaceChildren();
  $("#triggers tbody").replaceChildren();
  $("#applications").replaceChildren();
  $("#new-credential").replaceChildren();
  $("#tail").replaceChildren();
  $("#classes tbody").replaceChildren();
  $("#instances tbody").replaceChildren();
  $("#operation").replaceChildren();
  route();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("#signin-error").textContent = "";
    try {
      await signIn($("#token").value.trim());
      $("#token").value = "";
    } catch (error) {
      state.token = null;
      state.who = null;
      $("#signin-error").textContent = error.message;
    }
  });
  $("#signout").addEventListener("click", signOut);
  $("#trigger-form").addEventListener("submit", saveTrigger);
  $("#trigger-cancel").addEventListener("click", resetTriggerForm);
  $("#trigger-subscriber-kind").addEventListener("change", subscriberKindChanged);
  $("#filter-add").addEventListener("click", () => addFilterRow());
  $("#filter-test-run").addEventListener("click", testFilter);
  $("#filter-test").addEventListener("toggle", () => {
    if ($("#filter-test").open && !$("#sample-event").value) $("#sample-event").value = sampleEvent();
  });
  $("#trigger-type").addEventListener("input", previewFilter);
  previewFilter();
  $("#send-form").addEventListener("submit", sendEvent);
  $("#catalog-namespace").addEventListener("change", loadClasses);
  $("#tail-toggle").addEventListener("click", () => (state.tail ? stopTail() : startTail()));
  $("#tail-broker").addEventListener("change", () => { if (state.tail) { stopTail(); startTail(); } });
  let typing;
  $("#trigger-cesql").addEventListener("input", () => {
    previewFilter();
    clearTimeout(typing);
    typing = setTimeout(checkCesql, 250);
  });
  window.addEventListener("hashchange", route);
  const saved = sessionStorage.getItem("meshbroker-token");
  if (saved) signIn(saved).catch(() => signOut());
  else route();
});
