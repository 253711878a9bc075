// ipywidgets' HTML manager typesets widget labels with MathJax 2's API,
// MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]); this book uses MathJax 3, which has no
// Hub. This script is loaded with `defer` after MathJax 3 (see scripts/book_ext.py), so
// MathJax 3 exists when it runs, and gives the widgets the one call they use.
(function () {
  var mj = window.MathJax;
  if (!mj || mj.Hub) { return; }
  mj.Hub = {
    Queue: function (job) {
      var element = job && job[2];
      if (!element || !mj.startup) { return; }
      mj.startup.promise.then(function () { return mj.typesetPromise([element]); });
    }
  };
})();
