// The Kafka CLI console panel: runs a line through POST /sandbox/<id>/console/ (text/plain
// answer), keeps a history (Up/Down), completes tools, options, topics and groups (Tab), and
// sends Ctrl+C / Ctrl+D to a running tool. Works with the keyboard alone; the output is plain
// text that can be selected and copied. Without JavaScript the form posts the same line.
(function () {
  "use strict";

  function csrfToken(form) {
    const field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function splitWords(line) {
    // Enough of the shell's word splitting for completion: quotes keep spaces.
    const words = [];
    let word = "";
    let quote = "";
    let started = false;
    for (const ch of line) {
      if (quote) {
        if (ch === quote) quote = ""; else word += ch;
      } else if (ch === "'" || ch === '"') {
        quote = ch; started = true;
      } else if (ch === " " || ch === "\t") {
        if (started || word) { words.push(word); word = ""; started = false; }
      } else {
        word += ch; started = true;
      }
    }
    if (started || word) words.push(word);
    if (!words.length || /\s$/.test(line)) words.push("");
    return words;
  }

  function candidates(line, data) {
    const words = splitWords(line);
    const current = words[words.length - 1];
    const starts = (items) => items.filter((item) => item.startsWith(current));
    if (words.length === 1) return starts(data.tools);
    let tool = words[0].split("/").pop();
    if (!tool.endsWith(".sh")) tool += ".sh";
    const previous = words[words.length - 2];
    if (["--topic", "--entity-name", "--include"].includes(previous)) return starts(data.topics);
    if (previous === "--group") return starts(data.groups);
    if (["--reassignment-json-file", "--topics-to-move-json-file"].includes(previous)) {
      return starts(data.files || []);
    }
    if (previous === "--bootstrap-server" || previous === "--bootstrap-controller") {
      return starts(data.servers || []);
    }
    const used = new Set(words.slice(1, -1));
    return (data.options[tool] || [])
      .filter((o) => o.name.startsWith(current) && (o.arg || !used.has(o.name)))
      .map((o) => o.name);
  }

  function commonPrefix(items) {
    if (!items.length) return "";
    let prefix = items[0];
    for (const item of items) {
      while (!item.startsWith(prefix)) prefix = prefix.slice(0, -1);
    }
    return prefix;
  }

  function setup(panel) {
    const form = panel.querySelector("form.console-form");
    const input = panel.querySelector("#console-line");
    const output = panel.querySelector("#console-output");
    const prompt = panel.querySelector("#console-prompt");
    const copy = panel.querySelector("#console-copy");
    const clear = panel.querySelector("#console-clear");
    const url = form.getAttribute("action");
    const storeKey = "dojo-console-history:" + (panel.dataset.cluster || "");
    let history = [];
    try { history = JSON.parse(localStorage.getItem(storeKey) || "[]"); } catch (e) { history = []; }
    let position = history.length;
    let draft = "";
    let completion = null;
    let queue = Promise.resolve(); // lines run one after another, in the order typed

    function write(text) {
      output.append(document.createTextNode(text));
      output.scrollTop = output.scrollHeight;
    }

    async function loadCompletion() {
      try {
        const response = await fetch(url + "?complete=1", { headers: { Accept: "application/json" } });
        if (response.ok) completion = await response.json();
      } catch (e) { /* completion is optional */ }
    }

    function run(line, echo) {
      queue = queue.then(() => send(line, echo));
      return queue;
    }

    async function send(line, echo) {
      // What the terminal shows of the key press: the line, "^C" after the typed text, or the
      // prompt alone for Ctrl+D.
      if (echo === true) write(prompt.textContent + line + "\n");
      else if (typeof echo === "string") write(prompt.textContent + echo);
      const body = new FormData();
      body.append("line", line);
      try {
        const response = await fetch(url, {
          method: "POST",
          body: body,
          headers: { "X-CSRFToken": csrfToken(form), Accept: "text/plain" },
        });
        write(await response.text());
        const next = response.headers.get("X-Console-Prompt");
        if (next !== null) {
          try { prompt.textContent = JSON.parse(next); } catch (e) { /* keep the prompt */ }
        }
        panel.dataset.running = response.headers.get("X-Console-Running") || "no";
        input.placeholder = panel.dataset.running === "yes"
          ? "a tool is running: typed lines go to it; Ctrl+C stops it, Ctrl+D ends its input"
          : "kafka-topics.sh --bootstrap-server localhost:9092 --list";
      } catch (e) {
        write("The console could not reach the cluster; try again.\n");
      } finally {
        completion = null;
      }
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const line = input.value;
      input.value = "";
      if (line.trim() && panel.dataset.running !== "yes") {
        if (history[history.length - 1] !== line) history.push(line);
        history = history.slice(-200);
        try { localStorage.setItem(storeKey, JSON.stringify(history)); } catch (e) { /* full */ }
      }
      position = history.length;
      if (line.trim() === "clear" && panel.dataset.running !== "yes") {
        output.textContent = ""; // the terminal's own command: nothing runs on the cluster
        return;
      }
      run(line, true);
    });

    input.addEventListener("keydown", async (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        form.requestSubmit();
      } else if (event.key === "ArrowUp" && !input.value.includes("\n")) {
        if (position > 0) {
          if (position === history.length) draft = input.value;
          position -= 1;
          input.value = history[position];
        }
        event.preventDefault();
      } else if (event.key === "ArrowDown" && !input.value.includes("\n")) {
        if (position < history.length) {
          position += 1;
          input.value = position === history.length ? draft : history[position];
        }
        event.preventDefault();
      } else if (event.key === "Tab" && !event.shiftKey) {
        event.preventDefault();
        if (!completion) await loadCompletion();
        if (!completion) return;
        const line = input.value;
        const found = candidates(line, completion);
        if (!found.length) return;
        const words = splitWords(line);
        const current = words[words.length - 1];
        const common = commonPrefix(found);
        let text = line.slice(0, line.length - current.length) + common;
        if (found.length === 1) text += " ";
        else if (common === current) write(prompt.textContent + line + "\n" + found.join("  ") + "\n");
        input.value = text;
      } else if (event.ctrlKey && (event.key === "c" || event.key === "C")) {
        if (input.selectionStart !== input.selectionEnd) return; // let the browser copy
        event.preventDefault();
        const typed = input.value;
        input.value = "";
        run("^C", typed + "^C\n");
      } else if (event.ctrlKey && (event.key === "d" || event.key === "D")) {
        event.preventDefault();
        if (!input.value) run("^D", "");
      } else if (event.ctrlKey && (event.key === "l" || event.key === "L")) {
        event.preventDefault();
        output.textContent = "";
      }
    });

    if (copy) {
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(output.textContent);
          copy.textContent = "Copied";
        } catch (e) {
          const range = document.createRange();
          range.selectNodeContents(output);
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          copy.textContent = "Selected: press Ctrl+C";
        }
        setTimeout(() => { copy.textContent = "Copy output"; }, 2000);
      });
    }
    if (clear) clear.addEventListener("click", () => { output.textContent = ""; input.focus(); });
    // A tailing console consumer's records arrive over the stage's socket as they are read.
    document.addEventListener("htmx:wsBeforeMessage", (event) => {
      const text = event.detail && event.detail.message;
      if (typeof text !== "string" || text.charAt(0) !== "{") return;
      let frame;
      try { frame = JSON.parse(text); } catch (e) { return; }
      if (frame.type === "console.output" && typeof frame.text === "string") write(frame.text);
    });
    panel.addEventListener("click", (event) => {
      if (event.target === output && !window.getSelection().toString()) input.focus();
    });
  }

  function init() {
    document.querySelectorAll("[data-console]").forEach(setup);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
  window.dojoConsole = { candidates: candidates, splitWords: splitWords };
})();
