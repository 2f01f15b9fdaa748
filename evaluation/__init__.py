"""Offline evaluations and replays: measure the models and the recommender; never imported by a service."""
