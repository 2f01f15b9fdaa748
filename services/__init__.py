"""ClipStream services: one deployable each."""
