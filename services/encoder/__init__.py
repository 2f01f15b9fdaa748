"""Encoder: fetch, decode and embed uploaded videos into Qdrant's `videos` collection."""
