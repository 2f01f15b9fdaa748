"""Golden outputs of the committed models. Regenerate after retraining: python -m tests.golden"""
