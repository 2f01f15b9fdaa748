"""Recommender: real-time user vectors from watch events, and feeds ranked by a pipeline of named stages."""
