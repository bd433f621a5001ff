"""TensorBoard event files for a run's metrics (`RUN/tensorboard/`), so `tensorboard --logdir runs/`
shows runs live. The writer is tensorboardX (pure Python, about 90 KB, no TensorFlow or PyTorch),
an optional extra: `pip install 'ganmusic[tensorboard]'`. Without it, training runs as before and
says once how to turn the event files on; `metrics.jsonl` is written either way."""

from __future__ import annotations

import math
import struct
from pathlib import Path

from ganmusic.ui import console

FOLDER = "tensorboard"
HINT = ("TensorBoard event files are off (tensorboardX is not installed); "
        "pip install 'ganmusic[tensorboard]' to write them under the run folder")
_hinted = False


class EventWriter:
    """Scalars as `PREFIX/NAME` per step; a no-op (after one hint) when tensorboardX is missing.
    `purge_step`: on resume, TensorBoard drops the earlier events from that step on."""

    def __init__(self, directory: str | Path, purge_step: int | None = None):
        global _hinted
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            self._writer = None
            if not _hinted:
                _hinted = True
                console.print(HINT, highlight=False, markup=False, soft_wrap=True)
            return
        self._writer = SummaryWriter(str(directory), purge_step=purge_step, flush_secs=5)

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def scalars(self, step: int, row: dict, prefix: str) -> None:
        if self._writer is None:
            return
        for name, value in row.items():
            if name != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self._writer.add_scalar(f"{prefix}/{name}", float(value), int(step))
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_scalars(directory: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under `directory`, `{tag: [(step, value), ...]}`, read with
    tensorboardX's own protobuf classes (TFRecord framing: length, CRC, record, CRC)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(directory).rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            record = data[pos + 12:pos + 12 + length]
            pos += 12 + length + 4
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return out
