// Draws a task graph as SVG. dagre lays it out; this script only draws boxes and edges.
//
// A graph lives in <div class="graph" data-graph="ID">, and its data in
// <script type="application/json" id="ID">{"nodes": [...], "edges": [[from, to], ...]}</script>;
// each node is {id, label, sub, state, href}. When htmx swaps in a fragment holding a newer
// copy of that script (the run page polls one), the boxes are recoloured in place, and the
// graph is laid out again only when its set of nodes or edges changed.
//
// A node may name its subgraph ("group"), and the data lists the subgraphs ("groups": {id,
// label, parent}). A subgraph is drawn collapsed, as one box with its task count and its
// tasks' combined state; a click expands it into a frame around its tasks (nested
// subgraphs collapsed in it), and a click on the frame's title collapses it again.
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var NODE_H = 42;
  var CHAR_W = 7.2;
  // The detail line's character width, and the characters it is given room for.
  var SUB_W = 6.6;
  var SUB_CHARS = 24;

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function shapeOf(data) {
    return JSON.stringify([data.nodes.map(function (n) { return [n.id, n.label, n.parent || ""]; }),
      data.edges, (data.frames || []).map(function (f) { return f.id; })]);
  }

  // The expanded subgraphs of a container, by id; at first, the ones the selected task is in.
  function expandedOf(container) {
    if (container.dataset.expanded === undefined) {
      var open = {}, parts = (container.dataset.selected || "").split(".");
      for (var i = 1; i < parts.length; i++) open[parts.slice(0, i).join(".")] = true;
      container.dataset.expanded = JSON.stringify(open);
    }
    try { return JSON.parse(container.dataset.expanded); } catch (e) { return {}; }
  }

  // A subgraph's tasks in one word: failure if one failed, success when all did, running
  // while some ran and some wait, else the state they share (or the first one's).
  function combined(states) {
    if (states.indexOf("failure") >= 0) return "failure";
    var done = states.filter(function (s) { return s === "success" || s === "reused"; }).length;
    if (done === states.length) return states.indexOf("success") >= 0 ? "success" : "reused";
    if (states.indexOf("running") >= 0 || done > 0) return "running";
    return states[0] || "none";
  }

  // The graph as shown: each task inside a collapsed subgraph replaced by the outermost
  // collapsed one's box, edges redirected to it (inner ones dropped), and the expanded
  // subgraphs as frames. Without groups the data is shown as it is.
  function visible(data, expanded) {
    var groups = data.groups || [];
    if (!groups.length) return data;
    var byId = {};
    groups.forEach(function (grp) { byId[grp.id] = grp; });
    function chain(id) {  // outermost first
      var out = [];
      for (var at = id; at; at = byId[at] ? byId[at].parent : null) out.unshift(at);
      return out;
    }
    function shownAs(groupId) {  // the collapsed box a member of groupId is drawn in, or null
      var c = chain(groupId);
      for (var i = 0; i < c.length; i++) if (!expanded[c[i]]) return c[i];
      return null;
    }
    var rep = {}, members = {}, nodes = [], frames = {};
    data.nodes.forEach(function (n) {
      var box = n.group ? shownAs(n.group) : null;
      if (box === null) {
        rep[n.id] = n.id;
        nodes.push({ id: n.id, label: n.label, sub: n.sub, state: n.state, href: n.href, parent: n.group || null });
        chain(n.group).forEach(function (f) { frames[f] = true; });
        return;
      }
      rep[n.id] = box;
      (members[box] = members[box] || []).push(n);
    });
    Object.keys(members).forEach(function (id) {
      var inside = members[id], states = inside.map(function (n) { return n.state || "none"; });
      var state = combined(states), parent = byId[id].parent;
      var ran = states.filter(function (s) { return s !== "none" && s !== "pending"; }).length;
      var count = inside.length + (inside.length === 1 ? " task" : " tasks");
      nodes.push({ id: id, label: byId[id].label, group: true, state: state, parent: parent,
        sub: count + (state === "none" ? "" : " \u00b7 " + ran + " ran"), members: inside.length });
      chain(parent).forEach(function (f) { frames[f] = true; });
    });
    var seen = {}, edges = [];
    data.edges.forEach(function (e) {
      var a = rep[e[0]], b = rep[e[1]];
      if (!a || !b || a === b || seen[a + "\n" + b]) return;
      seen[a + "\n" + b] = true;
      edges.push([a, b]);
    });
    var order = groups.map(function (grp) { return grp.id; }).filter(function (id) { return frames[id]; });
    return { nodes: nodes, edges: edges, too_many: data.too_many,
      frames: order.map(function (id) { return { id: id, label: byId[id].label, parent: byId[id].parent }; }) };
  }

  function widthOf(node) {
    // Room for the label, and for the detail line as it will read at its longest
    // ("success · 12.3 s · try 2", "running · attempt 2"), cut() measuring it alike.
    var label = node.label.length * CHAR_W + 30;
    var sub = Math.max((node.sub || "").length, SUB_CHARS) * SUB_W + 24;
    return Math.max(110, Math.min(260, Math.ceil(Math.max(label, sub))));
  }

  function cut(text, width) {
    var max = Math.floor((width - 24) / SUB_W);
    return text.length > max ? text.slice(0, Math.max(1, max - 1)) + "\u2026" : text;
  }

  function layout(data, rankdir) {
    var frames = data.frames || [];
    var g = new dagre.graphlib.Graph({ compound: frames.length > 0 });
    g.setGraph({ rankdir: rankdir, nodesep: 16, ranksep: 36, marginx: 6, marginy: 6 });
    g.setDefaultEdgeLabel(function () { return {}; });
    frames.forEach(function (f) { g.setNode("frame:" + f.id, { paddingTop: 24 }); });
    frames.forEach(function (f) { if (f.parent) g.setParent("frame:" + f.id, "frame:" + f.parent); });
    data.nodes.forEach(function (n) {
      g.setNode(n.id, { width: widthOf(n), height: NODE_H });
      if (n.parent && frames.length) g.setParent(n.id, "frame:" + n.parent);
    });
    data.edges.forEach(function (e) { if (g.hasNode(e[0]) && g.hasNode(e[1])) g.setEdge(e[0], e[1]); });
    dagre.layout(g);
    return g;
  }

  // How much a layout must shrink to fit the container (1: not at all).
  function scaleOf(g, container) {
    var size = g.graph();
    var room = Math.max(container.clientWidth, 200);
    var tall = Math.max(window.innerHeight * 0.6, 320);
    return Math.min(1, room / Math.max(size.width, 1), tall / Math.max(size.height, 1));
  }

  // Left to right reads best; top to bottom when left to right would shrink the boxes more.
  function bestLayout(data, container) {
    var wide = layout(data, "LR");
    if (data.nodes.length < 2 || scaleOf(wide, container) >= 0.95) return wide;
    var tall = layout(data, "TB");
    return scaleOf(tall, container) > scaleOf(wide, container) ? tall : wide;
  }

  function draw(container, data) {
    var g = bestLayout(data, container);
    var size = g.graph();
    var width = Math.max(size.width || 0, 40), height = Math.max(size.height || 0, 40);
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, width: width, height: height, role: "img" });
    svg.setAttribute("aria-label", container.getAttribute("aria-label") || "task graph");
    var defs = el("defs", {}, svg);
    var marker = el("marker", { id: "arrow-" + container.dataset.graph, viewBox: "0 0 10 10", refX: "9", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", "class": "arrow" }, marker);

    // Expanded subgraphs: a frame around their tasks, its title collapsing it on click.
    (data.frames || []).forEach(function (f) {
      var box = g.node("frame:" + f.id);
      if (!box) return;
      var x = box.x - box.width / 2, y = box.y - box.height / 2;
      var frame = el("g", { "class": "frame", "data-frame": f.id, role: "button", tabindex: "0" }, svg);
      frame.setAttribute("aria-label", "collapse subgraph " + f.id);
      el("rect", { x: x, y: y, width: box.width, height: box.height, rx: 6, fill: "#f6f8fb",
        stroke: "#9aa3b0", "stroke-dasharray": "4 3" }, frame);
      var title = el("text", { x: x + 8, y: y + 14, "font-size": "11px", fill: "#55606e",
        "font-family": "system-ui, sans-serif", style: "cursor: pointer" }, frame);
      title.textContent = "\u25be " + f.label;
      frame.addEventListener("click", function () { toggle(container, f.id, false); });
    });

    g.edges().forEach(function (e) {
      var pts = g.edge(e).points;
      var d = "M" + pts.map(function (p) { return p.x.toFixed(1) + "," + p.y.toFixed(1); }).join(" L");
      el("path", { d: d, "class": "edge", "marker-end": "url(#arrow-" + container.dataset.graph + ")" }, svg);
    });

    data.nodes.forEach(function (n) {
      var box = g.node(n.id);
      var x = box.x - box.width / 2, y = box.y - box.height / 2;
      var parent = svg;
      if (n.href) {
        parent = el("a", { href: n.href, "class": "nodelink" }, svg);
        parent.setAttribute("aria-label", n.label + (n.state ? " (" + n.state + ")" : ""));
      }
      if (n.group) {
        // A collapsed subgraph: a stacked box, expanded on click.
        parent = el("g", { "class": "subgraph", role: "button", tabindex: "0", style: "cursor: pointer" }, svg);
        parent.setAttribute("aria-label", "expand subgraph " + n.id + " (" + n.sub + ")");
        parent.addEventListener("click", function () { toggle(container, n.id, true); });
        el("rect", { x: x + 4, y: y - 4, width: box.width, height: box.height, rx: 4, fill: "#fff",
          stroke: "#9aa3b0", "stroke-width": 1.2 }, parent);
      }
      var group = el("g", { "class": "node s-" + (n.state || "none") + (n.group ? " collapsed" : ""), "data-id": n.id }, parent);
      var title = el("title", {}, group);
      title.textContent = n.label + (n.state ? " \u2014 " + n.state : "") + (n.sub ? "\n" + n.sub : "");
      el("rect", { "class": "box", x: x, y: y, width: box.width, height: box.height, rx: 4 }, group);
      el("rect", { "class": "bar", x: x, y: y, width: 5, height: box.height, rx: 2 }, group);
      var label = el("text", { x: x + 12, y: y + (n.sub ? 17 : 25) }, group);
      label.textContent = cut((n.group ? "\u25b8 " : "") + n.label, box.width);
      if (n.sub) {
        var sub = el("text", { "class": "sub", x: x + 12, y: y + 32 }, group);
        sub.textContent = cut(n.sub, box.width);
      }
    });

    container.replaceChildren(svg);
    container.dataset.shape = shapeOf(data);
    mark(container);
  }

  function recolour(container, data) {
    data.nodes.forEach(function (n) {
      var group = container.querySelector('g.node[data-id="' + CSS.escape(n.id) + '"]');
      if (!group) return;
      group.setAttribute("class", "node s-" + (n.state || "none") + (n.group ? " collapsed" : ""));
      var title = group.querySelector("title");
      if (title) title.textContent = n.label + (n.state ? " \u2014 " + n.state : "") + (n.sub ? "\n" + n.sub : "");
      var sub = group.querySelector("text.sub"), box = group.querySelector("rect.box");
      if (sub && box) sub.textContent = cut(n.sub || "", Number(box.getAttribute("width")));
      var link = group.parentNode;
      if (link && link.tagName.toLowerCase() === "a") link.setAttribute("aria-label", n.label + (n.state ? " (" + n.state + ")" : ""));
    });
    mark(container);
  }

  function mark(container) {
    var selected = container.dataset.selected;
    var groups = container.querySelectorAll("g.node");
    for (var i = 0; i < groups.length; i++) {
      groups[i].classList.toggle("selected", !!selected && groups[i].dataset.id === selected);
    }
  }

  function toggle(container, id, open) {
    var expanded = expandedOf(container);
    if (open) expanded[id] = true;
    else delete expanded[id];
    container.dataset.expanded = JSON.stringify(expanded);
    render(container);
  }

  function render(container) {
    var source = document.getElementById(container.dataset.graph);
    if (!source) return;
    var data = visible(JSON.parse(source.textContent), expandedOf(container));
    container.dataset.states = JSON.stringify(data.nodes.map(function (n) { return n.state || ""; }));
    if (container.dataset.shape === shapeOf(data)) recolour(container, data);
    else draw(container, data);
  }

  function renderAll() {
    var containers = document.querySelectorAll("div.graph[data-graph]");
    for (var i = 0; i < containers.length; i++) render(containers[i]);
  }

  document.addEventListener("DOMContentLoaded", renderAll);
  document.addEventListener("htmx:afterSettle", renderAll);
})();
