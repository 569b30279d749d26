"""Pages Storyframe serves itself: GraphiQL at `GET /graphql` and the diagnostics page at
`GET /diagnostics`, with every file they load carried in the package and served by Storyframe,
so that they work with no internet."""
