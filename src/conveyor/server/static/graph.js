// Draws a task graph as SVG. dagre lays it out; this script only draws boxes and edges.
//
// A graph lives in <div class="graph" data-graph="ID">, and its data in
// <script type="application/json" id="ID">{"nodes": [...], "edges": [[from, to], ...]}</script>;
// each node is {id, label, sub, state, href}. When htmx swaps in a fragment holding a newer
// copy of that script (the run page polls one), the boxes are recoloured in place, and the
// graph is laid out again only when its set of nodes or edges changed.
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
    return JSON.stringify([data.nodes.map(function (n) { return [n.id, n.label]; }), data.edges]);
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
    var g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: rankdir, nodesep: 16, ranksep: 36, marginx: 6, marginy: 6 });
    g.setDefaultEdgeLabel(function () { return {}; });
    data.nodes.forEach(function (n) { g.setNode(n.id, { width: widthOf(n), height: NODE_H }); });
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
      var group = el("g", { "class": "node s-" + (n.state || "none"), "data-id": n.id }, parent);
      var title = el("title", {}, group);
      title.textContent = n.label + (n.state ? " \u2014 " + n.state : "") + (n.sub ? "\n" + n.sub : "");
      el("rect", { "class": "box", x: x, y: y, width: box.width, height: box.height, rx: 4 }, group);
      el("rect", { "class": "bar", x: x, y: y, width: 5, height: box.height, rx: 2 }, group);
      var label = el("text", { x: x + 12, y: y + (n.sub ? 17 : 25) }, group);
      label.textContent = cut(n.label, box.width);
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
      group.setAttribute("class", "node s-" + (n.state || "none"));
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

  function render(container) {
    var source = document.getElementById(container.dataset.graph);
    if (!source) return;
    var data = JSON.parse(source.textContent);
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
