"""Sample messages for :meth:`PetalProvider.sample`, in the shapes Petal's page prints.

Data only, no logic that parsing relies on.  The channel keys and the flat metrics
array's band order are written here again on purpose, as the page writes them: a
sample built from the parser's own tables would hide a mistake in them
(Petal Metrics' documentation, "Receive Webhooks").
"""

from __future__ import annotations

from typing import Any

__all__ = ["SAMPLES", "STREAM_FIELDS"]

_CHANNELS = ("ch1", "ch2", "ch3", "ch4")
# The order of each channel's bands in the flat metrics array (LSL's order).
_BANDS_ORDER = ("alpha", "beta", "theta", "delta")

#: The stream fields every message carries (``lsl_api_recv_ts`` is set per sample).
STREAM_FIELDS = {
    "id": 21,
    "lsl_ts": 1214.697467542195,
    "unix_ts": 1633343930.865,
    "lsl_eeg_fill_ts": 1214.7459047,
    "lsl_api_call_ts": 1257.6010982,
    "lsl_api_recv_ts": 1257.7840578,
    "last_eeg_id": 2895,
}
_BANDS = {
    ch: {"delta": 0.51 + i, "theta": 0.42 + i, "alpha": 0.93 + i, "beta": 0.27 + i}
    for i, ch in enumerate(_CHANNELS)
}
_METRICS: list[Any] = [0, 0, 1, 1, 0, 1]
for _ch in _CHANNELS:
    _METRICS += [_BANDS[_ch][band] for band in _BANDS_ORDER]
_METRICS[-4:] = ["bad_data"] * 4  # Petal's own example is full of bad_data
_METRICS_JSON = {
    "artifact_detect": {
        f"channel{i + 1}": "good" if v == 1 else "artifact" for i, v in enumerate(_METRICS[2:6])
    },
    "bandpower": {
        f"channel{i + 1}": {str(n): _METRICS[6 + 4 * i + n] for n in range(4)} for i in range(4)
    },
    "blink": {"blink": 0},
    "eye": {"eye": 0},
}
#: Per event type: the action's value and the message's own data fields.
SAMPLES: dict[str, tuple[Any, dict[str, Any]]] = {
    "blink": (1, {"blink": {"blink": 1}}),
    "eye": (0, {"eye": {"eye": 0}}),
    "bandpower": (
        [v for ch in _CHANNELS for v in _BANDS[ch].values()],
        {"bandpower": _BANDS},
    ),
    "artifact-detect": (
        [1, 1, 0, 1],
        {"artifact_detect": dict(zip(_CHANNELS, [1, 1, 0, 1], strict=True))},
    ),
    "metricsJson": (_METRICS_JSON, {"metrics": _METRICS_JSON}),
    "metrics": (_METRICS, {"metrics": _METRICS}),
}
