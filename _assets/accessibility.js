// Accessibility fixes for markup the page tools write (WCAG 2.1 AA; tests/test_browser.py audits every page
// with axe-core in light and dark mode). Loaded on every page (html_js_files in _config.yml).
(function () {
  var FIGURE_ALT = "Figure drawn by the explorer above for the setting its controls show; " +
                   "the text around it describes what to look at.";

  function fix(root) {
    // The bibliography: Sphinx writes role="list" with children of role "doc-biblioentry", which a list
    // may not contain; screen readers then announce an empty list.
    root.querySelectorAll('.citation-list[role="list"] > .citation').forEach(function (entry) {
      entry.setAttribute("role", "listitem");
    });
    // ipywidgets 8 sliders (noUiSlider): the handle is the focusable control; name it after the
    // widget's visible label (its description), which is not tied to the handle.
    root.querySelectorAll('.noUi-handle[role="slider"]:not([aria-label])').forEach(function (handle) {
      var widget = handle.closest(".widget-slider");
      var label = widget && widget.querySelector(".widget-label");
      var text = label ? label.textContent.trim() : "";
      handle.setAttribute("aria-label", text || "value");
    });
    // Figures that an explorer drew into its output area, stored with the page: the widget manager
    // renders them without alt text.
    root.querySelectorAll(".jp-RenderedImage > img:not([alt])").forEach(function (img) {
      img.setAttribute("alt", FIGURE_ALT);
    });
  }

  function start() {
    fix(document);
    // Widgets render after the page has loaded.
    new MutationObserver(function () { fix(document); })
      .observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
