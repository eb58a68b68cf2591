"""The FaceStation datagram format: build, seal, open, parse, chunk, FEC, faces. One import for all of it.

Pure code: no sockets, no threads, no clocks of its own. Everything that comes off the wire is
bounded before use and turned into either a message or a typed :class:`Rejection`; nothing here
raises on hostile input, and nothing is ever unpickled or evaluated. The parts live by concern in
``network/wire/``: ``header`` (layout, types, parse bounds), ``sealing`` (keys, sessions,
ChaCha20-Poly1305), ``control`` (HELLO, SUBSCRIBE, BYE), ``fec`` (chunking, parity, reassembly),
``replay`` (windows and sessions), ``faces`` (the FACES payload of protocol 2).

Datagram layout (all integers big-endian)::

    header (56 bytes, authenticated as associated data)
        magic "FS" | version u8 | type u8 | camera id u32 | session 16 bytes |
        seq u64 | frame id u32 | chunk index u16 | chunk count u16 |
        FEC groups u16 | chunk size u16 | frame length u32 | timestamp us u64
    payload (encrypted) | Poly1305 tag (16 bytes)

Versions: the header's ``version`` (VERSION, 1) is the layout, unchanged since the first station.
HELLO's ``protocol`` (PROTOCOL, 2) says what a sender speaks: 2 adds the FACES and FACES_PARITY
types, chunked like a frame and bound to a stream frame by its id, and ACCEPT. A protocol-2
station answers a protocol-2 HELLO with ACCEPT (a lease, renewed while HELLOs come), and a sender
sends FACES only to stations whose ACCEPT is current. So a protocol-1 sender never gets an ACCEPT,
and a protocol-1 station is never sent FACES; if one is (by a tool, or a forged address), it
refuses those types as malformed before decrypting them and goes on serving the frames. A
protocol-2 station serves protocol-1 senders as before (no faces: it detects itself).
"""

from __future__ import annotations

from network.wire.control import (
    COOKIE_SIZE,
    MAX_NAME_BYTES,
    Accept,
    Bye,
    ControlMessage,
    Hello,
    Subscribe,
    encode_control,
    parse_control,
)
from network.wire.faces import (
    FACES_FORMAT,
    MAX_CROP_BYTES,
    MAX_CROP_SIDE,
    MAX_FACES,
    EdgeFace,
    EdgeFaces,
    encode_faces,
    parse_faces,
)
from network.wire.fec import DEFAULT_GROUP_SIZE, FrameAssembly, split_frame
from network.wire.header import (
    CHUNKED,
    HEADER,
    MAGIC,
    MAX_CHUNKS,
    MAX_CONTROL_PAYLOAD,
    MAX_DATAGRAM,
    MAX_FACES_BYTES,
    MAX_FRAME_BYTES,
    MAX_PAYLOAD,
    MIN_CHUNK,
    PARITY_TYPES,
    PROTOCOL,
    SESSION_SIZE,
    TAG_SIZE,
    VERSION,
    Datagram,
    Header,
    MsgType,
    Reason,
    Rejection,
    chunk_length,
    parse_header,
    session_start_us,
)
from network.wire.replay import REPLAY_WINDOW, ReplayWindow, SessionGuard
from network.wire.sealing import (
    KEY_SIZE,
    KeyError_,
    Opener,
    Sealer,
    camera_id_for,
    decode_key,
    encode_key,
    new_key,
    new_session,
)

__all__ = [
    "CHUNKED",
    "COOKIE_SIZE",
    "DEFAULT_GROUP_SIZE",
    "FACES_FORMAT",
    "HEADER",
    "KEY_SIZE",
    "MAGIC",
    "MAX_CHUNKS",
    "MAX_CONTROL_PAYLOAD",
    "MAX_CROP_BYTES",
    "MAX_CROP_SIDE",
    "MAX_DATAGRAM",
    "MAX_FACES",
    "MAX_FACES_BYTES",
    "MAX_FRAME_BYTES",
    "MAX_NAME_BYTES",
    "MAX_PAYLOAD",
    "MIN_CHUNK",
    "PARITY_TYPES",
    "PROTOCOL",
    "REPLAY_WINDOW",
    "SESSION_SIZE",
    "TAG_SIZE",
    "VERSION",
    "Accept",
    "Bye",
    "ControlMessage",
    "Datagram",
    "EdgeFace",
    "EdgeFaces",
    "FrameAssembly",
    "Header",
    "Hello",
    "KeyError_",
    "MsgType",
    "Opener",
    "Reason",
    "Rejection",
    "ReplayWindow",
    "Sealer",
    "SessionGuard",
    "Subscribe",
    "camera_id_for",
    "chunk_length",
    "decode_key",
    "encode_control",
    "encode_faces",
    "encode_key",
    "new_key",
    "new_session",
    "parse_control",
    "parse_faces",
    "parse_header",
    "session_start_us",
    "split_frame",
]
