// The API reference: renders the edge's own OpenAPI document (/openapi.json)
// and sends real requests from a form per operation. Plain JavaScript, no
// dependency: every text from the document goes in through textContent, and
// the page's CSP allows requests to this origin only.
"use strict";

const DOCUMENT_URL = "/openapi.json";
const METHODS = ["get", "put", "post", "delete", "patch"];

let openapi = null;

/** An element with attributes and children (strings become text). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Text with `code` spans, as the document's descriptions write them. */
function prose(tag, text, attributes = {}) {
  const parts = String(text || "").split("`");
  return el(tag, attributes, parts.map((part, index) => (index % 2 ? el("code", { text: part }) : part)));
}

function refName(ref) {
  return ref.split("/").pop();
}

/** Follows a `$ref` inside the document. */
function resolve(item) {
  let current = item;
  for (let hops = 0; current && current.$ref && hops < 10; hops += 1) {
    current = current.$ref
      .replace(/^#\//, "")
      .split("/")
      .reduce((node, key) => (node ? node[key] : undefined), openapi);
  }
  return current || {};
}

function operationId(method, path) {
  return `op-${method}-${path.replace(/[^A-Za-z0-9]+/g, "-")}`;
}

/** A one-line summary of a schema: `string`, `Ban`, `array of HistoryItem`, ... */
function typeLabel(schema) {
  if (!schema) return "";
  if (schema.$ref) {
    const name = refName(schema.$ref);
    return el("a", { href: `#schema-${name}` }, name);
  }
  if (schema.oneOf) {
    const parts = schema.oneOf.map(typeLabel);
    return el("span", {}, ...parts.flatMap((part, index) => (index ? [" or ", part] : [part])));
  }
  if (schema.allOf) {
    const parts = schema.allOf.map((part) => (part.$ref ? typeLabel(part) : "{…}"));
    return el("span", {}, ...parts.flatMap((part, index) => (index ? [" and ", part] : [part])));
  }
  const types = Array.isArray(schema.type) ? schema.type.join(" or ") : schema.type || "any";
  if (schema.type === "array" || (Array.isArray(schema.type) && schema.type.includes("array"))) {
    return el("span", {}, "array of ", typeLabel(schema.items));
  }
  const notes = [];
  if (schema.enum) notes.push(`one of ${schema.enum.map((value) => JSON.stringify(value)).join(", ")}`);
  if (schema.format) notes.push(schema.format);
  if (schema.pattern) notes.push(`pattern ${schema.pattern}`);
  if (schema.minimum !== undefined) notes.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined) notes.push(`≤ ${schema.maximum}`);
  if (schema.minLength !== undefined) notes.push(`length ≥ ${schema.minLength}`);
  if (schema.maxLength !== undefined) notes.push(`length ≤ ${schema.maxLength}`);
  if (schema.minItems !== undefined) notes.push(`at least ${schema.minItems}`);
  return notes.length ? `${types} (${notes.join(", ")})` : types;
}

/** A schema as a table of its properties (objects) or its alternatives. */
function schemaView(schema) {
  const view = el("div", { class: "schema" });
  if (schema.description) view.append(prose("p", schema.description));
  if (schema.properties) {
    const required = new Set(schema.required || []);
    const rows = Object.entries(schema.properties).map(([name, property]) =>
      el(
        "tr",
        {},
        el("td", {}, el("code", { text: name }), required.has(name) ? el("span", { class: "required", text: " always" }) : null),
        el("td", {}, typeLabel(property)),
        prose("td", property.description || (property.oneOf || []).map((part) => part.description || "").join(" ")),
      ),
    );
    view.append(
      el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "Key" }), el("th", { text: "Type" }), el("th", { text: "" }))), el("tbody", {}, rows)),
    );
  } else if (schema.oneOf || schema.allOf) {
    const kind = schema.oneOf ? "One of:" : "All of:";
    view.append(
      el("p", { text: kind }),
      el(
        "ul",
        {},
        (schema.oneOf || schema.allOf).map((part) =>
          el("li", {}, part.title ? el("strong", { text: `${part.title}: ` }) : null, part.$ref ? typeLabel(part) : schemaView(part)),
        ),
      ),
    );
  } else {
    view.append(el("p", {}, "Type: ", typeLabel(schema)));
  }
  return view;
}

