"""Training and export (torch; the `train` extra). Serving never imports this package."""
