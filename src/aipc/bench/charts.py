"""PNG charts, one per metric and device, in the spirit of the cookbook's token-latency bar charts: the median of
the measured runs (the statistic of the table and of ``bench compare``) with the interquartile range as error bars,
and the machine and date of the run under the title.

matplotlib is optional (the ``plot`` extra; ``nox -s bench`` installs it). Without it no chart is written and
the caller prints why. The Agg backend is used, so no display is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..fsutil import atomic_path
from .metrics import METRICS

CHART_METRICS = ("ttft_ms", "tpot_ms", "decode_tps", "e2e_tps")


def caption(doc: dict[str, Any]) -> str:
    """The machine and date a chart's figures come from."""
    m = doc["machine"]
    cpu = m.get("cpu") or "unknown CPU"
    return (f"{doc.get('created', '?')} - {m.get('os', '?')} {m.get('os_release', '')}".rstrip()
            + f", {cpu} ({m.get('cpu_count', '?')} logical), aipc {doc.get('aipc_version', '?')}")


def bar(summary: dict[str, Any] | None) -> tuple[float, float, float]:
    """A bar's height and its error bar below and above: the median and the distances to q1 and q3."""
    if not summary:
        return 0.0, 0.0, 0.0
    med = float(summary["median"])
    return med, max(0.0, med - float(summary["q1"])), max(0.0, float(summary["q3"]) - med)


def matplotlib_missing() -> str | None:
    """None when matplotlib can be imported, else the reason charts are skipped."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "charts skipped: matplotlib is not installed (pip install 'aipc[plot]', or run `nox -s bench`)"
    return None


def _label(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def write_charts(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``<metric>-<device>.png`` for every metric and device with passing results; returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_device: dict[str, list[dict[str, Any]]] = {}
    for t in doc["targets"]:
        if t["status"] == "pass" and t["cells"]:
            by_device.setdefault(t["device"], []).append(t)
    written: list[Path] = []
    model = doc["model"].get("kind", "")
    for device, targets in sorted(by_device.items()):
        cells = sorted({(c["prompt_tokens"], c["gen_tokens"]) for t in targets for c in t["cells"]})
        for metric in CHART_METRICS:
            label, unit, higher = METRICS[metric]
            fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(cells) * len(targets)), 4.2), dpi=110)
            width = 0.8 / len(targets)
            for i, t in enumerate(targets):
                heights, below, above = [], [], []
                for cell in cells:
                    c = next((c for c in t["cells"] if (c["prompt_tokens"], c["gen_tokens"]) == cell), None)
                    med, lo, hi = bar(c["summary"].get(metric) if c else None)
                    heights.append(med)
                    below.append(lo)
                    above.append(hi)
                xs = [k + (i - (len(targets) - 1) / 2) * width for k in range(len(cells))]
                bars = ax.bar(xs, heights, width, yerr=[below, above], capsize=3,
                              label=f"{t['api']} ({t['precision']}, {t.get('device_used') or device})")
                ax.bar_label(bars, labels=[_label(m) for m in heights], fontsize=8, padding=2)
            ax.set_xticks(range(len(cells)))
            ax.set_xticklabels([f"prompt {p} / gen {g}" for p, g in cells])
            ax.set_ylabel(f"{label} ({unit})")
            better = "higher is better" if higher else "lower is better"
            ax.set_title(f"{label} on {device.upper()} - {model} model, median and interquartile range ({better})\n"
                         f"{caption(doc)}", fontsize=9)
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(3, len(targets)),
                      frameon=False)
            ax.margins(y=0.15)
            fig.tight_layout()
            dest = out_dir / f"{metric}-{device}.png"
            with atomic_path(dest) as tmp:
                fig.savefig(tmp, format="png")
            plt.close(fig)
            written.append(dest)
    return written
