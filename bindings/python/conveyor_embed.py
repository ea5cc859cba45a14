# SPDX-License-Identifier: MIT
"""conveyor_embed - a Conveyor pipeline inside a Python program.

Pure Python over libconveyor's embedding calls (conveyor/host.h), with
ctypes and the standard library only.  The vocabulary is Python Conveyor's:

    from conveyor_embed import Pipeline

    with Pipeline("pipeline.ini") as pl:        # open(): every stage starts
        print(pl.run([b"a", b"b"]))             # the outputs, in input order
        pl.push(b"c")
        pl.flush()
        print(pl.pull())                        # one output
                                                # close(): every fini runs

The stage processes live from open() to close(), batch after batch.  The
pipeline's input, output and framing keys are not used: the program is the
source and the sink.

The library is found through $CONVEYOR_LIBRARY (a path), else as
libconveyor.so.0 where the dynamic linker looks.
"""

import ctypes
import ctypes.util
import errno
import os

__all__ = ["Pipeline", "ConveyorError", "END"]

#: What pull() returns once the run ended and every output was pulled.
END = None

_RUN_END = 1
_EXIT_OK = 0

_RESULT_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64,
                              ctypes.c_void_p, ctypes.c_size_t)


class ConveyorError(Exception):
    """The pipeline could not be opened or started, or it failed.

    ``status`` is conveyor-host's exit code for it (1 a stage failed or
    crashed, 2 a bad configuration, 3 a plugin that could not be loaded);
    the message is what conveyor-host would print."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


def _load():
    path = os.environ.get("CONVEYOR_LIBRARY")
    if not path:
        path = ctypes.util.find_library("conveyor") or "libconveyor.so.0"
    lib = ctypes.CDLL(path)
    p, run, sz, u64 = ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64
    sigs = {
        "conveyor_pipeline_open": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(p),
                                                  ctypes.c_char_p, sz]),
        "conveyor_pipeline_close": (None, [p]),
        "conveyor_pipeline_start": (ctypes.c_int, [p, ctypes.POINTER(run)]),
        "conveyor_run_push": (ctypes.c_int, [run, ctypes.c_char_p, sz, ctypes.c_int]),
        "conveyor_run_pushed": (u64, [run]),
        "conveyor_run_pull": (ctypes.c_int, [run, ctypes.POINTER(p), ctypes.POINTER(sz),
                                             ctypes.POINTER(u64), ctypes.c_int]),
        "conveyor_run_flush": (ctypes.c_int, [run, ctypes.c_int]),
        "conveyor_run_fd": (ctypes.c_int, [run]),
        "conveyor_run_batch": (ctypes.c_int, [run, ctypes.POINTER(ctypes.c_char_p),
                                              ctypes.POINTER(sz), sz, _RESULT_FN, p]),
        "conveyor_run_finish": (ctypes.c_int, [run]),
        "conveyor_run_stop": (ctypes.c_int, [run]),
        "conveyor_run_error": (ctypes.c_char_p, [run]),
        "conveyor_run_host_pid": (ctypes.c_long, [run]),
        "conveyor_run_free": (None, [run]),
        "conveyor_set_verbosity": (None, [ctypes.c_int]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return lib


_lib = None


def _library():
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def _ms(timeout):
    """Seconds (None: no limit) as the library's milliseconds."""
    if timeout is None:
        return -1
    return max(0, int(timeout * 1000))


