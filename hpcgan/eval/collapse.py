"""Is a generator's output as varied as the real data? A verdict from the diversity measures of one
evaluation, each set against the same measure on real images:

- recall (the share of real images the generated set covers) against precision and against the
  recall of one half of the real images against the other;
- the near-duplicate rate against the real rate (hpcgan/eval/near_duplicates.py);
- MS-SSIM between generated pairs against real pairs (hpcgan eval only: it needs images).

"collapsed": at least one measure is far from real (the signature of mode collapse: recall near 0
at high precision, twins everywhere, pairs that look alike). "low": diversity is short of real but
not collapsed. "ok": every available measure is within the range of real data, which are also the
benchmark's targets (recall >= 0.5 x real, near-duplicates <= 2 x real, MS-SSIM within 0.1).
"""

from __future__ import annotations

from typing import Any

COLLAPSED, LOW, OK = "collapsed", "low", "ok"


def diversity_verdict(result: dict[str, Any]) -> tuple[str, list[str]]:
    """(verdict, reasons) from an evaluation result; the reasons name the numbers."""
    far: list[str] = []
    short: list[str] = []
    recall, precision, recall_real = (result.get(k) for k in ("recall", "precision", "recall_real"))
    if recall is not None and precision is not None and recall_real is not None:
        text = f"recall {recall:.2f} at precision {precision:.2f} (real {recall_real:.2f})"
        if recall < precision / 3 and recall < recall_real / 3:
            far.append(text)
        elif recall < 0.5 * recall_real:
            short.append(text)
    dup, dup_real = result.get("near_duplicates"), result.get("near_duplicates_real")
    if dup is not None and dup_real is not None:
        text = f"{100 * dup:.0f}% near-duplicates (real {100 * dup_real:.0f}%)"
        if dup > max(3 * dup_real, dup_real + 0.1):
            far.append(text)
        elif dup > max(2 * dup_real, dup_real + 0.01):
            short.append(text)
    ms_ssim, ms_ssim_real = result.get("ms_ssim"), result.get("ms_ssim_real")
    if ms_ssim is not None and ms_ssim_real is not None and ms_ssim == ms_ssim and ms_ssim_real == ms_ssim_real:
        text = f"MS-SSIM of generated pairs {ms_ssim:.2f} (real pairs {ms_ssim_real:.2f})"
        if ms_ssim > ms_ssim_real + 0.2:
            far.append(text)
        elif ms_ssim > ms_ssim_real + 0.1:
            short.append(text)
    if far:
        return COLLAPSED, far + short
    return (LOW, short) if short else (OK, [])


def describe_verdict(verdict: str, reasons: list[str]) -> str:
    """One line for people."""
    if verdict == COLLAPSED:
        return "MODE COLLAPSE: the samples are far less varied than the real images: " + "; ".join(reasons)
    if verdict == LOW:
        return "diversity below real data: " + "; ".join(reasons)
    return "diversity like real data"


def with_verdict(result: dict[str, Any]) -> dict[str, Any]:
    """`result` with "diversity" (the verdict) and "diversity_notes" (its reasons) set."""
    verdict, reasons = diversity_verdict(result)
    return {**result, "diversity": verdict, "diversity_notes": reasons}
