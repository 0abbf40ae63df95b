"""Threshold alerts with hysteresis: a value hovering at the line alerts once."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Alert", "AlertRule"]


@dataclass(frozen=True)
class Alert:
    """A rule's state changed.

    Attributes:
        metric: the sample field watched (``mem_percent``, ``browser_pss_mb``, …).
        state: ``open`` when the value crossed the threshold, ``cleared`` when
            it came back past the clearing level.
        value: the value that caused the change.
        threshold: the rule's threshold.
    """

    metric: str
    state: str
    value: float
    threshold: float

    def describe(self) -> str:
        """One line for logs and events."""
        verb = "over" if self.state == "open" else "back from"
        return f"{self.metric} {self.value:.1f} {verb} {self.threshold:g}"


class AlertRule:
    """Watches one metric against a threshold, with a hysteresis band.

    Args:
        metric: the sample field to watch.
        threshold: the line.
        above: True if values above the line are bad (memory), False if below
            (free disk).
        band: the fraction of the threshold the value must come back by before
            the alert clears (0.05: a 90% memory alert clears under 85.5%).
        sustain: consecutive samples the value must stay past the line (or
            back within it) before the alert opens (or clears); CPU swings
            from one second to the next, memory does not.
    """

    def __init__(
        self,
        metric: str,
        threshold: float,
        *,
        above: bool = True,
        band: float = 0.05,
        sustain: int = 1,
    ) -> None:
        self.metric = metric
        self.threshold = threshold
        self.above = above
        self.band = band
        self.sustain = sustain
        self.active = False
        self._streak = 0

    def check(self, value: float) -> Alert | None:
        """Feed a value; returns an Alert when the rule opens or clears."""
        margin = abs(self.threshold) * self.band
        if self.above:
            crossed, back = value >= self.threshold, value < self.threshold - margin
        else:
            crossed, back = value <= self.threshold, value > self.threshold + margin
        changing = back if self.active else crossed
        self._streak = self._streak + 1 if changing else 0
        if self._streak < self.sustain:
            return None
        self._streak = 0
        self.active = not self.active
        return Alert(self.metric, "open" if self.active else "cleared", value, self.threshold)
