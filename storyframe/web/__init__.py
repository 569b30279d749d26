"""Pages Storyframe serves itself: GraphiQL at `GET /graphql`, with every file it loads carried in
the package and served from `/graphiql/assets/`, so that it works with no internet."""
