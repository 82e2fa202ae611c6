// Two adjustments for the vendored ipywidgets HTML manager (written for this book):
// 1. its fonts and chunks are requested relative to require.js's base URL, which must point at
//    _static/ipywidgets/ wherever the page sits in the site;
// 2. html-manager 1.x calls the MathJax 2 API (MathJax.Hub.Queue) when window.MathJax exists;
//    Sphinx loads MathJax 3, so offer that call on top of MathJax 3's typesetPromise.
(function () {
  var root = document.documentElement.getAttribute("data-content_root") || "./";
  if (window.requirejs) {
    window.requirejs.config({ baseUrl: root + "_static/ipywidgets/" });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (mj && !mj.Hub) {
      mj.Hub = {
        Queue: function (job) {
          var node = job && job[2];
          return mj.typesetPromise ? mj.typesetPromise(node ? [node] : undefined) : null;
        },
      };
    }
  });
})();
