// The lesson player: steps, predict-then-reveal, "show me" through the stage's socket, the live
// goal the engine host sends as the #lesson-goal fragment, back / next / recap, calculators.
(function () {
  "use strict";

  var page, stepCount, current;

  function csrf() {
    var input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  function post(url, data) {
    var body = new URLSearchParams(data);
    return fetch(url, {
      method: "POST",
      headers: { "X-CSRFToken": csrf(), "Content-Type": "application/x-www-form-urlencoded" },
      body: body,
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().catch(function () { return { ok: false, message: "The server did not answer." }; });
    });
  }

  function flash(text, level) {
    var el = document.getElementById("flash");
    if (!el) return;
    el.textContent = text;
    el.className = "flash " + (level || "info");
    el.hidden = false;
  }

  function section(n) { return page.querySelector('.player-step[data-step="' + n + '"]'); }

  function sameValue(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

  function goal() { return document.getElementById("lesson-goal"); }

  function goalDone() {
    var g = goal();
    return !!g && g.dataset.step === String(current) && g.dataset.done === "1";
  }

  function predicted(sec) {
    var value = sec ? sec.dataset.predicted : "";
    return value === "" || value === undefined ? null : parseInt(value, 10);
  }

  function updateGates() {
    var sec = section(current);
    var next = page.querySelector('[data-role="next"]');
    var back = page.querySelector('[data-role="back"]');
    back.disabled = current <= 0;
    next.hidden = current >= stepCount;
    next.disabled = !goalDone();
    var slot = page.querySelector('[data-role="goal-slot"]');
    slot.hidden = current >= stepCount;
    if (!sec || current >= stepCount) return;
    var actions = sec.querySelector('[data-role="actions"]');
    var locked = sec.dataset.hasPredict === "1" && predicted(sec) === null;
    if (actions) {
      actions.classList.toggle("is-locked", locked);
      actions.querySelectorAll("button, input, select").forEach(function (el) { el.disabled = locked; });
    }
    var lock = sec.querySelector('[data-role="predict-lock"]');
    if (lock) lock.hidden = !locked;
    sec.querySelectorAll('.choice[data-kind="predict"]').forEach(function (button) {
      button.disabled = !locked;
    });
    reveal(sec);
  }

  function reveal(sec) {
    var box = sec.querySelector('[data-role="reveal"]');
    if (!box) return;
    var mine = predicted(sec);
    var g = goal();
    if (mine === null || !g || g.dataset.step !== sec.dataset.step || g.dataset.keyRead !== "1") {
      box.hidden = true;
      return;
    }
    var values = JSON.parse(sec.dataset.choiceValues || "[]");
    var key = JSON.parse(g.dataset.key || "null");
    var engineIndex = -1;
    values.forEach(function (value, i) { if (sameValue(value, key)) engineIndex = i; });
    var labels = Array.prototype.map.call(sec.querySelectorAll('.choice[data-kind="predict"]'),
      function (b) { return b.textContent.trim(); });
    var verdict = box.querySelector('[data-role="reveal-verdict"]');
    var right = engineIndex === mine;
    verdict.textContent = (right ? "✓ Right. " : "✗ Not this time. ") + "You predicted \u201c" +
      labels[mine] + "\u201d; the cluster shows \u201c" +
      (engineIndex >= 0 ? labels[engineIndex] : JSON.stringify(key)) + "\u201d.";
    box.className = "reveal " + (right ? "right" : "wrong");
    box.hidden = false;
  }

  function show(n, remote) {
    current = Math.max(0, Math.min(n, stepCount));
    page.dataset.current = String(current);
    page.querySelectorAll(".player-step").forEach(function (sec) {
      sec.hidden = sec.dataset.step !== String(current);
    });
    // The one live goal sits under the current step's instruction.
    var slot = page.querySelector('[data-role="goal-slot"]');
    var text = section(current) && section(current).querySelector(".step-text");
    if (slot && text) text.insertAdjacentElement("afterend", slot);
    page.querySelectorAll(".step-dot").forEach(function (dot) {
      dot.setAttribute("aria-current", dot.dataset.goto === String(current) ? "step" : "false");
    });
    updateGates();
    if (remote !== false) arm();
    var player = document.getElementById("player");
    if (remote !== false && player && player.scrollIntoView && window.innerWidth < 1100) {
      player.scrollIntoView({ block: "start" });
    }
  }

  // Tell the server (and through it the cluster's host) which step's goal to watch.
  function arm() {
    return post(page.dataset.stepUrl, { step: current }).then(function (answer) {
      if (!answer.ok) flash(answer.message || "The step could not start.", "error");
      if (answer.completed) page.classList.add("is-complete");
      updateGates();
    });
  }

  function answer(button) {
    var sec = button.closest(".player-step");
    var kind = button.dataset.kind;
    post(page.dataset.answerUrl, { step: sec.dataset.step, kind: kind, choice: button.dataset.choice })
      .then(function (reply) {
        if (!reply.ok) { flash(reply.message, "error"); return; }
        var chosen = reply.choice;
        sec.querySelectorAll('.choice[data-kind="' + kind + '"]').forEach(function (b) {
          b.setAttribute("aria-pressed", String(parseInt(b.dataset.choice, 10) === chosen));
        });
        if (kind === "predict") {
          sec.dataset.predicted = String(chosen);
        } else {
          var quiz = sec.querySelector('[data-role="quiz"]');
          var box = sec.querySelector('[data-role="quiz-reveal"]');
          var correct = parseInt(quiz.dataset.answer, 10);
          quiz.dataset.quizzed = String(chosen);
          box.querySelector('[data-role="quiz-verdict"]').textContent =
            chosen === correct ? "✓ Right." : "✗ Not quite: the answer is \u201c" +
              sec.querySelectorAll('.choice[data-kind="quiz"]')[correct].textContent.trim() + "\u201d.";
          box.className = "reveal " + (chosen === correct ? "right" : "wrong");
          box.hidden = false;
        }
        updateGates();
      });
  }

  function clusterNow() {
    var time = document.querySelector("#clock .time");
    return time && time.dataset.nowMs ? parseInt(time.dataset.nowMs, 10) : null;
  }

  function clockPaused() {
    var clock = document.getElementById("clock");
    return !!clock && clock.classList.contains("is-paused");
  }

  // "Show me": the step's own commands, sent through the same socket form path as the forms.
  function sendPayload(payload) {
    var form = document.getElementById("player-send");
    while (form.firstChild) form.removeChild(form.firstChild);
    Object.keys(payload).forEach(function (name) {
      var value = payload[name];
      if (value === null || value === undefined) return;
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = Array.isArray(value) ? value.join(", ") : String(value);
      form.appendChild(input);
    });
    form.requestSubmit();
  }

  function showMe(button) {
    var sec = button.closest(".player-step");
    var plan = JSON.parse(sec.dataset.showMe || "[]");
    var g = goal();
    var since = g && g.dataset.step === sec.dataset.step ? parseInt(g.dataset.sinceMs || "0", 10) : 0;
    button.disabled = true;
    var index = 0;
    function tick() {
      if (index >= plan.length) { button.disabled = false; return; }
      var due = since + plan[index].at_ms;
      var now = clusterNow();
      if (plan[index].at_ms > 0 && now !== null && now < due) {
        if (clockPaused()) flash("Resume the clock: the next command waits for cluster time.", "info");
        setTimeout(tick, 200);
        return;
      }
      sendPayload(plan[index].payload);
      index += 1;
      setTimeout(tick, 120);
    }
    tick();
  }

  function calculate(form) {
    var v = function (name) { var x = parseFloat(form.elements[name].value); return isNaN(x) ? 0 : x; };
    var out = form.querySelector('[data-role="calc-result"]');
    var kind = form.dataset.calculator;
    if (kind === "partitions") {
      var base = Math.max(v("t") / Math.max(v("p"), 1), v("t") / Math.max(v("c"), 1));
      var total = Math.ceil(base * (1 + v("h") / 100));
      out.textContent = Math.ceil(base) + " partitions for the load, " + total +
        " with headroom: also the most consumers one group can use.";
    } else if (kind === "storage") {
      var bytes = v("n") * v("s") * v("d") * v("rf");
      var tb = bytes / 1e12;
      out.textContent = tb.toFixed(2) + " TB across the cluster, " +
        (tb / Math.max(v("b"), 1)).toFixed(2) + " TB per broker (before compression).";
    } else if (kind === "brokers") {
      var byStorage = Math.ceil(v("st") / Math.max(v("disk"), 0.001));
      var byThroughput = Math.ceil(v("tp") / Math.max(v("pb"), 0.001));
      var need = Math.max(byStorage, byThroughput);
      out.textContent = byStorage + " for storage, " + byThroughput + " for throughput: " +
        (byStorage >= byThroughput ? "storage" : "throughput") + "-bound, so " +
        (need + v("spare")) + " brokers with " + v("spare") + " spare.";
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    page = document.querySelector(".lesson-page");
    if (!page) return;
    stepCount = parseInt(page.dataset.stepCount, 10);
    current = parseInt(page.dataset.current, 10) || 0;
    show(current, false);
    page.querySelectorAll(".calculator").forEach(function (form) {
      form.addEventListener("input", function () { calculate(form); });
      form.addEventListener("submit", function (evt) { evt.preventDefault(); });
      calculate(form);
    });
    page.querySelectorAll(".quiz").forEach(function (quiz) {
      if (quiz.dataset.quizzed !== "") {
        var sec = quiz.closest(".player-step");
        var button = sec.querySelector('.choice[data-kind="quiz"][data-choice="' + quiz.dataset.quizzed + '"]');
        if (button) button.setAttribute("aria-pressed", "true");
      }
    });
  });

  document.addEventListener("click", function (evt) {
    if (!page) return;
    var target = evt.target.closest ? evt.target.closest("button") : null;
    if (!target || !page.contains(target)) return;
    if (target.classList.contains("choice")) { answer(target); return; }
    if (target.dataset.role === "show-me") { showMe(target); return; }
    if (target.dataset.role === "next") { show(current + 1); return; }
    if (target.dataset.role === "back") { show(current - 1); return; }
    if (target.classList.contains("step-dot")) { show(parseInt(target.dataset.goto, 10)); }
  });

  // What the step is about (its partitions, brokers, groups) is highlighted on the stage.
  function highlight() {
    var stage = document.getElementById("stage");
    var g = goal();
    if (!stage || !g) return;
    stage.querySelectorAll(".lesson-highlight").forEach(function (el) { el.classList.remove("lesson-highlight"); });
    if (g.dataset.step !== String(current)) return;
    (g.dataset.highlight || "").split(" ").forEach(function (mark) {
      var cut = mark.indexOf(":");
      if (cut < 0) return;
      var kind = mark.slice(0, cut), value = mark.slice(cut + 1).replace(/"/g, "");
      var selector = {
        partition: '.partition-row[data-partition="' + value + '"]',
        broker: '.broker[data-broker="' + value + '"]',
        group: '[data-group="' + value + '"]',
        controller: '.controller[data-controller="' + value + '"]'
      }[kind];
      if (!selector) return;
      stage.querySelectorAll(selector).forEach(function (el) {
        el.classList.add("lesson-highlight");
        el.classList.toggle("lesson-borne-out", g.dataset.done === "1");
      });
    });
  }

  // Every (re)connection: the host may have restarted, so arm the current step's goal again.
  document.addEventListener("htmx:wsOpen", function () { if (page) arm(); });
  document.addEventListener("htmx:wsAfterMessage", function () {
    if (!page) return;
    updateGates();
    highlight();
  });
})();
