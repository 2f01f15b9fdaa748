"""The content topics of the platform's committed models: the generator's conditioning classes and the
encoder's topic head were trained on these, in this order (``models/*manifest.json`` record them too)."""

TOPICS = ("sports", "travel", "food", "music", "nature", "gaming")
