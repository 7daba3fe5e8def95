"""What Excel needs to load an add-in: the Office manifest (XML), the custom functions
metadata (JSON) and the custom functions script (JavaScript), made from an ``Addin``.

Excel reads the manifest (uploaded by the user, or deployed by an admin), which
points at the metadata, the script and a shared-runtime page, all served by the
add-in's own server under its public base URL (``https://host/apps/<name>/``).
The script calls the functions over HTTP (``POST functions/<name>``) and streams
over one WebSocket (``ws``). Everything here is generated text: no I/O.
"""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from html import escape
from typing import Any

from conveyor.definitions.addin import Addin, ExposedFunction

OFFICE = "http://schemas.microsoft.com/office/appforoffice/1.1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
BT = "http://schemas.microsoft.com/office/officeappbasictypes/1.0"
OV = "http://schemas.microsoft.com/office/taskpaneappversionoverrides"
OFFICE_JS = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js"
# Every add-in id is derived from its name under this namespace, so the manifest
# of one add-in keeps its id across restarts, servers and versions.
ID_NAMESPACE = uuid.UUID("3f0c5f64-9a57-4c1e-8d53-6a0c2f7b1e21")

ET.register_namespace("", OFFICE)
ET.register_namespace("xsi", XSI)
ET.register_namespace("bt", BT)
ET.register_namespace("ov", OV)


def addin_id(addin: Addin) -> str:
    """The manifest ``Id``: a UUID that is the same for the same add-in name."""
    return str(uuid.uuid5(ID_NAMESPACE, addin.name))


def manifest_xml(
    addin: Addin, base_url: str, *, version: str = "1.0.0.0", provider: str = "Conveyor"
) -> str:
    """The Office add-in manifest of ``addin``, with every URL under ``base_url``.

    ``base_url`` is the public address of the add-in (``https://host/apps/pricer/``);
    Excel only loads add-ins over HTTPS, except from localhost.
    """
    base = _base(base_url)
    root = ET.Element(_q(OFFICE, "OfficeApp"), {_q(XSI, "type"): "TaskPaneApp"})
    _text(root, "Id", addin_id(addin))
    _text(root, "Version", version)
    _text(root, "ProviderName", provider)
    _text(root, "DefaultLocale", "en-US")
    ET.SubElement(root, _q(OFFICE, "DisplayName"), DefaultValue=addin.name)
    ET.SubElement(root, _q(OFFICE, "Description"), DefaultValue=addin.description or addin.name)
    ET.SubElement(root, _q(OFFICE, "IconUrl"), DefaultValue=base + "icon-32.png")
    ET.SubElement(root, _q(OFFICE, "HighResolutionIconUrl"), DefaultValue=base + "icon-80.png")
    hosts = ET.SubElement(root, _q(OFFICE, "Hosts"))
    ET.SubElement(hosts, _q(OFFICE, "Host"), Name="Workbook")
    requirements = ET.SubElement(root, _q(OFFICE, "Requirements"))
    sets = ET.SubElement(requirements, _q(OFFICE, "Sets"), DefaultMinVersion="1.1")
    ET.SubElement(sets, _q(OFFICE, "Set"), Name="CustomFunctionsRuntime", MinVersion="1.1")
    ET.SubElement(sets, _q(OFFICE, "Set"), Name="SharedRuntime", MinVersion="1.1")
    settings = ET.SubElement(root, _q(OFFICE, "DefaultSettings"))
    ET.SubElement(settings, _q(OFFICE, "SourceLocation"), DefaultValue=base + "taskpane.html")
    _text(root, "Permissions", "ReadWriteDocument")
    root.append(_version_overrides(addin, base))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _version_overrides(addin: Addin, base: str) -> ET.Element:
    overrides = ET.Element(_q(OV, "VersionOverrides"), {_q(XSI, "type"): "VersionOverridesV1_0"})
    hosts = ET.SubElement(overrides, _q(OV, "Hosts"))
    host = ET.SubElement(hosts, _q(OV, "Host"), {_q(XSI, "type"): "Workbook"})
    runtimes = ET.SubElement(host, _q(OV, "Runtimes"))
    ET.SubElement(runtimes, _q(OV, "Runtime"), resid="Taskpane.Url", lifetime="long")
    factors = ET.SubElement(host, _q(OV, "AllFormFactors"))
    point = ET.SubElement(factors, _q(OV, "ExtensionPoint"), {_q(XSI, "type"): "CustomFunctions"})
    for element, resid in (
        ("Script", "Functions.Script.Url"),
        ("Page", "Taskpane.Url"),
        ("Metadata", "Functions.Metadata.Url"),
    ):
        holder = ET.SubElement(point, _q(OV, element))
        ET.SubElement(holder, _q(OV, "SourceLocation"), resid=resid)
    ET.SubElement(point, _q(OV, "Namespace"), resid="Functions.Namespace")
    resources = ET.SubElement(overrides, _q(OV, "Resources"))
    urls = ET.SubElement(resources, _q(BT, "Urls"))
    for resid, path in (
        ("Functions.Script.Url", "functions.js"),
        ("Functions.Metadata.Url", "functions.json"),
        ("Taskpane.Url", "taskpane.html"),
    ):
        ET.SubElement(urls, _q(BT, "Url"), id=resid, DefaultValue=base + path)
    strings = ET.SubElement(resources, _q(BT, "ShortStrings"))
    ET.SubElement(strings, _q(BT, "String"), id="Functions.Namespace", DefaultValue=addin.namespace)
    return overrides


def functions_metadata(addin: Addin) -> dict[str, Any]:
    """The custom functions metadata (``functions.json``) Excel registers the functions by."""
    return {"functions": [_function_metadata(f) for f in addin.functions.values()]}