/** A plausible JSON value for a schema, for the request body editor. */
function sample(schema, depth = 0) {
  const resolved = resolve(schema);
  if (depth > 4) return null;
  if (resolved.example !== undefined) return resolved.example;
  if (resolved.properties) {
    const value = {};
    for (const name of resolved.required || []) {
      value[name] = sample(resolved.properties[name], depth + 1);
    }
    return value;
  }
  const type = Array.isArray(resolved.type) ? resolved.type[0] : resolved.type;
  if (type === "integer" || type === "number") return resolved.minimum ?? 0;
  if (type === "boolean") return false;
  if (type === "array") return [];
  if (type === "string") return "";
  return null;
}

function parameterRows(parameters) {
  return parameters.map((parameter) =>
    el(
      "tr",
      {},
      el("td", {}, el("code", { text: parameter.name }), parameter.required ? el("span", { class: "required", text: " required" }) : null),
      el("td", { text: parameter.in }),
      el("td", {}, typeLabel(parameter.schema)),
      prose("td", parameter.description),
    ),
  );
}

function responseList(responses) {
  return el(
    "dl",
    { class: "responses" },
    Object.entries(responses).flatMap(([status, response]) => {
      const shared = response.$ref ? refName(response.$ref) : null;
      const resolved = resolve(response);
      const content = Object.entries(resolved.content || {}).map(([type, media]) =>
        el("div", {}, el("code", { text: type }), " ", typeLabel(media.schema)),
      );
      // A shared refusal's headers are described once, under "Refusals".
      const headers = Object.entries(resolved.headers || {}).map(([name, header]) =>
        shared
          ? el("li", {}, el("code", { text: name }))
          : el("li", {}, el("code", { text: name }), header.required ? " (always): " : ": ", prose("span", header.description)),
      );
      return [
        el("dt", { class: `status status-${status[0]}` }, shared ? el("a", { href: `#response-${shared}`, text: status }) : status),
        el("dd", {}, prose("p", resolved.description), content, headers.length ? el("ul", { class: shared ? "headers inline" : "headers" }, headers) : null),
      ];
    }),
  );
}

/** The "Try it" form of one operation. */
function tryItForm(method, path, operation) {
  const id = operationId(method, path);
  const parameters = operation.parameters || [];
  const fields = parameters.map((parameter) => {
    const inputId = `${id}-${parameter.in}-${parameter.name}`;
    const example = parameter.example ?? parameter.schema?.example ?? "";
    return el(
      "div",
      { class: "field" },
      el("label", { for: inputId, text: `${parameter.name} (${parameter.in}${parameter.required ? ", required" : ""})` }),
      el("input", {
        id: inputId,
        "data-in": parameter.in,
        "data-name": parameter.name,
        value: String(example),
        required: parameter.required,
        spellcheck: "false",
        autocomplete: "off",
      }),
    );
  });
  const bodySchema = operation.requestBody?.content?.["application/json"]?.schema;
  const bodyId = `${id}-body`;
  const body = bodySchema
    ? el(
        "div",
        { class: "field" },
        el("label", { for: bodyId, text: "Body (application/json)" }),
        el("textarea", { id: bodyId, rows: "4", spellcheck: "false" }, JSON.stringify(sample(bodySchema), null, 2)),
      )
    : null;
  const output = el("pre", { class: "output", "aria-live": "polite" });
  const stop = el("button", { type: "button", hidden: true, text: "Stop" });
  const form = el(
    "form",
    { class: "try", "aria-label": `Try ${method.toUpperCase()} ${path}` },
    fields,
    body,
    el("div", { class: "buttons" }, el("button", { type: "submit", text: "Send" }), stop),
    output,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(form, method, path, operation, output, stop);
  });
  return form;
}