class Pipeline:
    """A pipeline.ini run inside this program.

    ``verbosity`` is conveyor-host's: 0 errors only (the default here),
    1 adds the summary at the end of the run, 2 and 3 more."""

    def __init__(self, ini_path, verbosity=0):
        self.ini_path = os.fspath(ini_path)
        self.verbosity = verbosity
        self._pl = None
        self._run = None
        self.status = None

    # -- open / close ------------------------------------------------------

    def open(self):
        """Loads the pipeline and starts every stage (every init runs)."""
        if self._run is not None:
            return self
        lib = _library()
        lib.conveyor_set_verbosity(self.verbosity)
        err = ctypes.create_string_buffer(2048)
        pl = ctypes.c_void_p()
        rc = lib.conveyor_pipeline_open(self.ini_path.encode(), ctypes.byref(pl), err,
                                        len(err))
        if rc != _EXIT_OK:
            raise ConveyorError(err.value.decode(errors="replace"), rc)
        run = ctypes.c_void_p()
        rc = lib.conveyor_pipeline_start(pl, ctypes.byref(run))
        if rc != _EXIT_OK:
            message = ""
            if run:
                why = lib.conveyor_run_error(run)
                message = why.decode(errors="replace") if why else ""
                lib.conveyor_run_free(run)
            lib.conveyor_pipeline_close(pl)
            raise ConveyorError(message or "the pipeline did not start", rc)
        self._pl, self._run, self.status = pl, run, None
        return self

    def close(self):
        """Ends the stream (every fini runs) and waits for every process.
        Outputs not pulled yet are dropped.  Returns the status (0);
        raises ConveyorError when the pipeline failed."""
        if self._run is None:
            return self.status
        lib = _library()
        status = lib.conveyor_run_finish(self._run)
        why = lib.conveyor_run_error(self._run)
        self._free()
        self.status = status
        if status != _EXIT_OK:
            raise ConveyorError(why.decode(errors="replace") if why else
                                "the pipeline ended with status %d" % status, status)
        return status

    def stop(self):
        """Stops every process at once; returns the status."""
        if self._run is None:
            return self.status
        self.status = _library().conveyor_run_stop(self._run)
        self._free()
        return self.status

    def _free(self):
        lib = _library()
        lib.conveyor_run_free(self._run)
        lib.conveyor_pipeline_close(self._pl)
        self._run = self._pl = None

    def __enter__(self):
        return self.open()

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.close()
        else:
            self.stop()
        return False

    def __del__(self):
        if getattr(self, "_run", None) is not None and _lib is not None:
            self.stop()

    # -- items ---------------------------------------------------------------

    def _live(self):
        if self._run is None:
            raise ValueError("the pipeline is not open")
        return self._run

    def _failed(self, rc, what):
        if rc == -errno.EAGAIN:
            raise TimeoutError(what + ": the time ran out")
        if rc == -errno.EPIPE:
            why = _library().conveyor_run_error(self._run)
            raise ConveyorError(why.decode(errors="replace") if why else
                                "the pipeline was stopped")
        raise OSError(-rc, what + ": " + os.strerror(-rc))

    def push(self, item, timeout=None):
        """Pushes one item (bytes); waits while the pipeline is full, up to
        TIMEOUT seconds (None: no limit), then raises TimeoutError."""
        run = self._live()
        data = bytes(item)
        rc = _library().conveyor_run_push(run, data, len(data), _ms(timeout))
        if rc != 0:
            self._failed(rc, "push")

    def pull(self, timeout=None, with_seq=False):
        """The next output (bytes), or END (None) once close() ended the
        run and every output was pulled.  Waits up to TIMEOUT seconds
        (None: no limit), then raises TimeoutError.  WITH_SEQ: a pair
        (output, number of the pushed item it descends from, from 1)."""
        run = self._live()
        item, length, seq = ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_uint64()
        rc = _library().conveyor_run_pull(run, ctypes.byref(item), ctypes.byref(length),
                                          ctypes.byref(seq), _ms(timeout))
        if rc == _RUN_END:
            return END
        if rc != 0:
            self._failed(rc, "pull")
        data = ctypes.string_at(item, length.value) if length.value else b""
        return (data, seq.value) if with_seq else data

    def flush(self, timeout=None):
        """Returns once every item pushed so far has gone through the
        pipeline and its outputs can be pulled; the processes go on."""
        rc = _library().conveyor_run_flush(self._live(), _ms(timeout))
        if rc != 0:
            self._failed(rc, "flush")

    def run(self, items):
        """Pushes every item of ITEMS (bytes) and returns their outputs, a
        list in input order, pulling while it pushes."""
        run = self._live()
        data = [bytes(i) for i in items]
        n = len(data)
        arr = (ctypes.c_char_p * max(n, 1))(*data)
        lens = (ctypes.c_size_t * max(n, 1))(*[len(d) for d in data])
        outputs = []

        def got(arg, index, seq, item, length):
            outputs.append(ctypes.string_at(item, length) if length else b"")

        rc = _library().conveyor_run_batch(run, arr, lens, n, _RESULT_FN(got), None)
        if rc != 0:
            self._failed(rc, "run")
        return outputs

    @property
    def pushed(self):
        """How many items were pushed so far."""
        return _library().conveyor_run_pushed(self._live())

    @property
    def host_pid(self):
        """The pid of the run's host process (the program's one child)."""
        return _library().conveyor_run_host_pid(self._live())

    def fileno(self):
        """A descriptor readable when an output can be pulled (for select
        and selectors); after pull(timeout=0) raised TimeoutError it stays
        unreadable until something comes."""
        return _library().conveyor_run_fd(self._live())
