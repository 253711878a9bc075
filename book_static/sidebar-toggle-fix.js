// Make every "Toggle primary sidebar" button work.
//
// pydata-sphinx-theme 0.17 and sphinx-book-theme 1.3 attach their sidebar handlers with
// document.querySelector(".primary-toggle"), i.e. to the *first* such button only. A Jupyter
// Book page has two (one in the header bar, one in the article header); the first is hidden at
// most widths, so the visible one did nothing and a phone could not open the chapter list.
// Here every other .primary-toggle forwards its click to the first, which runs the themes' own
// code: on wide screens the sidebar collapses or comes back, on narrow ones it opens as a dialog.
document.addEventListener("DOMContentLoaded", () => {
  const [first, ...others] = document.querySelectorAll(".primary-toggle");
  if (!first) return;
  others.forEach((button) => {
    button.addEventListener("click", (event) => {
      event.preventDefault();
      event.stopPropagation();
      first.click();
    });
  });
});
