"""The feedback loop: the served model's versions, and the commands that retrain, promote and roll back."""
