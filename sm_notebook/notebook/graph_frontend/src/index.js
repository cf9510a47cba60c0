// The graph view widget (anywidget): lays out the visible graph with dagre and draws it as SVG,
// with a toolbar (search, collapse all, fit) and a details panel. The model comes from Python as
// JSON (traitlet `graph`); variable statistics are asked for with a custom message.
import dagre from "@dagrejs/dagre";
import { buildView, problemCounts, reveal, SEP } from "./view.js";
import { STYLE } from "./style.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const CHAR = 7;
const BOX_H = 38;

function svg(tag, attrs = {}, parent = null) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

function html(tag, attrs = {}, text = null, parent = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== null) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function clip(text, n = 34) {
  return text.length <= n ? text : "\u2026" + text.slice(text.length - n + 1);
}

function render({ model, el }) {
  const data = JSON.parse(model.get("graph"));
  const counts = problemCounts(data);
  const state = { expanded: new Set(), seen: new Set(), selected: null, matches: new Set() };
  const transform = { x: 0, y: 0, k: 1 };
  let current = null; // the last laid-out view

  el.classList.add("smnb-graph-host");
  const root = html("div", { class: "smnb-graph" }, null, el);
  html("style", {}, STYLE, root);
  const bar = html("div", { class: "gv-toolbar" }, null, root);
  const search = html("input", { class: "gv-search", type: "search", placeholder: "search name or op type" }, null, bar);
  const collapseButton = html("button", { class: "gv-collapse" }, "collapse all", bar);
  const fitButton = html("button", { class: "gv-fit" }, "fit", bar);
  const controlLabel = html("label", { class: "gv-control-toggle" }, null, bar);
  const controlBox = html("input", { type: "checkbox" }, null, controlLabel);
  controlLabel.append(" control edges");
  const status = html("span", { class: "gv-status" }, "", bar);
  html("span", { class: "gv-legend" }, "red outline: ops the engine cannot run \u00b7 \u2295 expands, \u2296 collapses", bar);
  const main = html("div", { class: "gv-main" }, null, root);
  main.style.height = `${model.get("height")}px`;
  const canvas = html("div", { class: "gv-canvas" }, null, main);
  const panel = html("div", { class: "gv-details" }, null, main);
  const drawing = svg("svg", { class: "gv-svg", width: "100%", height: "100%" }, canvas);
  const defs = svg("defs", {}, drawing);
  const marker = svg("marker", { id: "gv-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7,
                                  markerHeight: 7, orient: "auto" }, defs);
  svg("path", { d: "M0,0L10,5L0,10z", class: "gv-arrowhead" }, marker);
  const scene = svg("g", { class: "gv-scene" }, drawing);

  const applyTransform = () => scene.setAttribute("transform", `translate(${transform.x},${transform.y}) scale(${transform.k})`);

  const fit = () => {
    if (!current) return;
    const w = canvas.clientWidth || 800;
    const h = canvas.clientHeight || model.get("height");
    const k = Math.min(1.2, (w - 20) / Math.max(current.width, 1), (h - 20) / Math.max(current.height, 1));
    transform.k = Math.max(k, 0.05);
    transform.x = (w - current.width * transform.k) / 2;
    transform.y = 10;
    applyTransform();
  };

  const redraw = (refit = false) => {
    const started = performance.now();
    const view = buildView(data, state, counts);
    const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
    g.setGraph({ rankdir: "TB", nodesep: 22, ranksep: 44, marginx: 12, marginy: 12, ranker: "longest-path" });
    g.setDefaultEdgeLabel(() => ({}));
    for (const c of view.clusters.values()) g.setNode(c.id, { label: c.title, clusterLabelPos: "top" });
    for (const u of view.units.values()) {
      const text = Math.max(u.title.length, clip(u.subtitle).length, 6);
      g.setNode(u.id, { width: text * CHAR + (u.toggle ? 36 : 22), height: BOX_H });
    }
    for (const c of view.clusters.values()) if (c.parent) g.setParent(c.id, c.parent);
    for (const u of view.units.values()) if (u.parent) g.setParent(u.id, u.parent);
    // control-only edges (e.g. every read of a variable into the function's final NoOp) would
    // cross the whole graph: drawn only on request
    const edges = view.edges.filter((e) => controlBox.checked || !e.control);
    for (const e of edges) g.setEdge(e.source, e.target, {});
    dagre.layout(g);
    const laidOut = performance.now();
    draw(view, g, edges);
    const graph = g.graph();
    const boxes = new Map(g.nodes().map((id) => [id, g.node(id)]));
    current = { view, boxes, width: graph.width || 0, height: graph.height || 0 };
    if (refit) fit();
    const ms = performance.now() - started;
    status.textContent = `${view.units.size} boxes, ${edges.length} edges \u00b7 layout ${Math.round(laidOut - started)} ms, drawn in ${Math.round(ms)} ms`;
    model.set("render_ms", ms);
    model.save_changes();
  };

  const draw = (view, g, edges) => {
    scene.replaceChildren();
    const clusterLayer = svg("g", { class: "gv-clusters" }, scene);
    const edgeLayer = svg("g", { class: "gv-edges" }, scene);
    const nodeLayer = svg("g", { class: "gv-nodes" }, scene);
    const depth = (c) => (c.parent ? 1 + depth(view.clusters.get(c.parent)) : 0);
    const ordered = [...view.clusters.values()].sort((a, b) => depth(a) - depth(b));
    for (const c of ordered) {
      const box = g.node(c.id);
      if (!box || box.width === undefined) continue;
      const group = svg("g", { class: `gv-cluster gv-cluster-${c.kind}`, "data-id": c.id }, clusterLayer);
      svg("rect", { x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height, rx: 6 }, group);
      const title = svg("text", { x: box.x - box.width / 2 + 6, y: box.y - box.height / 2 + 11, class: "gv-cluster-title" }, group);
      title.textContent = (c.kind === "function" ? "" : "\u2296 ") + clip(c.title, 60);
      if (c.kind !== "function") {
        title.classList.add("gv-toggle");
        title.addEventListener("click", (event) => {
          event.stopPropagation();
          state.expanded.delete(c.kind === "call" ? c.call : c.id);
          redraw();
        });
      }
    }
    for (const e of edges) {
      const points = g.edge(e.source, e.target).points || [];
      if (points.length < 2) continue;
      const d = "M" + points.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" L");
      svg("path", { d, class: e.control ? "gv-edge gv-control" : "gv-edge", "marker-end": "url(#gv-arrow)" }, edgeLayer);
      const text = e.label + (e.count > 1 ? ` \u00d7${e.count}` : "");
      if (text) {
        const a = points[Math.floor(points.length / 2) - 1];
        const b = points[Math.floor(points.length / 2)];
        const label = svg("text", { x: (a.x + b.x) / 2 + 4, y: (a.y + b.y) / 2 + 3, class: "gv-edge-label" }, edgeLayer);
        label.textContent = text;
      }
    }
    for (const u of view.units.values()) {
      const box = g.node(u.id);
      const classes = ["gv-node", `gv-kind-${u.kind}`];
      if (u.problems) classes.push(u.kind === "group" || u.toggle ? "gv-contains-unsupported" : "gv-unsupported");
      if (u.id === state.selected) classes.push("gv-selected");
      if (state.matches.size && matchesUnit(u)) classes.push("gv-match");
      const group = svg("g", { class: classes.join(" "), "data-id": u.id, "data-name": u.node ? u.node.name : u.path,
                                "data-op": u.node ? u.node.op : "", "data-kind": u.kind }, nodeLayer);
      const left = box.x - box.width / 2;
      const top = box.y - box.height / 2;
      svg("rect", { x: left, y: top, width: box.width, height: box.height, rx: u.kind === "group" ? 9 : 4 }, group);
      const title = svg("text", { x: box.x, y: box.y - 3, class: "gv-title" }, group);
      title.textContent = u.title;
      const subtitle = svg("text", { x: box.x, y: box.y + 11, class: "gv-subtitle" }, group);
      subtitle.textContent = clip(u.subtitle);
      svg("title", {}, group).textContent = u.node ? `${u.node.op} ${u.node.name}` : u.path;
      if (u.toggle) {
        const toggle = svg("text", { x: left + box.width - 12, y: box.y + 4, class: "gv-toggle" }, group);
        toggle.textContent = u.expanded ? "\u2296" : "\u2295";
        toggle.addEventListener("click", (event) => {
          event.stopPropagation();
          toggleUnit(u);
        });
      }
      group.addEventListener("click", () => select(u));
      group.addEventListener("dblclick", (event) => {
        event.stopPropagation();
        if (u.toggle) toggleUnit(u);
      });
    }
  };

  const matchesUnit = (u) => {
    if (u.node) return state.matches.has(u.body + "\u001f" + u.node.name);
    return u.members.some((n) => state.matches.has(u.body + "\u001f" + n.name));
  };

  // Keep the toggled box where the eye is: fit when the whole graph stays legible, else centre it.
  const toggleUnit = (u) => {
    if (state.expanded.has(u.id)) state.expanded.delete(u.id);
    else state.expanded.add(u.id);
    redraw();
    focus(u.expanded ? u.id : u.id + SEP + "cluster");
  };

  const focus = (id) => {
    const w = canvas.clientWidth || 800;
    const h = canvas.clientHeight || model.get("height");
    if (Math.min((w - 20) / Math.max(current.width, 1), (h - 20) / Math.max(current.height, 1)) >= 0.6) {
      fit();
      return;
    }
    const box = current.boxes.get(id) || current.boxes.get(id.replace(SEP + "cluster", ""));
    if (!box) return;
    transform.k = Math.max(transform.k, 0.6);
    transform.x = w / 2 - box.x * transform.k;
    transform.y = Math.min(h / 3, h / 2 - (box.y - box.height / 2) * transform.k);
    applyTransform();
  };

  const row = (table, key, value, attrs = {}) => {
    const tr = html("tr", attrs, null, table);
    html("th", {}, key, tr);
    html("td", {}, value, tr);
    return tr;
  };

  const select = (u) => {
    state.selected = u.id;
    for (const e of scene.querySelectorAll(".gv-selected")) e.classList.remove("gv-selected");
    const shown = [...scene.querySelectorAll(".gv-node")].find((e) => e.getAttribute("data-id") === u.id);
    if (shown) shown.classList.add("gv-selected");
    panel.replaceChildren();
    if (!u.node) {
      html("div", { class: "gv-details-title" }, `name scope ${u.path}`, panel);
      const table = html("table", { class: "gv-summary" }, null, panel);
      row(table, "ops", String(u.members.length));
      row(table, "unsupported", String(u.problems));
      const byOp = {};
      for (const n of u.members) byOp[n.op] = (byOp[n.op] || 0) + 1;
      const ops = html("table", { class: "gv-ops" }, null, panel);
      for (const [op, n] of Object.entries(byOp).sort((a, b) => b[1] - a[1]).slice(0, 40)) row(ops, op, String(n));
      html("button", { class: "gv-expand" }, "expand", panel).addEventListener("click", () => toggleUnit(u));
      return;
    }
    const n = u.node;
    model.set("selected", u.body + "\u001f" + n.name);
    model.save_changes();
    html("div", { class: "gv-details-title" }, n.name, panel);
    const summary = html("table", { class: "gv-summary" }, null, panel);
    row(summary, "op", n.op, { "data-field": "op" });
    row(summary, "kind", n.kind);
    row(summary, "in", u.body ? `function ${u.body}` : "main graph");
    row(summary, "device", n.device || "(unplaced)");
    if (n.status) row(summary, "engine", n.status === "denied" ? "refused (IO op)" : "not supported", { class: "gv-bad" });
    for (const call of n.calls || []) row(summary, `calls (${call.role})`, call.function);
    if (n.variable) {
      html("div", { class: "gv-section" }, "variable", panel);
      const variable = html("table", { class: "gv-variable" }, null, panel);
      row(variable, "dtype", n.variable.dtype);
      row(variable, "shape", n.variable.shape);
      if (n.variable.key) {
        row(variable, "checkpoint key", n.variable.key);
        model.send({ type: "details", body: u.body, name: n.name });
      }
    }
    html("div", { class: "gv-section" }, "attributes", panel);
    const attrs = html("table", { class: "gv-attrs" }, null, panel);
    for (const [k, v] of Object.entries(n.attrs)) row(attrs, k, v, { "data-attr": k });
    html("div", { class: "gv-section" }, "inputs", panel);
    const inputs = html("ol", { class: "gv-inputs", start: 0 }, null, panel);
    for (const t of n.inputs) html("li", {}, t, inputs);
    html("div", { class: "gv-section" }, "outputs", panel);
    const outputs = html("ol", { class: "gv-outputs", start: 0 }, null, panel);
    for (const t of n.outputs) html("li", {}, t, outputs);
    if (u.toggle) html("button", { class: "gv-expand" }, u.expanded ? "collapse" : "expand", panel)
      .addEventListener("click", () => toggleUnit(u));
  };

  model.on("msg:custom", (msg) => {
    if (!msg || msg.type !== "details" || !msg.details || !msg.details.variable) return;
    if (model.get("selected") !== msg.body + "\u001f" + msg.name) return;
    const table = panel.querySelector(".gv-variable");
    if (!table) return;
    for (const [k, v] of Object.entries(msg.details.variable)) {
      if (["dtype", "shape", "key", "checkpoint key"].includes(k)) continue;
      row(table, k, String(v), { "data-stat": k });
    }
  });

  const runSearch = () => {
    const text = search.value.trim().toLowerCase();
    state.matches = new Set();
    panel.replaceChildren();
    if (!text) {
      redraw();
      return;
    }
    const found = [];
    for (const body of Object.values(data.bodies)) {
      for (const n of body.nodes) {
        if (n.name.toLowerCase().includes(text) || n.op.toLowerCase().includes(text)) {
          state.matches.add(body.id + "\u001f" + n.name);
          found.push([body.id, n]);
        }
      }
    }
    html("div", { class: "gv-details-title" }, `${found.length} match${found.length === 1 ? "" : "es"} for "${text}"`, panel);
    const list = html("ul", { class: "gv-matches" }, null, panel);
    for (const [bodyId, n] of found.slice(0, 200)) {
      const item = html("li", {}, `${n.op} ${n.name}${bodyId ? "  (in " + bodyId + ")" : ""}`, list);
      item.addEventListener("click", () => {
        const id = reveal(data, state, bodyId, n.name);
        if (id === null) return;
        state.selected = id;
        redraw();
        focus(id);
        const unit = current.view.units.get(id);
        if (unit) select(unit);
      });
    }
    redraw();
  };

  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") runSearch();
  });
  search.addEventListener("search", runSearch);
  collapseButton.addEventListener("click", () => {
    state.expanded = new Set();
    state.seen = new Set();
    redraw(true);
  });
  fitButton.addEventListener("click", fit);
  controlBox.addEventListener("change", () => redraw());

  let drag = null;
  drawing.addEventListener("mousedown", (event) => {
    drag = { x: event.clientX - transform.x, y: event.clientY - transform.y };
  });
  const onMove = (event) => {
    if (!drag) return;
    transform.x = event.clientX - drag.x;
    transform.y = event.clientY - drag.y;
    applyTransform();
  };
  const onUp = () => { drag = null; };
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  drawing.addEventListener("wheel", (event) => {
    event.preventDefault();
    const rect = drawing.getBoundingClientRect();
    const px = event.clientX - rect.left;
    const py = event.clientY - rect.top;
    const factor = Math.exp(-event.deltaY * 0.0015);
    transform.x = px - (px - transform.x) * factor;
    transform.y = py - (py - transform.y) * factor;
    transform.k *= factor;
    applyTransform();
  }, { passive: false });

  redraw(true);
  // fit again once the output area has its real size
  requestAnimationFrame(() => fit());
  return () => {
    window.removeEventListener("mousemove", onMove);
    window.removeEventListener("mouseup", onUp);
  };
}

export default { render };
export { SEP };
