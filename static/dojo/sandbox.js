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
    el.className = "flash toast " + (level || "info");
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
      // A later success clears every error still shown under a form: it is history now.
      document.querySelectorAll('[data-role="form-error"]').forEach(function (slot) {
        slot.textContent = "";
        slot.hidden = true;
      });
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

  // Actions drawn on the stage (SVG groups with role="button") send through one hidden form,
  // so they take the same numbered, validated path as every other command.
  function stageAction(target) {
    var form = document.getElementById("stage-action");
    if (!form) return;
    while (form.firstChild) form.removeChild(form.firstChild);
    [["type", target.dataset.command], [target.dataset.field, target.dataset.value]].forEach(
      function (pair) {
        if (!pair[0]) return;
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = pair[0];
        input.value = pair[1];
        form.appendChild(input);
      }
    );
    form.requestSubmit();
  }

  // -- the dock: tabs (a drawer on phones), opened from the element a control acts on ------
  function narrow() { return window.matchMedia("(max-width: 900px)").matches; }

  function openTab(name, toggle) {
    var dock = document.getElementById("dock");
    if (!dock) return;
    var tab = dock.querySelector('.dock-tab[data-tab="' + name + '"]');
    if (!tab) return;
    var already = tab.getAttribute("aria-selected") === "true";
    if (toggle && already && narrow() && dock.classList.contains("is-open")) {
      dock.classList.remove("is-open");
      return;
    }
    dock.querySelectorAll(".dock-tab").forEach(function (t) {
      t.setAttribute("aria-selected", t === tab ? "true" : "false");
      t.tabIndex = t === tab ? 0 : -1;
    });
    dock.querySelectorAll(".dock-pane").forEach(function (pane) {
      pane.hidden = pane.dataset.pane !== name;
    });
    dock.classList.add("is-open");
  }

  function initDock() {
    var dock = document.getElementById("dock");
    if (!dock) return;
    var sandbox = document.querySelector(".sandbox");
    var first = (sandbox && sandbox.dataset.firstTab) || "produce";
    openTab(first, false);
    if (narrow()) dock.classList.remove("is-open"); // phones: the stage first, drawer closed
  }

  // What a click on the stage opens: the producer -> Produce, a group -> Clients, a broker or a
  // controller -> Brokers with that node picked in the forms.
  function openFromStage(el) {
    var producer = el.closest("[data-producer]");
    if (producer) { openTab("produce"); focusFirst("pane-produce"); return true; }
    var group = el.closest("[data-group]");
    if (group && el.closest(".stage-svg")) { openTab("clients"); pick("group", group.dataset.group); return true; }
    var broker = el.closest(".broker[data-broker]");
    if (broker) { openTab("brokers"); pick("broker_id", broker.dataset.broker); return true; }
    var controller = el.closest(".controller[data-controller]");
    if (controller) { openTab("brokers"); pick("controller_id", controller.dataset.controller); return true; }
    return false;
  }

  function pick(field, value) {
    document.querySelectorAll('.dock [name="' + field + '"]').forEach(function (input) {
      if (input.tagName === "SELECT") {
        for (var i = 0; i < input.options.length; i++) {
          if (input.options[i].value === String(value)) input.selectedIndex = i;
        }
      } else if (input.type !== "hidden") {
        input.value = value;
      }
    });
  }

  function focusFirst(paneId) {
    var pane = document.getElementById(paneId);
    var input = pane && pane.querySelector("input:not([type=hidden]), select");
    if (input && !narrow()) input.focus({ preventScroll: true });
  }

  function syncClockButtons() {
    var clock = document.getElementById("clock");
    var pause = document.getElementById("pause-button");
    var resume = document.getElementById("resume-button");
    if (!clock || !pause || !resume) return;
    var paused = clock.classList.contains("is-paused");
    pause.disabled = paused;
    resume.disabled = !paused;
  }
  document.addEventListener("htmx:wsAfterMessage", syncClockButtons);

  document.addEventListener("change", function (evt) {
    if (evt.target && evt.target.id === "produce-tombstone") {
      var value = document.querySelector('#produce-form [name="value"]');
      if (!value) return;
      if (evt.target.checked) {
        value.dataset.typed = value.value;
        value.value = "null";
        value.readOnly = true;
      } else {
        value.value = value.dataset.typed || "";
        value.readOnly = false;
      }
    }
  });

  function copyField(id, statusId) {
    var field = document.getElementById(id);
    var status = statusId && document.getElementById(statusId);
    if (!field) return;
    var text = field.value !== undefined ? field.value : field.innerText;
    function said(ok) {
      var words = ok ? "Copied." : "Copy failed: select the text and copy it by hand.";
      if (status) status.textContent = words; else flash(words, ok ? "info" : "error");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { said(true); }, function () { said(false); });
    } else {
      field.select && field.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      said(ok);
    }
  }

  document.addEventListener("click", function (evt) {
    var target = evt.target.closest && evt.target.closest(".stage-action");
    if (target) {
      evt.preventDefault();
      stageAction(target);
      return;
    }
    var tab = evt.target.closest && evt.target.closest(".dock-tab");
    if (tab) { openTab(tab.dataset.tab, true); return; }
    var filter = evt.target.closest && evt.target.closest("[data-filter-target]");
    if (filter) {
      var list = document.getElementById(filter.dataset.filterTarget);
      var holder = list && list.closest("[data-filter]");
      if (holder) holder.dataset.filter = filter.dataset.filter;
      filter.parentNode.querySelectorAll("[data-filter-target]").forEach(function (b) {
        b.setAttribute("aria-pressed", b === filter ? "true" : "false");
      });
      return;
    }
    var copy = evt.target.closest && evt.target.closest("[data-copy]");
    if (copy) { copyField(copy.dataset.copy, "copy-status"); return; }
    if (evt.target.id === "values-toggle") {
      var panel = document.getElementById("records-panel");
      if (panel) {
        panel.hidden = !panel.hidden;
        evt.target.setAttribute("aria-pressed", panel.hidden ? "false" : "true");
        evt.target.textContent = panel.hidden ? "Show keys and values" : "Hide keys and values";
      }
      return;
    }
    if (evt.target.closest && evt.target.closest(".stage-svg") && openFromStage(evt.target)) return;
    // A form with several buttons: the clicked one picks the command type (and app action).
    var button = evt.target.closest && evt.target.closest("button[data-set-type]");
    if (button && button.form) {
      button.form.querySelector('input[name="type"]').value = button.dataset.setType;
      var action = button.form.querySelector('input[name="action"]');
      if (action && button.dataset.setAction) action.value = button.dataset.setAction;
    }
  });

  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Enter" && evt.key !== " ") return;
    var target = evt.target.closest && evt.target.closest(".stage-action");
    if (!target) return;
    evt.preventDefault();
    stageAction(target);
  });

  // Keep keyboard focus on a stage button across re-renders (the SVG is replaced each version).
  var focusedAction = null;
  document.addEventListener("focusin", function (evt) {
    var target = evt.target.closest && evt.target.closest(".stage-action");
    focusedAction = target ? target.getAttribute("aria-label") : null;
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    if (!focusedAction || document.activeElement !== document.body) return;
    var again = document.querySelector('.stage-action[aria-label="' + focusedAction + '"]');
    if (again) again.focus();
  });

  function applyTheme(theme) {
    var root = document.documentElement;
    var toggle = document.getElementById("theme-toggle");
    if (theme) root.dataset.theme = theme; else delete root.dataset.theme;
    var dark = theme ? theme === "dark"
      : window.matchMedia("(prefers-color-scheme: dark)").matches;
    if (toggle) {
      toggle.textContent = dark ? "Light theme" : "Dark theme";
      toggle.setAttribute("aria-pressed", dark ? "true" : "false");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    initDock();
    syncClockButtons();
    // The past: the timeline list opens scrolled to the moment shown.
    var now = document.querySelector(".points li.is-now") || document.querySelector(".points li.is-future");
    var list = now && now.closest(".points");
    if (list) list.scrollTop = Math.max(0, now.offsetTop - list.clientHeight / 3);
    var stored = null;
    try { stored = localStorage.getItem("dojo-theme"); } catch (e) { stored = null; }
    applyTheme(stored);
    var toggle = document.getElementById("theme-toggle");
    if (toggle) toggle.addEventListener("click", function () {
      var dark = document.documentElement.dataset.theme
        ? document.documentElement.dataset.theme === "dark"
        : window.matchMedia("(prefers-color-scheme: dark)").matches;
      var next = dark ? "light" : "dark";
      try { localStorage.setItem("dojo-theme", next); } catch (e) { /* private mode */ }
      applyTheme(next);
    });
    var copy = document.getElementById("copy-mirror");
    if (copy) copy.addEventListener("click", function () {
      var mirror = document.getElementById("mirror");
      var text = mirror ? mirror.innerText : "";
      if (navigator.clipboard) {
        navigator.clipboard.writeText(text).then(function () { flash("Copied the text mirror.", "info"); },
          function () { flash("Copy failed: select the text and copy it by hand.", "error"); });
      }
    });
  });

  document.addEventListener("htmx:wsOpen", function () {
    lastVersion = null;
    setConnection("live", "live");
  });
  document.addEventListener("htmx:wsClose", function () {
    setConnection("offline", "reconnecting…");
  });
})();
