"""The Query and Mutation roots, and the DataLoaders they hand to every request."""
