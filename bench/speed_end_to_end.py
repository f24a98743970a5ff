"""bench.speed's end to end: ``/rank`` through ``gradio_client`` on a served app (``python app.py``), fresh lists
of 100 and 1,000 titles and a cached 1,000, against the fp32 FLOP floor of their texts; and the app's peak memory."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.served_app import Api, App, free_port
from bench.speed_measure import Report, percentiles, table


def time_requests(
    app: App, texts: list[str], contexts: list[str], floor: Callable, quick: bool
) -> dict[str, dict[str, float]]:
    """Per kind of list, the p50 and p95 of its /rank requests and its FLOP floor; every fresh list holds titles
    the app never saw."""
    client = app.client()
    api = Api.read(client)
    pool = iter(texts)

    def call(context: str, items: list[str]) -> float:
        started = time.perf_counter()
        client.predict(api_name="/rank", **api.rank_arguments(context, items, top_k=10))
        return time.perf_counter() - started

    call(contexts[0], [next(pool) for _ in range(20)])  # warm up: the first request loads what it needs
    figures = {}
    plans = (("100 fresh items", 100, 2 if quick else 10), ("1,000 fresh items", 1000, 1 if quick else 4))
    for name, size, repeats in plans:
        lists = [[next(pool) for _ in range(size)] for _ in range(repeats)]
        times = [call(contexts[n + 1], items) for n, items in enumerate(lists)]
        figures[name] = percentiles(times) | {"floor_s": floor(lists[0], contexts[1])}
    seen = lists[-1]
    times = [call(context, seen) for context in contexts[10 : 12 if quick else 20]]
    figures["1,000 cached items"] = percentiles(times) | {"floor_s": 0.0}
    return figures


def end_to_end(
    report: Report, model_dir: Path, texts: list[str], contexts: list[str], floor: Callable, quick: bool = False
) -> None:
    """``/rank`` through gradio_client on a served app: fresh lists of 100 and 1,000, and a cached 1,000."""
    with tempfile.TemporaryDirectory() as feedback:
        app = App(model_dir, Path(feedback), free_port(), Path(feedback) / "app.log")
        started_s = app.start(timeout_s=300)
        try:
            figures = time_requests(app, texts, contexts, floor, quick)
            peak = app.peak_rss_mib()
        finally:
            app.stop()
    rows = [
        {
            "list": name,
            "p50 s": f["p50"],
            "p95 s": f["p95"],
            "requests": f["n"],
            "fp32 FLOP floor s": f["floor_s"] or None,
            "p50 / floor": f["p50"] / f["floor_s"] if f["floor_s"] else None,
        }
        for name, f in figures.items()
    ]
    report.add(
        "End to end: `/rank` through gradio_client",
        f"`python app.py` serving `{model_dir.name}` (started in {started_s:.0f} s), one `gradio_client` on "
        "localhost, pasted titles, top 10 returned; fresh lists hold titles the app never saw. The floor is the "
        "fp32 FLOPs of the list's texts over the matmul rate measured above: the time an fp32 encoder at the "
        f"limit needs. Peak memory of the serving process: {peak:.0f} MiB.\n\n" + table(rows),
    )
    report.figures["end_to_end"] = {"rows": rows, "peak_rss_mib": peak}
