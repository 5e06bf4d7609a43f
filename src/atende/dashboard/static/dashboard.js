// atende dashboard: the few lines of behaviour of our own (htmx does the rest).
// Every HTMX request carries the page's CSRF token, as every form does in a hidden field.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) {
    event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
  }
});

// After a part of the page is replaced, keyboard focus stays where the person was: on the
// replaced row's first control, or on the notice when one says what happened.
document.addEventListener("htmx:afterSwap", function (event) {
  var target = event.detail.target;
  if (target && target.id === "notice") {
    target.setAttribute("tabindex", "-1");
    target.focus();
    return;
  }
  var control = target && target.querySelector && target.querySelector("select, button, input, a[href]");
  if (control) {
    control.focus();
  }
});
