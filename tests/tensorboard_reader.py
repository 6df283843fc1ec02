"""Read scalars back from TensorBoard event files (TFRecord framing, tensorboardX's protos)."""

import struct
from pathlib import Path

from tensorboardX.proto import event_pb2


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(run_dir).glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            record = data[offset + 12:offset + 12 + length]  # skip the length's CRC
            offset += 12 + length + 4                        # and the record's CRC
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars
