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
// (An outerHTML swap replaces the target: the new element is found by its id.)
document.addEventListener("htmx:afterSwap", function (event) {
  var target = event.detail.target;
  var replaced = target && target.id ? document.getElementById(target.id) : target;
  if (!replaced) {
    return;
  }
  if (replaced.id === "notice") {
    replaced.setAttribute("tabindex", "-1");
    replaced.focus();
    return;
  }
  var control = replaced.querySelector("select, button, input:not([type=hidden]), a[href]");
  if (control) {
    control.focus();
  }
});
