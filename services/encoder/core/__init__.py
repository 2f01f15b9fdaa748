"""Pure logic of the encoder: no broker and no network."""
