// Glue between the sandbox page and its WebSocket (htmx ws extension):
// numbers every command (client id + seq, so a resent command applies once), shows ack and
// error frames next to the form that sent them, and asks for the full state after a gap.
(function () {
  "use strict";

  var clientId = "web-" + Math.random().toString(36).slice(2, 12) + Date.now().toString(36);
  var nextSeq = 1;
  var formsBySeq = {};
  var lastVersion = null;

  function flash(text, level) {
    var el = document.getElementById("flash");
    if (!el) return;
    el.textContent = text;
    el.className = "flash " + (level || "info");
    el.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(function () { el.hidden = true; }, 4000);
  }

  function showFormError(form, text) {
    var slot = form && form.querySelector('[data-role="form-error"]');
    if (slot) {
      slot.textContent = text;
      slot.hidden = !text;
      return true;
    }
    return false;
  }

  function setConnection(state, text) {
    var el = document.getElementById("connection");
    if (!el) return;
    el.className = "connection " + state;
    el.textContent = text;
  }

  document.addEventListener("htmx:wsConfigSend", function (evt) {
    var params = Object.assign({}, evt.detail.parameters);
    delete params.csrfmiddlewaretoken;
    var seq = nextSeq++;
    params.seq = seq;
    params.client = clientId;
    formsBySeq[seq] = evt.detail.elt || evt.target;
    evt.detail.messageBody = JSON.stringify(params);
  });

  document.addEventListener("htmx:wsBeforeMessage", function (evt) {
    var text = evt.detail.message;
    if (typeof text !== "string" || text.charAt(0) !== "{") return;
    evt.preventDefault(); // a JSON frame, not HTML to swap
    var frame;
    try { frame = JSON.parse(text); } catch (e) { return; }
    var form = frame.seq != null ? formsBySeq[frame.seq] : null;
    delete formsBySeq[frame.seq];
    if (frame.type === "error") {
      if (!showFormError(form, frame.message)) flash(frame.message, "error");
    } else if (frame.type === "ack") {
      showFormError(form, "");
      if (frame.message) flash(frame.message, "info");
    }
  });

  document.addEventListener("htmx:wsAfterMessage", function (evt) {
    var marker = document.getElementById("state-version");
    if (!marker || !marker.dataset.version) return;
    var version = parseInt(marker.dataset.version, 10);
    var base = marker.dataset.base;
    if (base !== undefined && lastVersion !== null && parseInt(base, 10) !== lastVersion) {
      // We missed a version: the diff we just applied is not enough, ask for everything.
      evt.detail.socketWrapper.send(JSON.stringify({ type: "resync", have: lastVersion }));
    }
    lastVersion = version;
  });

  document.addEventListener("htmx:wsOpen", function () {
    lastVersion = null;
    setConnection("live", "live");
  });
  document.addEventListener("htmx:wsClose", function () {
    setConnection("offline", "reconnecting…");
  });
})();
