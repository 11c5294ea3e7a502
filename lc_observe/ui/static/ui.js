// lc_observe ui: keyboard navigation, live refresh, graph edge clicks, scores.
// Written for this page only (no library); the server escapes every string it renders,
// and this script puts text into the page with textContent only.
"use strict";

(function () {
  const main = document.getElementById("main");

  // -- keyboard ------------------------------------------------------------------------
  let selected = -1;
  function rows() {
    return Array.from(document.querySelectorAll("table.list tbody tr"));
  }
  function select(index) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
    const link = all[selected].querySelector("a");
    if (link) link.focus();
    all[selected].scrollIntoView({ block: "nearest" });
  }
  let pendingG = false;
  const jumps = { t: "/traces", g: "/graph", s: "/stats", a: "/anomalies", c: "/compare" };
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target && (target.tagName === "INPUT" || target.tagName === "SELECT" ||
      target.tagName === "TEXTAREA");
    if (typing || event.ctrlKey || event.metaKey || event.altKey) {
      if (event.key === "Escape" && typing) target.blur();
      return;
    }
    if (pendingG) {
      pendingG = false;
      if (jumps[event.key]) { window.location.href = jumps[event.key]; event.preventDefault(); }
      return;
    }
    const key = event.key;
    if (key === "j") { select(selected + 1); event.preventDefault(); }
    else if (key === "k") { select(selected - 1); event.preventDefault(); }
    else if (key === "/") {
      const box = document.getElementById("search");
      const field = box && !box.disabled ? box : document.querySelector("form.filters input");
      if (field) { field.focus(); event.preventDefault(); }
    } else if (key === "n" || key === "p") {
      const link = document.querySelector(key === "n" ? "a[rel=next]" : "a[rel=prev]");
      if (link) window.location.href = link.href;
    } else if (key === "g") { pendingG = true; }
    else if (key === "e") { nextError(); }
    else if (key === "?") {
      const help = document.getElementById("help");
      if (help && help.showModal) help.showModal();
    }
  });

  // -- spans: open one (and its ancestors), from the errors list or a #span= link -------
  function openSpan(spanId) {
    const node = Array.from(document.querySelectorAll("details.lco-span"))
      .find((el) => el.dataset.spanId === spanId);
    if (!node) return false;
    for (let el = node; el; el = el.parentElement) {
      if (el.tagName === "DETAILS") el.open = true;
    }
    document.querySelectorAll(".span-target").forEach((el) => el.classList.remove("span-target"));
    node.classList.add("span-target");
    const summary = node.querySelector("summary");
    if (summary) { summary.setAttribute("tabindex", "0"); summary.focus(); }
    node.scrollIntoView({ block: "center" });
    return true;
  }
  let errorIndex = -1;
  function nextError() {
    const links = Array.from(document.querySelectorAll("[data-goto-span]"));
    if (!links.length) return;
    errorIndex = (errorIndex + 1) % links.length;
    openSpan(links[errorIndex].dataset.gotoSpan);
  }
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("[data-goto-span]");
    if (link) { event.preventDefault(); openSpan(link.dataset.gotoSpan); }
  });
  function fromHash() {
    const match = /^#span=(.+)$/.exec(window.location.hash);
    if (match) openSpan(decodeURIComponent(match[1]));
  }
  fromHash();
  window.addEventListener("hashchange", fromHash);

  // -- graph: click an edge to list its traces ----------------------------------------
  document.querySelectorAll(".graph path.lco-edge").forEach((edge) => {
    edge.addEventListener("click", () => {
      const graph = edge.closest(".graph").dataset.graph;
      const query = new URLSearchParams({
        name: graph, source: edge.dataset.source, target: edge.dataset.target,
      });
      window.location.href = "/graph?" + query.toString() + "#edge-traces";
    });
  });

  // -- scores --------------------------------------------------------------------------
  const form = document.getElementById("score-form");
  async function sendScore(payload) {
    const out = document.getElementById("score-result");
    out.textContent = "saving…";
    try {
      const response = await fetch("/api/traces/" + encodeURIComponent(form.dataset.traceId) + "/scores", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload),
      });
      const body = await response.json();
      if (!response.ok) { out.textContent = "not saved: " + body.error; return; }
      out.textContent = "saved " + body.name + " = " + String(body.value);
      await refresh();
    } catch (err) {
      out.textContent = "not saved: " + err;
    }
  }
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(form);
      sendScore({
        name: data.get("name"), value: data.get("value"), comment: data.get("comment"),
        span_id: data.get("span_id"), source: data.get("source"),
      });
    });
    form.querySelectorAll("[data-quick]").forEach((button) => {
      button.addEventListener("click", () => sendScore({
        name: "helpful", value: button.dataset.quick === "true", source: "feedback",
        span_id: new FormData(form).get("span_id"),
      }));
    });
  }

  // -- live refresh: poll the change token, then swap in the new #live part ------------
  async function refresh() {
    const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("live");
    const current = document.getElementById("live");
    if (fresh && current) current.replaceWith(fresh);
    const freshMain = page.getElementById("main");
    if (freshMain && main) {
      if (freshMain.dataset.live) main.dataset.live = freshMain.dataset.live;
      else delete main.dataset.live;
    }
    selected = -1;
  }
  async function poll() {
    if (!main || !main.dataset.live) return;
    try {
      const response = await fetch(main.dataset.live);
      if (response.ok) {
        const body = await response.json();
        if (body.changed) await refresh();
      }
    } catch (err) { /* server restarting: try again next time */ }
    if (main.dataset.live) window.setTimeout(poll, 2000);
  }
  if (main && main.dataset.live) window.setTimeout(poll, 2000);
})();
