// The diagnostics page: log in (or paste a token), run one suite of checks and follow the run over
// WebSocket (graphql-transport-ws), each check shown as its result comes. The token is kept for
// this tab only (sessionStorage), never in the address bar; so is the last run's ID, so that a
// reload shows that run again, and follows it if it is still under way.
(() => {
  "use strict";

  const ENDPOINT = `${window.location.origin}/graphql`;
  const SOCKET_URL = ENDPOINT.replace(/^http/, "ws");
  const KEYS = {
    token: "storyframe.diagnostics.token",
    how: "storyframe.diagnostics.how",
    run: "storyframe.diagnostics.run",
  };
  const { FINAL, SUITES, PLACEHOLDER_NOTE, usd, describe, checkRow, statusLine, totalLine } =
    window.storyframeDiagnosticsView;
  const RETRY_MS = 2000;
  const RETRIES = 5;

  const CHECK = `name title status durationMs detail warning skippedReason request response
    inputImages { url width height contentType } outputImages { url width height contentType }
    errorCode error estimatedCostUsd`;
  const RUN = "id suite status placeholder costConfirmed estimatedCostUsd spentUsd";
  const LOG_IN = `mutation LogIn($email: String!, $password: String!) {
    logIn(input: {email: $email, password: $password}) { token userErrors { field message code } }
  }`;
  const LOG_OUT = "mutation LogOut { logOut { revoked } }";
  const VIEWER = "query Viewer { viewer { email } imageModels { placeholder } }";
  const START = `mutation RunDiagnostics($suite: DiagnosticsSuite!, $confirm: Boolean!) {
    runDiagnostics(input: {suite: $suite, confirmCost: $confirm}) {
      run { ${RUN} checks { name title status } } userErrors { field message code }
    }
  }`;
  const NODE = `query DiagnosticsRun($id: ID!) {
    node(id: $id) { ... on DiagnosticsRun { ${RUN} checks { ${CHECK} } } }
  }`;
  const FOLLOW = `subscription FollowDiagnostics($id: ID!) {
    diagnosticsRunUpdated(id: $id) { kind check { ${CHECK} } run { ${RUN} checks { name status } } }
  }`;

  const $ = (id) => document.getElementById(id);
  const view = {
    signedOut: $("signed-out"),
    signedIn: $("signed-in"),
    email: $("login-email"),
    password: $("login-password"),
    tokenInput: $("token-input"),
    loginError: $("login-error"),
    viewer: $("viewer-email"),
    controls: $("run-controls"),
    confirm: $("confirm-cost"),
    costNote: $("cost-note"),
    runButton: $("run-button"),
    runError: $("run-error"),
    status: $("run-status"),
    checks: $("checks"),
    total: $("run-total"),
  };
  // The run shown (its fields), its checks in order (whole once their result is known), the
  // WebSocket following it, and what the server said of costs.
  const state = { run: null, checks: [], socket: null, busy: false, retries: 0 };
  const known = { placeholder: null, estimates: {} };

  class ApiError extends Error {
    constructor(message, code) {
      super(message);
      this.code = code;
    }
  }

  const token = () => window.sessionStorage.getItem(KEYS.token);
  const suite = () => document.querySelector("input[name=suite]:checked").value;

  function report(where, error) {
    if (error.code !== "UNAUTHENTICATED") {
      where.textContent = error.code ? `${error.message} (${error.code})` : error.message;
    }
  }

  async function graphql(query, variables) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    let response;
    try {
      const body = JSON.stringify({ query, variables });
      response = await fetch(ENDPOINT, { method: "POST", headers, body, cache: "no-store" });
    } catch (error) {
      throw new ApiError("the server could not be reached", "NETWORK");
    }
    const answer = await response.json().catch(() => {
      throw new ApiError(`the server answered ${response.status}`, "HTTP");
    });
    if (answer.errors && answer.errors.length > 0) {
      const code = (answer.errors[0].extensions || {}).code || null;
      if (code === "UNAUTHENTICATED") signOut("Your token is not valid any more: log in again.");
      throw new ApiError(answer.errors.map((e) => e.message).join("; "), code);
    }
    return answer.data;
  }

  // --- the account ------------------------------------------------------------------------

  async function useToken(value, how) {
    window.sessionStorage.setItem(KEYS.token, value);
    window.sessionStorage.setItem(KEYS.how, how);
    const data = await graphql(VIEWER, {});
    if (!data.viewer) {
      signOut("That token is not valid, or has expired.");
      return false;
    }
    view.viewer.textContent = data.viewer.email;
    known.placeholder = data.imageModels.length > 0 && data.imageModels[0].placeholder;
    view.loginError.textContent = "";
    view.signedOut.hidden = true;
    view.signedIn.hidden = false;
    view.controls.disabled = false;
    showCostNote();
    return true;
  }

  function signOut(message) {
    stopFollowing();
    Object.values(KEYS).forEach((key) => window.sessionStorage.removeItem(key));
    state.run = null;
    state.checks = [];
    known.placeholder = null;
    known.estimates = {};
    view.checks.replaceChildren();
    view.runError.textContent = "";
    summarize();
    setBusy(false);
    view.controls.disabled = true;
    view.viewer.textContent = "";
    view.signedIn.hidden = true;
    view.signedOut.hidden = false;
    view.loginError.textContent = message;
    view.costNote.textContent = "(log in to see what a run costs)";
  }

  async function logIn(event) {
    event.preventDefault();
    view.loginError.textContent = "";
    const button = $("login-button");
    button.disabled = true;
    try {
      const variables = { email: view.email.value.trim(), password: view.password.value };
      const payload = (await graphql(LOG_IN, variables)).logIn;
      if (payload.userErrors.length > 0) {
        view.loginError.textContent = describe(payload.userErrors);
        return;
      }
      view.password.value = "";
      await useToken(payload.token, "login");
    } catch (error) {
      report(view.loginError, error);
    } finally {
      button.disabled = false;
    }
  }

  async function pasteToken(event) {
    event.preventDefault();
    const value = view.tokenInput.value.trim().replace(/^Bearer\s+/i, "");
    view.tokenInput.value = "";
    try {
      await useToken(value, "pasted");
    } catch (error) {
      report(view.loginError, error);
    }
  }

  async function logOut() {
    // A token this page logged in with is revoked; a pasted one is only forgotten here.
    if (window.sessionStorage.getItem(KEYS.how) === "login") {
      await graphql(LOG_OUT, {}).catch(() => null);
    }
    signOut("");
  }

  // --- a run ------------------------------------------------------------------------------

  function setBusy(busy) {
    state.busy = busy;
    view.runButton.disabled = busy;
    view.runButton.textContent = busy ? "Running…" : "Run";
  }

  function showCostNote() {
    const estimate = known.estimates[suite()];
    let note;
    if (known.placeholder) {
      note = PLACEHOLDER_NOTE;
    } else if (estimate !== undefined) {
      note = `a whole run of the ${SUITES[suite()]} suite costs about ${usd(estimate)}`;
    } else {
      note = "not confirmed, the checks that cost money are skipped, each saying what it costs";
    }
    view.costNote.textContent = `(${note})`;
  }

  async function startRun(event) {
    event.preventDefault();
    if (state.busy) return;
    setBusy(true);
    view.runError.textContent = "";
    try {
      const variables = { suite: suite(), confirm: view.confirm.checked };
      const payload = (await graphql(START, variables)).runDiagnostics;
      if (payload.userErrors.length > 0) {
        view.runError.textContent = describe(payload.userErrors);
        setBusy(false);
        return;
      }
      window.sessionStorage.setItem(KEYS.run, payload.run.id);
      show(payload.run);
      follow(payload.run.id);
    } catch (error) {
      report(view.runError, error);
      setBusy(false);
    }
  }

  // The run as the server has it, checks and all (from the mutation, or from `node`).
  function show(run) {
    state.run = run;
    state.checks = run.checks.slice();
    known.placeholder = run.placeholder;
    known.estimates[run.suite] = run.estimatedCostUsd;
    view.checks.replaceChildren(...state.checks.map(checkRow));
    summarize();
  }

  async function refresh(id) {
    if (!token()) return; // logged out meanwhile
    try {
      const run = (await graphql(NODE, { id })).node;
      if (!token()) return;
      if (!run) {
        window.sessionStorage.removeItem(KEYS.run);
        view.runError.textContent = "That run is not there any more.";
        setBusy(false);
        return;
      }
      show(run);
      if (FINAL.has(run.status)) {
        setBusy(false);
      } else if (state.socket === null) {
        follow(id);
      }
    } catch (error) {
      report(view.runError, error);
      if (error.code === "UNAUTHENTICATED") setBusy(false);
      else recover(id);
    }
  }

  function onEvent(event) {
    state.retries = 0;
    const { checks, ...fields } = event.run;
    state.run = { ...fields, checks: state.checks };
    if (event.check) {
      const index = state.checks.findIndex((check) => check.name === event.check.name);
      const row = checkRow(event.check);
      if (index < 0) {
        state.checks.push(event.check);
        view.checks.append(row);
      } else {
        state.checks[index] = event.check;
        view.checks.children[index].replaceWith(row);
      }
    }
    summarize();
    return isBehind(checks);
  }

  // Whether the server knows results the page has not shown (those of checks that finished
  // before the page was following, or that a failed run marked FAILED all at once).
  function isBehind(checks) {
    return (
      checks.length !== state.checks.length ||
      checks.some((check, index) => check.status !== state.checks[index].status)
    );
  }

  function follow(id) {
    stopFollowing();
    const socket = new WebSocket(SOCKET_URL, "graphql-transport-ws");
    const current = () => state.socket === socket;
    const send = (message) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    };
    let behind = false;
    let ended = false;
    state.socket = socket;
    socket.addEventListener("open", () => {
      send({ type: "connection_init", payload: { Authorization: `Bearer ${token()}` } });
    });
    socket.addEventListener("message", (message) => {
      if (!current()) return;
      const data = JSON.parse(message.data);
      if (data.type === "connection_ack") {
        const payload = { query: FOLLOW, variables: { id }, operationName: "FollowDiagnostics" };
        send({ id: "run", type: "subscribe", payload });
      } else if (data.type === "ping") {
        send({ type: "pong" });
      } else if (data.type === "next") {
        const { data: answer, errors } = data.payload;
        if (errors) view.runError.textContent = describe(errors);
        const event = answer && answer.diagnosticsRunUpdated;
        if (event) {
          behind = onEvent(event);
          // Checks that finished before the page followed the run come with no event.
          if (behind && event.kind === "STATE") refresh(id);
        }
      } else if (data.type === "error" || data.type === "complete") {
        if (data.type === "error") view.runError.textContent = describe(data.payload);
        ended = true;
        stopFollowing();
        if (state.run && FINAL.has(state.run.status)) {
          if (behind) refresh(id);
          else setBusy(false);
        } else {
          recover(id);
        }
      }
    });
    socket.addEventListener("close", (event) => {
      if (!current() || ended) return;
      state.socket = null;
      view.runError.textContent = `The connection was lost (${event.code}); following again…`;
      recover(id);
    });
  }

  // Read the run again, and follow it again if it is still under way: a few times, then the
  // page says to reload.
  function recover(id) {
    if (state.retries++ < RETRIES) {
      window.setTimeout(() => refresh(id), RETRY_MS);
    } else {
      view.runError.textContent = "The run could not be followed; reload the page to try again.";
      setBusy(false);
    }
  }

  function stopFollowing() {
    const socket = state.socket;
    state.socket = null;
    if (socket !== null) socket.close(1000);
  }

  // --- what is shown ----------------------------------------------------------------------

  function summarize() {
    const run = state.run;
    view.status.dataset.status = run ? run.status : "";
    if (run) {
      view.status.replaceChildren(...statusLine(run, state.checks));
      view.total.textContent = totalLine(run);
    } else {
      view.status.textContent = "No run yet.";
      view.total.textContent = "";
    }
    showCostNote();
  }

  // --- start ------------------------------------------------------------------------------

  $("login-form").addEventListener("submit", logIn);
  $("token-form").addEventListener("submit", pasteToken);
  $("logout-button").addEventListener("click", logOut);
  $("run-form").addEventListener("submit", startRun);
  document.querySelectorAll("input[name=suite]").forEach((radio) => {
    radio.addEventListener("change", showCostNote);
  });

  (async () => {
    const saved = token();
    if (!saved) return;
    try {
      const how = window.sessionStorage.getItem(KEYS.how) || "pasted";
      if (!(await useToken(saved, how))) return;
      const run = window.sessionStorage.getItem(KEYS.run);
      if (run) {
        setBusy(true);
        await refresh(run);
      }
    } catch (error) {
      report(view.loginError, error);
    }
  })();
})();
