// The console's few behaviours. Every page works without them except where noted.
"use strict";

// Ask before a form does something hard to undo (rotate the URL, replay many events).
function confirmForms() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

// Copy a read-only value (the callback URL) and say so to screen readers too.
function copyButtons() {
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      const status = button.parentElement.querySelector(".copy-status");
      try {
        await navigator.clipboard.writeText(input.value);
      } catch {
        input.select();
        document.execCommand("copy");
      }
      if (status) status.textContent = "Copied";
    });
  });
}

// Show only the events of the chosen connector function; hidden fieldsets are disabled so
// that their boxes are not sent. Without script the first choice's events are shown.
function catalogChoice() {
  const choice = document.querySelector("[data-catalog-choice]");
  if (!choice) return;
  const update = () => {
    document.querySelectorAll("fieldset[data-catalog]").forEach((set) => {
      const chosen = set.dataset.catalog === choice.value;
      set.hidden = !chosen;
      set.disabled = !chosen;
    });
    const help = document.getElementById("h-secret");
    const option = choice.selectedOptions[0];
    if (help && option && option.dataset.secretHelp) help.textContent = option.dataset.secretHelp;
  };
  choice.addEventListener("change", update);
  update();
}

// The tokens of one line of JSON or YAML, each with its class: keys, strings, numbers,
// literals, comments and punctuation. Whatever no rule matches stays plain text.
const TOKENS = new RegExp(
  [
    /(?<key>"(?:[^"\\]|\\.)*"(?=\s*:)|^\s*(?:- )?[\w.$-]+(?=:(?:\s|$)))/,
    /(?<string>"(?:[^"\\]|\\.)*"?|'[^']*'?)/,
    /(?<number>-?\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b)/,
    /(?<literal>\b(?:true|false|null|yes|no|~)\b)/,
    /(?<comment>(?:^|\s)#.*$)/,
    /(?<punct>[{}[\],:])/,
  ]
    .map((rule) => rule.source)
    .join("|"),
  "g",
);

function highlightLine(text) {
  const parts = [];
  let at = 0;
  for (const match of text.matchAll(TOKENS)) {
    if (match.index > at) parts.push(document.createTextNode(text.slice(at, match.index)));
    const kind = Object.keys(match.groups).find((name) => match.groups[name] !== undefined);
    const token = document.createElement("span");
    token.className = `tok-${kind}`;
    token.textContent = match[0];
    parts.push(token);
    at = match.index + match[0].length;
  }
  if (at < text.length || !parts.length) parts.push(document.createTextNode(text.slice(at) || " "));
  return parts;
}

// Colour the mapping text and mark the lines with problems on a backdrop behind it, and jump
// to a problem's line.
function mappingEditor() {
  const editor = document.querySelector("[data-editor]");
  if (!editor) return;
  const textarea = editor.querySelector("textarea");
  const backdrop = editor.querySelector(".editor-backdrop");
  const marked = new Set(JSON.parse(editor.dataset.errorLines || "[]"));
  const draw = () => {
    backdrop.replaceChildren();
    textarea.value.split("\n").forEach((text, index) => {
      const line = document.createElement(marked.has(index + 1) ? "mark" : "span");
      line.append(...highlightLine(text));
      backdrop.append(line, "\n");
    });
    sync();
  };
  editor.classList.add("highlighted");
  const sync = () => {
    backdrop.scrollTop = textarea.scrollTop;
    backdrop.scrollLeft = textarea.scrollLeft;
  };
  textarea.addEventListener("input", draw);
  textarea.addEventListener("scroll", sync);
  new ResizeObserver(draw).observe(textarea);
  document.querySelectorAll("[data-goto-line]").forEach((button) => {
    button.addEventListener("click", () => goToLine(textarea, Number(button.dataset.gotoLine)));
  });
  draw();
}

function goToLine(textarea, number) {
  const lines = textarea.value.split("\n");
  const start = lines.slice(0, number - 1).reduce((sum, line) => sum + line.length + 1, 0);
  textarea.focus();
  textarea.setSelectionRange(start, start + (lines[number - 1] || "").length);
  const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 20;
  textarea.scrollTop = Math.max(0, (number - 3) * lineHeight);
}

// Follow a bulk replay: fetch the counts again every second until nothing is waiting.
function replayProgress() {
  const region = document.querySelector("[data-poll]");
  if (!region) return;
  const poll = async () => {
    const current = region.querySelector("[data-progress]");
    if (current && current.dataset.done === "true") return;
    try {
      const response = await fetch(region.dataset.poll, { credentials: "same-origin" });
      if (response.ok) region.innerHTML = await response.text();
    } finally {
      window.setTimeout(poll, 1000);
    }
  };
  window.setTimeout(poll, 1000);
}

// Keep the first page of the event log current: fetch it again every few seconds while the
// admin leaves "show new events" ticked (remembered across pages). Without script, reload.
const FOLLOW_EVERY_MS = 5000;

function followEvents() {
  const region = document.querySelector("[data-follow]");
  const toggle = document.querySelector("[data-follow-toggle]");
  if (!region || !toggle) return;
  toggle.checked = window.localStorage.getItem("follow-events") !== "off";
  toggle.addEventListener("change", () => {
    window.localStorage.setItem("follow-events", toggle.checked ? "on" : "off");
  });
  const poll = async () => {
    try {
      if (toggle.checked && document.visibilityState === "visible") {
        const response = await fetch(region.dataset.follow, { credentials: "same-origin" });
        // Signed out meanwhile: the whole page goes to sign-in, not the table.
        if (response.redirected) return window.location.reload();
        if (response.ok) region.innerHTML = await response.text();
      }
    } finally {
      window.setTimeout(poll, FOLLOW_EVERY_MS);
    }
  };
  window.setTimeout(poll, FOLLOW_EVERY_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  confirmForms();
  copyButtons();
  catalogChoice();
  mappingEditor();
  replayProgress();
  followEvents();
});
