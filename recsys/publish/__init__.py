"""Publishing a model: its card and its upload to the Hugging Face Hub."""
