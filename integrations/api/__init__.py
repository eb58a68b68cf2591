"""The local HTTP API (Starlette on uvicorn): off by default, bearer tokens, every call audited."""
