"""Embedded runtime: the Tansu broker process and topic administration."""
