"""``python -m recsys.loop``: the feedback loop's commands (:mod:`recsys.loop.commands`)."""

from recsys.loop.commands import cli

if __name__ == "__main__":
    cli()
