"""The saved model folder: its files and checks, the architectures, the item priors, calibration and text lengths."""
