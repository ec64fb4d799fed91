"""The annotator's link to its page: keys that never leak to JupyterLab, and the width it may use.

A zero-size anywidget inside the annotator. Its script marks the annotator's root
element with ``data-lm-suppress-shortcuts``, so that while anything inside it has the
focus (the canvas, a button just clicked, a slider) no JupyterLab or Notebook 7 shortcut
fires: ``m`` does not turn the cell into Markdown, ``0 0`` does not restart the kernel.
Keys pressed there, except in text fields and menus, are caught first of all
(on the window, in the capture phase: Notebook 7 catches some keys, such as ``c``,
before they reach the focused element) and sent to the kernel. It also reports the
width of the notebook column the annotator sits in, so the kernel can size the canvas.
"""

from __future__ import annotations

import anywidget
import traitlets

ROOT_CLASS = "samkit-annotator"

_ESM = """
function render({ model, el }) {
  el.style.display = "none";
  let tries = 0;
  const attach = () => {
    const root = el.closest(".%(root)s");
    if (!root) { if (tries++ < 200) setTimeout(attach, 50); return; }
    root.setAttribute("data-lm-suppress-shortcuts", "true");
    const typing = (t) => t.closest("input, textarea, select, [contenteditable='true']");
    // first of all listeners (window, capture phase): the host's own capture listeners never see these keys
    const onKey = (e) => {
      if (!root.isConnected) { window.removeEventListener("keydown", onKey, true); return; }
      if (!(e.target instanceof Element) || !root.contains(e.target) || typing(e.target)) return;
      if (["Shift", "Control", "Alt", "Meta"].includes(e.key) || e.ctrlKey || e.metaKey || e.altKey) return;
      e.preventDefault();     // no button press on Enter or Space, no page scroll on the arrows
      e.stopPropagation();
      model.send({ key: e.key, shift: e.shiftKey });
    };
    window.addEventListener("keydown", onKey, true);
    const column = root.parentElement;
    const report = () => {
      const width = Math.round(column.getBoundingClientRect().width);
      if (width > 0 && width !== model.get("width")) { model.set("width", width); model.save_changes(); }
    };
    new ResizeObserver(report).observe(column);
    report();
  };
  attach();
}
export default { render };
""" % {"root": ROOT_CLASS}


class PageBridge(anywidget.AnyWidget):
    """Keys pressed in the annotator (``on_key(callback(key, shift))``) and the width of its column (``width``)."""

    _esm = _ESM
    width = traitlets.Int(0).tag(sync=True)

    def __init__(self):
        super().__init__()
        self._key_callbacks = []
        self.on_msg(self._message)

    def on_key(self, callback) -> None:
        self._key_callbacks.append(callback)

    def _message(self, _widget, content, _buffers) -> None:
        for callback in self._key_callbacks:
            callback(str(content.get("key", "")), bool(content.get("shift", False)))
