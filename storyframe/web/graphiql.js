// GraphiQL with its explorer, opening on Storyframe's first tabs; subscriptions go over
// WebSocket (graphql-transport-ws) to the same path, with the Headers editor's values as the
// connection's first message. The document being edited is kept in the address bar (`?q=`),
// to share it; variables and headers never are.
(function () {
  "use strict";
  var endpoint = window.location.origin + window.location.pathname;
  var tabs = JSON.parse(document.getElementById("storyframe-graphiql-tabs").textContent);
  var shared = new URLSearchParams(window.location.search).get("q");
  if (shared) {
    tabs = [{ query: shared, variables: null, headers: null }].concat(tabs);
  }
  // GraphiQL opens the first tab with empty variables and headers editors, whatever the tab
  // holds, unless told them; once it has tabs of its own (kept in the browser), it shows those.
  var first = window.localStorage.getItem("graphiql:tabState") ? {} : tabs[0];

  function share(query) {
    var url = new URL(window.location.href);
    if (query) {
      url.searchParams.set("q", query);
    } else {
      url.searchParams.delete("q");
    }
    window.history.replaceState(null, "", url);
  }

  var fetcher = GraphiQL.createFetcher({
    url: endpoint,
    subscriptionUrl: endpoint.replace(/^http/, "ws"),
  });
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
      defaultTabs: tabs,
      query: shared || undefined,
      variables: first.variables || undefined,
      headers: first.headers || undefined,
      onEditQuery: share,
      defaultEditorToolsVisibility: true,
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    }),
  );
})();
