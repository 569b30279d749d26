// How the diagnostics page shows a run: each check as a list item (its status, title, duration,
// what it reported, its input and output images side by side, and the JSON it sent and got),
// and the run's status and cost in words. Only elements and text are made: nothing a check says
// is ever read as HTML, and only data: URLs of images are shown.
window.storyframeDiagnosticsView = (() => {
  "use strict";

  const FINAL = new Set(["PASSED", "FAILED"]);
  const SUITES = { OPENAI: "OpenAI", API: "API" };
  const PLACEHOLDER_NOTE = "no OpenAI key: placeholder images, nothing costs money";

  const usd = (value) => `$${Number(value || 0).toFixed(4)}`;
  const duration = (ms) =>
    ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;

  // User errors carry their `code`, GraphQL errors theirs in `extensions`.
  const describe = (errors) =>
    errors
      .map((e) => [e.message, e.code || (e.extensions || {}).code])
      .map(([message, code]) => (code ? `${message} (${code})` : message))
      .join("; ");

  function el(tag, props, ...children) {
    const node = Object.assign(document.createElement(tag), props || {});
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  // The run's status, its suite and how far it got (or how its checks ended), as nodes.
  function statusLine(run, checks) {
    const done = checks.filter((check) => check.status !== "PENDING");
    let counts = `${done.length} of ${checks.length} checks done`;
    if (FINAL.has(run.status)) {
      const tally = {};
      done.forEach((check) => (tally[check.status] = (tally[check.status] || 0) + 1));
      counts = Object.entries(tally)
        .map(([status, n]) => `${n} ${status.toLowerCase()}`)
        .join(", ");
    }
    const words = ` · ${SUITES[run.suite] || run.suite} suite · ${counts}`;
    return [el("strong", {}, run.status), words];
  }

  function totalLine(run) {
    let total = `Spent ${usd(run.spentUsd)}, of an estimated ${usd(run.estimatedCostUsd)}`;
    if (run.placeholder) {
      total += ` (${PLACEHOLDER_NOTE})`;
    } else if (!run.costConfirmed) {
      total += " (cost not confirmed: the checks that cost money are skipped)";
    }
    return `${total}.`;
  }

  function checkRow(check) {
    const heading = `check-${check.name.replace(/[^A-Za-z0-9_-]/g, "-")}`;
    const item = el("li", { className: "check" });
    item.dataset.name = check.name;
    item.dataset.status = check.status;
    item.setAttribute("aria-labelledby", heading);
    const title = el(
      "h3",
      { id: heading },
      el("span", { className: `check-status status-${check.status.toLowerCase()}` }, check.status),
      " ",
      el("span", { className: "check-title" }, check.title),
    );
    if (check.durationMs !== null && check.durationMs !== undefined) {
      title.append(" ", el("span", { className: "check-duration" }, duration(check.durationMs)));
    }
    item.append(title, el("p", { className: "check-name" }, el("code", {}, check.name)));
    const facts = el("dl", { className: "facts" });
    const fact = (name, value, className) => {
      if (value !== null && value !== undefined && value !== "") {
        facts.append(el("dt", {}, name), el("dd", { className: className || "" }, String(value)));
      }
    };
    // A skipped check's detail is its reason, said once.
    if (check.detail !== check.skippedReason) fact("Detail", check.detail);
    fact("Warning", check.warning, "warning");
    fact("Skipped", check.skippedReason);
    fact("Error", [check.errorCode, check.error].filter(Boolean).join(": "), "error");
    if (typeof check.estimatedCostUsd === "number") fact("Cost", usd(check.estimatedCostUsd));
    if (facts.childElementCount > 0) item.append(facts);
    const inputs = check.inputImages || [];
    const outputs = check.outputImages || [];
    if (inputs.length > 0 || outputs.length > 0) {
      const both = [images("Input", inputs, check), images("Output", outputs, check)];
      item.append(el("div", { className: "images" }, ...both));
    }
    json(item, "Request", check.request);
    json(item, "Response", check.response);
    return item;
  }

  function images(kind, list, check) {
    const group = el("div", { className: `image-group ${kind.toLowerCase()}-images` });
    group.append(el("h4", {}, `${kind} images`));
    if (list.length === 0) group.append(el("p", { className: "note" }, "none"));
    list.forEach((image, index) => {
      const alt = `${kind} image ${index + 1} of “${check.title}”`;
      const img = el("img", { alt, decoding: "async" });
      if (/^data:image\//.test(image.url)) img.src = image.url;
      const caption = `${image.width}×${image.height}, ${image.contentType}`;
      group.append(el("figure", {}, img, el("figcaption", {}, caption)));
    });
    return group;
  }

  function json(parent, label, value) {
    if (value === null || value === undefined) return;
    const text = JSON.stringify(value, null, 2);
    const details = el("details", { className: "json" }, el("summary", {}, label));
    details.append(el("pre", {}, el("code", {}, text)));
    parent.append(details);
  }

  return { FINAL, SUITES, PLACEHOLDER_NOTE, usd, describe, checkRow, statusLine, totalLine };
})();
