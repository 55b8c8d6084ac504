// Loaded before the ipywidgets HTML manager (see nb_ipywidgets_js in _config.yml).
//
// 1. The manager (vendor/html-manager/embed-amd.js) looks for its icon fonts in
//    "<page folder>/@jupyter-widgets/html-manager/dist/", a path RequireJS derives from the
//    name of the AMD module that holds the CSS. Map that name to the folder the files are in;
//    a global `require` object set before require.js loads is its configuration.
(function () {
  var assets = new URL("vendor/html-manager/", document.currentScript.src).href;
  window.__jupyter_widgets_assets_path__ = assets;
  if (typeof window.require === "undefined") {
    window.require = { paths: { "@jupyter-widgets/html-manager/dist": assets.replace(/\/$/, "") } };
  }
})();

// 2. ipywidgets typesets widget labels with MathJax 2's MathJax.Hub.Queue, but the book
//    loads MathJax 3, which has no Hub: every labelled widget would throw a TypeError.
//    Translate the one call it makes ("Typeset" an element) to MathJax 3.
(function () {
  function addHub() {
    var mj = window.MathJax;
    if (!mj || mj.Hub || typeof mj.typesetPromise !== "function") return;
    mj.Hub = {
      Queue: function () {
        Array.prototype.forEach.call(arguments, function (job) {
          if (Array.isArray(job) && job[0] === "Typeset" && job[2]) {
            var ready = (mj.startup && mj.startup.promise) || Promise.resolve();
            ready.then(function () { return mj.typesetPromise([job[2]]); })
                 .catch(function (err) { console.warn("MathJax could not typeset a widget label:", err); });
          }
        });
      },
    };
  }
  addHub();  // MathJax already loaded
  document.addEventListener("DOMContentLoaded", addHub);  // MathJax is loaded with "defer"
})();
