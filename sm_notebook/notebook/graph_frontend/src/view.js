// Which boxes, clusters and edges are visible, given the graph model (sm_notebook.graphview.model)
// and the set of expanded calls and name scopes. No drawing here: index.js lays the result out.
//
// Ids: a body instance has a prefix ("" for the main graph, "<call id>›<role>›" inside an expanded
// call); a node's id is prefix + its name; a name scope's id is prefix + "§" + its path.

export const SEP = "\u203a";
const GROUP = "\u00a7";
const MAX_DEPTH = 24;
const CAPTURED = "(captured)"; // graphview.model.CAPTURED_SCOPE // nested expansions (guards recursive functions)

export function scopeParts(node) {
  return node.scope ? node.scope.split("/") : [];
}

// The scope components opened on first view (as the SVG does): while the ops below the opened
// scope sit in one single scope (unscoped ops beside it allowed), that scope is opened too; the
// (captured) variables stay folded.
export function openScope(body) {
  const scopes = body.nodes.filter((n) => n.kind !== "input" && n.kind !== "output").map(scopeParts);
  const opened = [];
  for (;;) {
    const below = new Set();
    for (const s of scopes) {
      if (s.length > opened.length && opened.every((part, i) => s[i] === part)) below.add(s[opened.length]);
    }
    if (below.size !== 1 || below.has(CAPTURED)) return opened;
    opened.push([...below][0]);
  }
}

// How many nodes each scope path of the body holds (nested scopes included).
function scopeSizes(body) {
  if (body.scopeSizes) return body.scopeSizes;
  const sizes = new Map();
  for (const node of body.nodes) {
    const parts = scopeParts(node);
    for (let i = 1; i <= parts.length; i++) {
      const path = parts.slice(0, i).join("/");
      sizes.set(path, (sizes.get(path) || 0) + 1);
    }
  }
  body.scopeSizes = sizes;
  return sizes;
}

function nodeNamed(body, name) {
  if (!body.byName) body.byName = new Map(body.nodes.map((n) => [n.name, n]));
  return body.byName.get(name);
}

export function groupId(prefix, path) {
  return prefix + GROUP + path;
}

// Unsupported ops per body, counting those inside the functions its calls run.
export function problemCounts(data) {
  const counts = {};
  const visiting = new Set();
  const count = (id) => {
    if (id in counts) return counts[id];
    if (visiting.has(id)) return 0;
    visiting.add(id);
    let total = 0;
    for (const node of data.bodies[id].nodes) {
      if (node.status) total += 1;
      for (const call of node.calls || []) if (data.bodies[call.function]) total += count(call.function);
    }
    visiting.delete(id);
    counts[id] = total;
    return total;
  };
  for (const id of Object.keys(data.bodies)) count(id);
  return counts;
}

export function nodeProblems(data, counts, node) {
  let total = node.status ? 1 : 0;
  for (const call of node.calls || []) total += counts[call.function] || 0;
  return total;
}

