"""The APM's two per-frame calls as prepared FFI requests.

`rtc.AudioProcessingModule.process_stream` builds a protobuf request, serializes it, crosses
into the SDK's native library, copies and parses the response, then drops the response's
handle: 200 times a second in a call (one forward and one reverse 10 ms frame each). For a
frame buffer that is reused, everything in the request is the same every time (the APM's
handle, the buffer's address and size, rate, channels), so `PreparedApmCall` serializes it
once and each call is only the two native calls (request, drop). A success response is always
the same few bytes, so its length tells success from an error, and only an error is parsed.

This reaches into the SDK's FFI client (`FfiClient.instance._ffi_lib`), which is not public:
`prepare` returns None when the installed SDK does not have what it needs, and the caller
then uses the public method (same result, more CPU). The test suite checks that the prepared
calls are what the installed SDK gets and that they give the public method's results.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

log = logging.getLogger(__name__)

FORWARD = "apm_process_stream"
REVERSE = "apm_process_reverse_stream"


class PreparedApmCall:
    """`process_stream` (FORWARD) or `process_reverse_stream` (REVERSE) of one APM on one
    frame whose buffer never moves; calling it processes the frame's samples in place."""

    def __init__(self, apm: Any, kind: str, frame: Any) -> None:
        from livekit.rtc._ffi_client import FfiClient
        from livekit.rtc._proto import ffi_pb2
        from livekit.rtc._utils import get_address

        request = ffi_pb2.FfiRequest()
        fields = getattr(request, kind)
        fields.apm_handle = apm._ffi_handle.handle
        fields.data_ptr = get_address(frame._data)
        fields.size = len(frame._data)
        fields.sample_rate = frame.sample_rate
        fields.num_channels = frame.num_channels
        data = request.SerializeToString()
        self._size = len(data)
        self._request_bytes = (ctypes.c_ubyte * self._size).from_buffer_copy(data)
        success = ffi_pb2.FfiResponse()
        getattr(success, kind).SetInParent()
        self._success_size = len(success.SerializeToString())
        self._kind = kind
        self._response_type = ffi_pb2.FfiResponse
        self._frame = frame  # its buffer must live as long as the request that points at it
        lib = FfiClient.instance._ffi_lib
        self._request = lib.livekit_ffi_request
        self._drop = lib.livekit_ffi_drop_handle
        self._response = ctypes.POINTER(ctypes.c_ubyte)()
        self._response_size = ctypes.c_size_t()
        self._response_ref = ctypes.byref(self._response)
        self._response_size_ref = ctypes.byref(self._response_size)

    def __call__(self) -> None:
        handle = self._request(self._request_bytes, self._size, self._response_ref, self._response_size_ref)
        size = self._response_size.value
        error = ""
        if size != self._success_size:
            response = self._response_type.FromString(ctypes.string_at(self._response, size))
            error = getattr(response, self._kind).error or f"unexpected response of {size} bytes"
        self._drop(handle)
        if error:
            raise RuntimeError(error)


def prepare(apm: Any, kind: str, frame: Any) -> PreparedApmCall | None:
    """The prepared call, or None when the installed SDK lacks a part it needs."""
    try:
        return PreparedApmCall(apm, kind, frame)
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        log.info("APM calls through the SDK's public methods (%s: %s)", type(exc).__name__, exc)
        return None
