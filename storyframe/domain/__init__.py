"""The vocabulary every layer shares: places, pages, error codes, the model catalogue, and the
ports (protocols) that the database, blob storage and image providers implement."""
