"""HTTP and WebSocket handlers, one module per area; each exposes `routes`."""
