"""What the app serves, without Gradio: its settings, the served models, the checks of requests, the lists shown,
cached evaluations and download files."""
