"""A station-side process for the SIGKILL test: webhooks through the real outbox to an endpoint that is
down; once ``count`` events are committed to the outbox it says "queued" and waits to be killed.

    python -m tests.outbox_child GALLERY URL COUNT
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from integrations.webhook_config import WebhookEndpoint
from integrations.webhooks import Webhooks
from station.event_bus import EventBus
from station.events import CameraEvent, EventKind
from storage.gallery import Gallery
from storage.outbox import Outbox


def main() -> None:
    path, url, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    gallery = Gallery.open(path, actor="child")
    outbox = Outbox(gallery)
    hooks = Webhooks([WebhookEndpoint(name="sink", url=url, secret="s3cret", timeout_s=1.0)], outbox).start(EventBus())
    for i in range(count):
        hooks.enqueue(CameraEvent(kind=EventKind.CAMERA_ONLINE, at=time.time(), camera=f"cam{i % 3}", address=str(i)))
    while outbox.counts().get("webhook:sink") is None:
        time.sleep(0.05)
    print("queued", outbox.counts()["webhook:sink"].pending, flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main()
