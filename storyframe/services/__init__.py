"""The domain: what Storyframe does, independent of GraphQL and of the database driver."""