async function send(form, method, path, operation, output, stop) {
  let url = path;
  const query = new URLSearchParams();
  const headers = new Headers();
  for (const input of form.querySelectorAll("input[data-in]")) {
    const { in: place, name } = input.dataset;
    const value = input.value;
    if (place === "path") url = url.replace(`{${name}}`, encodeURIComponent(value));
    else if (value === "") continue;
    else if (place === "query") query.append(name, value);
    else if (place === "header") headers.set(name, value);
  }
  if (query.toString()) url += `?${query}`;
  const token = document.getElementById("token").value.trim();
  if (token && (operation.security || []).some((requirement) => Object.keys(requirement).length)) {
    headers.set("Authorization", `Bearer ${token}`);
  }
  const init = { method: method.toUpperCase(), headers };
  const textarea = form.querySelector("textarea");
  if (textarea) {
    headers.set("Content-Type", "application/json");
    init.body = textarea.value;
  }
  const controller = new AbortController();
  init.signal = controller.signal;
  output.textContent = `${init.method} ${url}\n…`;
  try {
    const response = await fetch(url, init);
    let text = `${init.method} ${url}\n\n${response.status} ${response.statusText}\n`;
    for (const [name, value] of response.headers) text += `${name}: ${value}\n`;
    output.textContent = `${text}\n`;
    if ((response.headers.get("content-type") || "").startsWith("text/event-stream") && response.body) {
      // A live stream: shown as it comes, until Stop.
      stop.hidden = false;
      stop.onclick = () => controller.abort();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        output.textContent += value;
      }
    } else {
      const body = await response.text();
      try {
        output.textContent += JSON.stringify(JSON.parse(body), null, 2);
      } catch {
        output.textContent += body;
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") output.textContent += `\nRequest failed: ${error.message}`;
  } finally {
    stop.hidden = true;
  }
}

function render() {
  document.getElementById("title").textContent = `${openapi.info.title} ${openapi.info.version}: API reference`;
  document.title = `${openapi.info.title}: API reference`;
  document.getElementById("description").replaceChildren(prose("span", openapi.info.description));

  const toc = document.getElementById("toc");
  const operations = document.getElementById("operations");
  operations.replaceChildren();
  for (const [path, item] of Object.entries(openapi.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const id = operationId(method, path);
      toc.append(
        el("li", {}, el("a", { href: `#${id}` }, el("span", { class: `method method-${method}`, text: method.toUpperCase() }), ` ${path}`)),
      );
      const parameters = operation.parameters || [];
      const bodySchema = operation.requestBody?.content?.["application/json"]?.schema;
      const security = (operation.security || []).flatMap((requirement) => Object.keys(requirement));
      operations.append(
        el(
          "section",
          { id, class: "operation", "aria-labelledby": `${id}-title` },
          el("h2", { id: `${id}-title` }, el("span", { class: `method method-${method}`, text: method.toUpperCase() }), " ", el("code", { text: path })),
          el("p", { class: "summary", text: operation.summary || "" }),
          prose("p", operation.description),
          el("p", { class: "muted", text: security.length ? `Authentication: ${security.join(" or ")}` : "No authentication." }),
          parameters.length
            ? el(
                "table",
                {},
                el("caption", { text: "Parameters" }),
                el("thead", {}, el("tr", {}, ["Name", "In", "Type", ""].map((heading) => el("th", { text: heading })))),
                el("tbody", {}, parameterRows(parameters)),
              )
            : null,
          bodySchema ? el("p", {}, "Request body: ", el("code", { text: "application/json" }), " ", typeLabel(bodySchema)) : null,
          el("h3", { text: "Answers" }),
          responseList(operation.responses || {}),
          el("details", {}, el("summary", { text: "Try it" }), tryItForm(method, path, operation)),
        ),
      );
    }
  }

  // The shared refusals, each with its headers described once.
  const refusals = document.getElementById("refusals");
  refusals.replaceChildren();
  for (const [name, response] of Object.entries(openapi.components?.responses || {})) {
    refusals.append(
      el("section", { id: `response-${name}`, class: "schema-entry" }, el("h3", { text: name }), responseList({ [name.replace(/^Error/, "")]: response })),
    );
  }
  const shownHeaders = new Set();
  for (const item of refusals.querySelectorAll(".headers li")) {
    // Each header's description once: the first refusal that has it.
    const name = item.querySelector("code")?.textContent;
    if (shownHeaders.has(name)) item.querySelector("span")?.remove();
    shownHeaders.add(name);
  }

  const schemas = document.getElementById("schemas");
  schemas.replaceChildren();
  for (const [name, schema] of Object.entries(openapi.components?.schemas || {})) {
    schemas.append(el("section", { id: `schema-${name}`, class: "schema-entry" }, el("h3", { text: name }), schemaView(schema)));
  }
}

async function main() {
  const operations = document.getElementById("operations");
  try {
    const response = await fetch(DOCUMENT_URL, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    openapi = await response.json();
    render();
    if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
  } catch (error) {
    operations.replaceChildren(el("p", { role: "alert", text: `The document could not be loaded: ${error.message}` }));
  }
}

main();