def _function_metadata(fn: ExposedFunction) -> dict[str, Any]:
    parameters = []
    for p in fn.parameters:
        parameter: dict[str, Any] = {
            "name": p.name,
            "type": p.type.excel_type,
            "dimensionality": p.type.dimensionality,
        }
        if not p.required:
            parameter["optional"] = True
        parameters.append(parameter)
    options: dict[str, Any] = {}
    if fn.volatile:
        options["volatile"] = True
    # A progress bar shows as text in the cell ("40% pricing"), then the result:
    # to Excel that is a stream of values of any type.
    stream = fn.streaming or fn.progressbar
    if stream:
        options["stream"] = True
    result_type = "any" if fn.progressbar else fn.result.excel_type
    metadata: dict[str, Any] = {
        "id": excel_name(fn),
        "name": excel_name(fn),
        # The metadata has no field for help text but a URL: Excel shows the description.
        "description": " ".join(part for part in (fn.description, fn.help) if part),
        "parameters": parameters,
        "result": {"type": result_type, "dimensionality": fn.result.dimensionality},
    }
    if options:
        metadata["options"] = options
    return metadata


def excel_name(fn: ExposedFunction) -> str:
    """The function's name in Excel (after the add-in's namespace): its name in capitals."""
    return fn.name.upper()


def functions_script(addin: Addin, base_url: str) -> str:
    """The custom functions script (``functions.js``): each function associated with
    a call to the add-in's server, over HTTP, or the WebSocket when it streams."""
    base = _base(base_url)
    lines = [
        f"// Custom functions of the Excel add-in {json.dumps(addin.name)}, made by Conveyor.",
        "(function () {",
        '  "use strict";',
        f"  var BASE = {json.dumps(base)};",
        _RUNTIME,
    ]
    for fn in addin.functions.values():
        names = [p.name for p in fn.parameters]
        args = ", ".join(names)
        matrix = "true" if fn.result.dimensionality == "matrix" else "false"
        params = ", ".join([*names, "invocation"]) if fn.streaming or fn.progressbar else args
        if fn.streaming or fn.progressbar:
            body = f"stream({json.dumps(fn.name)}, [{args}], invocation, {matrix});"
        else:
            body = f"return call({json.dumps(fn.name)}, [{args}], {matrix});"
        lines.append(
            f"  CustomFunctions.associate({json.dumps(excel_name(fn))}, "
            f"function ({params}) {{ {body} }});"
        )
    lines.append("})();")
    return "\n".join(lines) + "\n"


# The part of functions.js that is the same for every add-in: one HTTP call per
# plain function, one shared WebSocket for the streaming ones (reopened when it drops).
_RUNTIME = r"""
  function cell(value, matrix) {
    if (!matrix) { return value; }
    if (!Array.isArray(value)) { return [[value]]; }
    if (value.length === 0) { return [[""]]; }
    return Array.isArray(value[0]) ? value : [value];
  }
  function failure(message) {
    return new CustomFunctions.Error(CustomFunctions.ErrorCode.invalidValue, String(message));
  }
  function call(name, args, matrix) {
    return fetch(BASE + "functions/" + encodeURIComponent(name), {
      method: "POST",
      credentials: "include",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ args: args })
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw failure(body.error || response.statusText); }
        return cell(body.result, matrix);
      });
    });
  }
  var socket = null;
  var calls = {};
  var nextId = 1;
  function connect() {
    if (socket && socket.readyState <= 1) { return socket; }
    socket = new WebSocket(BASE.replace(/^http/, "ws") + "ws");
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      var entry = calls[message.id];
      if (!entry) { return; }
      if (message.type === "value" || message.type === "result") {
        entry.invocation.setResult(cell(message.value, entry.matrix));
      } else if (message.type === "progress") {
        entry.invocation.setResult(Math.round(message.done * 100) + "% " + message.message);
      } else if (message.type === "error") {
        entry.invocation.setResult(failure(message.error));
      }
      if (message.type === "result" || message.type === "error" || message.type === "end") {
        delete calls[message.id];
      }
    };
    socket.onclose = function () {
      socket = null;
      Object.keys(calls).forEach(function (id) {
        calls[id].invocation.setResult(failure("the add-in server went away"));
        delete calls[id];
      });
    };
    return socket;
  }
  function send(message) {
    var ws = connect();
    if (ws.readyState === 1) { ws.send(JSON.stringify(message)); }
    else { ws.addEventListener("open", function () { ws.send(JSON.stringify(message)); }); }
  }
  function stream(name, args, invocation, matrix) {
    var id = String(nextId++);
    calls[id] = { invocation: invocation, matrix: matrix };
    invocation.onCanceled = function () {
      delete calls[id];
      send({ id: id, cancel: true });
    };
    send({ id: id, function: name, args: args });
  }"""


def taskpane_html(addin: Addin, base_url: str) -> str:
    """The shared-runtime page: loads office.js and the functions, and lists them."""
    base = _base(base_url)
    items = "\n".join(
        f"      <li><code>={escape(addin.namespace)}.{escape(excel_name(f))}("
        f"{escape(', '.join(p.name for p in f.parameters))})</code> "
        f"{escape(f.description)}</li>"
        for f in addin.functions.values()
    )
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>{escape(addin.name)}</title>
    <script src="{OFFICE_JS}"></script>
    <script src="{escape(base)}functions.js"></script>
  </head>
  <body>
    <h1>{escape(addin.name)}</h1>
    <p>{escape(addin.description)}</p>
    <ul>
{items}
    </ul>
  </body>
</html>
"""


def _base(base_url: str) -> str:
    return base_url if base_url.endswith("/") else base_url + "/"


def _q(namespace: str, tag: str) -> str:
    return f"{{{namespace}}}{tag}"


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, _q(OFFICE, tag)).text = text
