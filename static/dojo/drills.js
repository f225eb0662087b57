// Drills: the mock interview's clock and the frame player of a predict drill's run.
(function () {
  "use strict";

  function startClock(clock) {
    var deadline = Date.parse(clock.dataset.deadline);
    function tick() {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      clock.textContent = m + ":" + (s < 10 ? "0" : "") + s + " left";
      clock.classList.toggle("low", left <= 30);
      if (left <= 0) {
        clock.textContent = "Time is up";
        // The server ends the round at the deadline; reloading shows the debrief.
        window.location.reload();
        return;
      }
      window.setTimeout(tick, 1000);
    }
    tick();
  }

  function startPlayer(run) {
    var frames = Array.prototype.slice.call(run.querySelectorAll(".frame"));
    var scrub = run.querySelector("[data-act=scrub]");
    var out = run.querySelector(".frame-time");
    var playButton = run.querySelector("[data-act=play]");
    var deciding = parseInt(run.dataset.deciding, 10) || 0;
    var current = deciding, timer = null;
    function show(i) {
      current = Math.max(0, Math.min(frames.length - 1, i));
      frames.forEach(function (f, k) { f.classList.toggle("shown", k === current); });
      scrub.value = String(current);
      var f = frames[current];
      out.textContent = (parseInt(f.dataset.time, 10) / 1000).toFixed(2) + " s" +
        (f.classList.contains("deciding") ? " (deciding moment)" : "");
    }
    function stop() { if (timer) { window.clearInterval(timer); timer = null; } playButton.textContent = "Play"; }
    function play() {
      if (timer) { stop(); return; }
      if (!run.dataset.played || current >= frames.length - 1) { show(0); }
      playButton.textContent = "Pause";
      run.dataset.played = "1";
      timer = window.setInterval(function () {
        if (current >= frames.length - 1) { stop(); return; }
        show(current + 1);
        if (current === deciding) { stop(); }  // pause on the moment that decides the answer
      }, 700);
    }
    run.addEventListener("click", function (event) {
      var act = event.target.dataset && event.target.dataset.act;
      if (act === "play") { play(); }
      if (act === "prev") { stop(); show(current - 1); }
      if (act === "next") { stop(); show(current + 1); }
      if (act === "deciding") { stop(); show(deciding); }
    });
    scrub.addEventListener("input", function () { stop(); show(parseInt(scrub.value, 10)); });
    show(current);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var clock = document.getElementById("mock-clock");
    if (clock) { startClock(clock); }
    Array.prototype.forEach.call(document.querySelectorAll(".run"), startPlayer);
  });
})();
