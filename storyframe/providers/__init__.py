"""Image providers: OpenAI, and placeholders made offline."""
