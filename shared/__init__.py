"""Library code every ClipStream service imports. It never runs by itself."""
