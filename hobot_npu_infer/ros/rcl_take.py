"""
A subscription's serialized message taken through rcl's C API, the GIL released.

rclpy's own take (``raw=True``) copies a message twice, into an rcl buffer and then into a
Python ``bytes``, holding the GIL throughout: 0.15 s for one 8K frame, during which no other
thread of the node runs. ``rcl_take_serialized_message`` called through ctypes (which releases
the GIL for a foreign call) copies it once into a buffer that the returned array owns, and the
node's other threads go on meanwhile. Where rcl's library cannot be found in the process (or
rclpy does not give the subscription's address), the take falls back to rclpy's (same bytes,
GIL held).
"""

import ctypes
from typing import Callable, Optional
import weakref

import numpy as np

RCL_RET_OK = 0
RCL_RET_SUBSCRIPTION_TAKE_FAILED = 401  # nothing to take


class _Allocator(ctypes.Structure):
    """rcutils_allocator_t."""

    _fields_ = [('allocate', ctypes.c_void_p), ('deallocate', ctypes.c_void_p),
                ('reallocate', ctypes.c_void_p), ('zero_allocate', ctypes.c_void_p),
                ('state', ctypes.c_void_p)]


class _Uint8Array(ctypes.Structure):
    """rcutils_uint8_array_t, which rcl_serialized_message_t is."""

    _fields_ = [('buffer', ctypes.POINTER(ctypes.c_uint8)), ('buffer_length', ctypes.c_size_t),
                ('buffer_capacity', ctypes.c_size_t), ('allocator', _Allocator)]


def _loaded(name: str) -> Optional[ctypes.CDLL]:
    """Open the library rclpy already loaded in this process (by soname, else by its path)."""
    try:
        return ctypes.CDLL(name)
    except OSError:
        pass
    try:
        with open('/proc/self/maps') as maps:
            paths = {line.split()[-1] for line in maps if line.rstrip().endswith(name)}
    except OSError:
        return None
    for path in paths:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


class _ErrorString(ctypes.Structure):
    """rcutils_error_string_t."""

    _fields_ = [('text', ctypes.c_char * 1024)]


class _Rcl:
    """The C functions a take needs, typed, and the allocator its buffers use."""

    def __init__(self, rcl: ctypes.CDLL, rcutils: ctypes.CDLL):
        self.take = rcl.rcl_take_serialized_message
        self.take.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Uint8Array), ctypes.c_void_p,
                              ctypes.c_void_p]
        self.take.restype = ctypes.c_int
        default_allocator = rcutils.rcutils_get_default_allocator
        default_allocator.restype = _Allocator
        self.allocator = default_allocator()  # malloc and free: the same for every take
        self.init = rcutils.rcutils_uint8_array_init
        self.init.argtypes = [ctypes.POINTER(_Uint8Array), ctypes.c_size_t,
                              ctypes.POINTER(_Allocator)]
        self.init.restype = ctypes.c_int
        self.fini = rcutils.rcutils_uint8_array_fini
        self.fini.argtypes = [ctypes.POINTER(_Uint8Array)]
        self.fini.restype = ctypes.c_int
        self.error_string = rcutils.rcutils_get_error_string
        self.error_string.restype = _ErrorString
        self.reset_error = rcutils.rcutils_reset_error


def _find() -> Optional[_Rcl]:
    rcl, rcutils = _loaded('librcl.so'), _loaded('librcutils.so')
    if rcl is None or rcutils is None:
        return None
    try:
        return _Rcl(rcl, rcutils)
    except AttributeError:  # not the rcl this module was written against
        return None


_RCL = _find()


def available() -> bool:
    """Tell whether takes go through rcl with the GIL released (if not: rclpy's take)."""
    return _RCL is not None


class TakeError(RuntimeError):
    """rcl refused a take for a reason other than an empty queue."""


def serialized_taker(subscription) -> Callable[[], Optional[np.ndarray]]:
    """
    Return what takes the next serialized message of an rclpy ``subscription`` (None: none).

    Resolved once per subscription: rcl's take when rcl is loaded and rclpy gives the
    subscription's address, else rclpy's. A taken message is a 1-D uint8 array; through rcl its
    buffer is rcl's and is freed when the array and every view of it are gone. Callers hold
    ``subscription.handle`` (``with subscription.handle:``) while taking.
    """
    try:
        address = subscription.handle.pointer  # the rcl_subscription_t
    except AttributeError:  # an rclpy that does not give entity addresses
        address = None
    if _RCL is None or address is None:
        return lambda: _rclpy_take(subscription)
    return lambda: _rcl_take(address)


def _rclpy_take(subscription) -> Optional[np.ndarray]:
    taken = subscription.handle.take_message(subscription.msg_type, True)
    return None if taken is None else np.frombuffer(taken[0], np.uint8)


def _rcl_take(address: int) -> Optional[np.ndarray]:
    message = _Uint8Array()
    if _RCL.init(ctypes.byref(message), 0, ctypes.byref(_RCL.allocator)) != RCL_RET_OK:
        _RCL.reset_error()
        raise TakeError('cannot initialise a serialized message')
    ret = _RCL.take(address, ctypes.byref(message), None, None)
    if ret != RCL_RET_OK:
        _RCL.fini(ctypes.byref(message))
        if ret == RCL_RET_SUBSCRIPTION_TAKE_FAILED:
            return None
        reason = _RCL.error_string().text.decode('utf-8', 'replace')
        _RCL.reset_error()
        raise TakeError(f'rcl_take_serialized_message returned {ret}: {reason}')
    if message.buffer_length == 0:
        _RCL.fini(ctypes.byref(message))
        return np.zeros(0, np.uint8)
    array = np.ctypeslib.as_array(message.buffer, shape=(message.buffer_length,))
    weakref.finalize(array, _free, message)
    return array


def _free(message: _Uint8Array) -> None:
    _RCL.fini(ctypes.byref(message))
