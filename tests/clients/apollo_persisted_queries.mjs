// Apollo Client with its persisted-queries link, against a running Storyframe server: runs one
// query twice and prints, as one JSON object, the two results and every HTTP request it sent.
//
//   STORYFRAME_TOKEN=sf_… node apollo_persisted_queries.mjs http://127.0.0.1:4000/graphql post|get
//
// With `get`, hashed queries go over GET (`useGETForHashedQueries`), as a CDN would want them.
import { createHash } from "node:crypto";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";

const [uri, mode] = process.argv.slice(2);
if (!uri || !["post", "get"].includes(mode)) {
  console.error("usage: node apollo_persisted_queries.mjs <graphql url> post|get");
  process.exit(2);
}

const PROJECTS = gql`
  query PersistedProjects($first: Int) {
    projects(first: $first) {
      totalCount
      nodes {
        name
      }
    }
  }
`;

// What went over the wire, as the server saw it.
const requests = [];

async function recordingFetch(input, init = {}) {
  const url = new URL(typeof input === "string" ? input : input.url);
  const body = typeof init.body === "string" ? JSON.parse(init.body) : {};
  const extensions = body.extensions ?? JSON.parse(url.searchParams.get("extensions") ?? "{}");
  const headers = new Headers(init.headers);
  const response = await fetch(input, init);
  requests.push({
    method: init.method ?? "GET",
    sentQuery: "query" in body || url.searchParams.has("query"),
    sha256Hash: extensions.persistedQuery?.sha256Hash ?? null,
    accept: headers.get("accept"),
    status: response.status,
    contentType: response.headers.get("content-type"),
  });
  return response;
}

const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: ApolloLink.from([
    createPersistedQueryLink({
      sha256: (query) => createHash("sha256").update(query).digest("hex"),
      useGETForHashedQueries: mode === "get",
    }),
    new HttpLink({
      uri,
      headers: { authorization: `Bearer ${process.env.STORYFRAME_TOKEN}` },
      fetch: recordingFetch,
    }),
  ]),
});

const results = [];
for (let run = 0; run < 2; run += 1) {
  // Not from Apollo's cache: each run goes to the server.
  const { data } = await client.query({
    query: PROJECTS,
    variables: { first: 5 },
    fetchPolicy: "network-only",
  });
  results.push(data);
}
process.stdout.write(`${JSON.stringify({ results, requests })}\n`);
