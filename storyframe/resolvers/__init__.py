"""The Query root, the Mutation root's parts (a module per domain, merged in `api_schema`),
and the DataLoaders they hand to every request."""
