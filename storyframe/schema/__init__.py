"""The shape of the API: Strawberry types, inputs, payloads and error codes."""
