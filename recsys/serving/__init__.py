"""What the app serves, without Gradio: its settings, the served models, their service and download files."""
