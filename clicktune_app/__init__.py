"""ClickTune's Gradio front end, which ``app.py`` serves: the layout (``layout``, one module per tab) and its handlers
(``handlers``, one module per tab), thin calls into ``recsys.serving``."""
