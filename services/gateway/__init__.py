"""The HTTP API that platform backends and client apps call."""