// Build the visible graph. `state.expanded` holds expanded call and scope ids; `state.seen`
// the body instances already shown (their shared scopes are opened the first time).
export function buildView(data, state, counts) {
  const units = new Map();
  const clusters = new Map();
  const edges = new Map();

  const addEdge = (source, target, label, control) => {
    if (!source || !target || source === target) return;
    const key = source + "\u0000" + target;
    const found = edges.get(key);
    if (found) {
      if (!control) found.count += 1;
      found.control = found.control && control;
      if (!found.label) found.label = label;
    } else {
      edges.set(key, { source, target, label, count: control ? 0 : 1, control });
    }
  };

  const visit = (bodyId, prefix, parent, depth) => {
    const body = data.bodies[bodyId];
    const inst = { body, owner: new Map(), calls: new Map() };
    if (!state.seen.has(prefix)) {
      state.seen.add(prefix);
      const opened = openScope(body);
      for (let i = 1; i <= opened.length; i++) state.expanded.add(groupId(prefix, opened.slice(0, i).join("/")));
    }
    const sizes = scopeSizes(body);
    for (const node of body.nodes) {
      const parts = scopeParts(node);
      let where = parent;
      let owner = null;
      for (let i = 0; i < parts.length; i++) {
        const path = parts.slice(0, i + 1).join("/");
        if (sizes.get(path) === 1) break; // a scope of one op is shown as that op
        const gid = groupId(prefix, path);
        if (state.expanded.has(gid)) {
          if (!clusters.has(gid)) clusters.set(gid, { id: gid, title: parts[i], parent: where, kind: "scope", body: bodyId, path });
          where = gid;
        } else {
          let unit = units.get(gid);
          if (!unit) {
            unit = { id: gid, kind: "group", title: parts[i], subtitle: "", parent: where, body: bodyId,
                     path, members: [], problems: 0, toggle: true };
            units.set(gid, unit);
          }
          unit.members.push(node);
          unit.problems += nodeProblems(data, counts, node);
          owner = gid;
          break;
        }
      }
      if (owner) {
        inst.owner.set(node.name, owner);
        continue;
      }
      const id = prefix + node.name;
      const calls = (node.calls || []).filter((c) => data.bodies[c.function]);
      const unit = { id, kind: node.kind, title: node.kind === "output" ? "output" : node.op,
                     subtitle: node.name.replace(/^output:/, ""), parent: where, body: bodyId, node,
                     problems: nodeProblems(data, counts, node), toggle: calls.length > 0 && depth < MAX_DEPTH };
      units.set(id, unit);
      inst.owner.set(node.name, id);
      if (calls.length && state.expanded.has(id) && depth < MAX_DEPTH) {
        const cid = id + SEP + "cluster";
        clusters.set(cid, { id: cid, title: node.name, parent: where, kind: "call", call: id });
        unit.parent = cid;
        unit.expanded = true;
        const subs = calls.map((call) => {
          const rid = id + SEP + call.role + SEP + "cluster";
          clusters.set(rid, { id: rid, title: `${call.role}: ${call.function}`, parent: cid, kind: "function" });
          return { call, inst: visit(call.function, id + SEP + call.role + SEP, rid, depth + 1) };
        });
        inst.calls.set(node.name, { header: id, subs });
      }
    }
    for (const [source, target, output, input, label] of body.edges) {
      const control = input < 0;
      for (const s of outReps(inst, source, output, control)) {
        for (const t of inReps(inst, target, input)) addEdge(s, t, label, control);
      }
    }
    return inst;
  };

  const outReps = (inst, name, output, control) => {
    const call = inst.calls.get(name);
    if (!call || control) return [inst.owner.get(name)];
    const found = [];
    for (const sub of call.subs) {
      if (!sub.call.returns) continue;
      const ret = sub.inst.body.rets[output];
      if (ret !== undefined) found.push(sub.inst.owner.get(ret));
    }
    return found.length ? found : [call.header];
  };

  // A variable handle passed into a call ends at the call's own box: drawn on to the argument
  // (often inside a layer's scope far down the body) it would cross the whole expanded body.
  const inReps = (inst, name, input) => {
    const call = inst.calls.get(name);
    if (!call || input < 0) return [inst.owner.get(name)];
    const found = [];
    for (const sub of call.subs) {
      const arg = sub.inst.body.args[input - sub.call.offset];
      if (input >= sub.call.offset && arg !== undefined && !nodeNamed(sub.inst.body, arg).variable) {
        found.push(sub.inst.owner.get(arg));
      }
    }
    return found.length ? found : [call.header];
  };

  visit(data.root, "", null, 0);
  for (const unit of units.values()) {
    if (unit.kind === "group") {
      const noun = unit.path === CAPTURED ? "variable" : "op";
      unit.subtitle = `${unit.members.length} ${noun}${unit.members.length === 1 ? "" : "s"}`;
    }
  }
  return { units, clusters, edges: [...edges.values()] };
}

// Calls leading from the main graph to `bodyId`: [[call node name, role, body holding the call], ...].
export function callPath(data, bodyId) {
  if (bodyId === data.root) return [];
  const queue = [data.root];
  const from = new Map([[data.root, null]]);
  while (queue.length) {
    const current = queue.shift();
    for (const node of data.bodies[current].nodes) {
      for (const call of node.calls || []) {
        if (!data.bodies[call.function] || from.has(call.function)) continue;
        from.set(call.function, [node.name, call.role, current]);
        if (call.function === bodyId) {
          const path = [];
          let at = bodyId;
          while (from.get(at)) {
            path.unshift(from.get(at));
            at = from.get(at)[2];
          }
          return path;
        }
        queue.push(call.function);
      }
    }
  }
  return null;
}

// Expand what hides node `name` of body `bodyId`; returns its unit id (null when unreachable).
export function reveal(data, state, bodyId, name) {
  const path = callPath(data, bodyId);
  if (path === null) return null;
  let prefix = "";
  for (const [callName, role, holder] of path) {
    exposeScopes(data.bodies[holder], prefix, callName, state);
    state.expanded.add(prefix + callName);
    prefix = prefix + callName + SEP + role + SEP;
  }
  exposeScopes(data.bodies[bodyId], prefix, name, state);
  return prefix + name;
}

function exposeScopes(body, prefix, name, state) {
  const node = body.nodes.find((n) => n.name === name);
  const parts = node ? scopeParts(node) : [];
  for (let i = 1; i <= parts.length; i++) state.expanded.add(groupId(prefix, parts.slice(0, i).join("/")));
}
