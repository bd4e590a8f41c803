"""Commands run by a forked copy of a warm interpreter instead of a fresh one.

A fresh ``yieldmc`` process spends about 2.5 CPU-seconds importing JAX, Hydra, xarray and
zarr before it reads its command line, and the suite runs about a hundred of them. Here one
interpreter per test worker and per (interpreter, environment) imports them once and then
forks for each command. The child is what a fresh process would be by the time it reads its
command line: the same interpreter and environment (a command whose environment differs in
anything but the shell's ``PWD``, ``SHLVL``, ``_``, pytest's ``PYTEST_CURRENT_TEST`` or
yieldmc's ``YIELDMC_*`` gets an interpreter of its own; what the imports set, such as
yieldmc's ``XLA_FLAGS``, is set again), its own working directory, ``sys.argv`` and
``sys.path[0]``, stdin on /dev/null, stdout and stderr on pipes read like
``subprocess.run(..., capture_output=True, text=True)``; it runs the command's own entry
(the console script file or ``-m module``) and ends the way a fresh interpreter does
(atexit handlers, flushed streams, the exit status of ``SystemExit`` or 1 after a
traceback). The interpreter never starts JAX's backend, so no XLA thread exists to be
forked.

What it cannot stand in for, the tests run in a real process with :mod:`subprocess`:
signals sent to the command, closed or terminal streams, ``--help`` without JAX imported,
and anything timed by its start.

:func:`run` takes a command as ``subprocess.run`` does (a list, or a ``bash -c`` line) and
falls back to ``subprocess.run`` for what it cannot run this way: a shell line with more
than quoted words (globs, variables, redirections, ``&&``), a program other than yieldmc's
own entries in this interpreter's environment (its console scripts, ``python -m
yieldmc…``; a script may set up its process before its imports), or an interpreter that
printed or warned while importing. ``YIELDMC_TESTS_FRESH_PROCESSES=1`` makes every command
a fresh process (to check that the two agree).
"""

from __future__ import annotations

import atexit
import io
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

#: What the interpreter imports before it forks: what a ``yieldmc`` run imports anyway.
PRELOAD = ("numpy", "scipy.special", "scipy.stats", "jax", "jax.numpy", "hydra", "hydra.main", "omegaconf",
           "xarray", "zarr", "yaml", "yieldmc.io.cli", "yieldmc.job", "yieldmc.io.store",
           "yieldmc.engine.blocks", "yieldmc.configuration.schema", "yieldmc.io.help")
#: Environment variables a shell or pytest sets per command, read by nothing at import; so
#: are yieldmc's own ``YIELDMC_*`` (read by the functions that use them, never at import).
PER_COMMAND = ("PWD", "OLDPWD", "SHLVL", "_", "PYTEST_CURRENT_TEST")
_MAX_SERVERS = 4


def _per_command(key: str) -> bool:
    return key in PER_COMMAND or key.startswith("YIELDMC_")
# a word of a shell line that bash passes on unchanged once its quotes are removed
_PLAIN = re.compile(r"""(?:[A-Za-z0-9_./=:,+@%-]|'[^']*'|"[^"$`\\!]*")+""")


# --------------------------------------------------------------------------- the client
class _Server:
    """One warm interpreter: ``executable`` started with ``env`` (a dict)."""

    def __init__(self, executable: str, env: dict):
        self.executable, self.env = executable, env
        self.log = tempfile.NamedTemporaryFile(prefix="yieldmc-warm-", suffix=".log", delete=False)  # noqa: SIM115
        ours, theirs = socket.socketpair()
        self.sock = ours
        self.home = tempfile.mkdtemp(prefix="yieldmc-warm-")  # its working directory: empty
        code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import warm_process; "
                f"warm_process.serve({theirs.fileno()})")
        self.proc = subprocess.Popen([executable, "-c", code], env=env, cwd=self.home, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log, pass_fds=[theirs.fileno()])
        theirs.close()
        self.reader = self.sock.makefile("r", encoding="utf-8")
        hello = self.reader.readline().strip()
        printed = Path(self.log.name).read_text()
        self.fit = hello == "ready" and not printed
        if not self.fit:
            warnings.warn(f"the warm interpreter is not used (commands run in fresh processes): "
                          f"{hello or 'it did not start'} {printed[-2000:]}", stacklevel=3)

    def close(self):
        self.reader.close()
        self.sock.close()  # the interpreter ends when it reads the end of the socket
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        Path(self.log.name).unlink(missing_ok=True)
        shutil.rmtree(self.home, ignore_errors=True)

    def run(self, request: dict, *, args, timeout) -> subprocess.CompletedProcess:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            socket.send_fds(self.sock, [json.dumps(request).encode() + b"\n"], [out_w, err_w])
        finally:
            os.close(out_w)
            os.close(err_w)
        pid = int(self.reader.readline().split()[1])
        deadline = None if timeout is None else time.monotonic() + timeout
        chunks = {out_r: [], err_r: []}
        with selectors.DefaultSelector() as sel:
            for fd in chunks:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    os.kill(pid, signal.SIGKILL)
                    self.reader.readline()
                    for fd in chunks:
                        os.close(fd)
                    raise subprocess.TimeoutExpired(args, timeout, b"".join(chunks[out_r]), b"".join(chunks[err_r]))
                for key, _ in sel.select(left):
                    data = os.read(key.fd, 65536)
                    if data:
                        chunks[key.fd].append(data)
                    else:
                        sel.unregister(key.fd)
        os.close(out_r)
        os.close(err_r)
        status = int(self.reader.readline().split()[1])
        return subprocess.CompletedProcess(args, os.waitstatus_to_exitcode(status),
                                           _text(b"".join(chunks[out_r])), _text(b"".join(chunks[err_r])))


def _text(data: bytes) -> str:
    """Bytes decoded as ``subprocess.run(..., text=True)`` decodes them (universal newlines)."""
    return io.TextIOWrapper(io.BytesIO(data)).read()


_servers: dict = {}


def _server(executable: str, env: dict) -> _Server | None:
    key = (executable, tuple(sorted((k, v) for k, v in env.items() if not _per_command(k))))
    server = _servers.pop(key, None)
    if server is None or server.proc.poll() is not None:
        while len(_servers) >= _MAX_SERVERS:
            _servers.pop(next(iter(_servers))).close()
        server = _Server(executable, {k: v for k, v in env.items() if not _per_command(k)})
    _servers[key] = server  # the most recently used last
    return server if server.fit else None


def _venv_program(name: str, env: dict) -> str | None:
    """The path of ``name`` found on the command's PATH, when it is in this interpreter's bin directory."""
    found = shutil.which(name, path=env.get("PATH", os.defpath))
    if found and Path(found).parent == Path(sys.executable).parent:
        return found
    return None


def _plan(argv: list, env: dict):
    """(interpreter, request) for a command this module can run, else None."""
    if os.environ.get("YIELDMC_TESTS_FRESH_PROCESSES") == "1" or not argv:
        return None
    program = argv[0] if "/" in argv[0] else _venv_program(argv[0], env)
    if program is None:
        return None
    program = os.path.abspath(program)
    if Path(program).parent != Path(sys.executable).parent:
        return None
    if re.fullmatch(r"python3?(\.\d+)?", Path(program).name):
        rest = argv[1:]
        if rest[:1] == ["-m"] and len(rest) > 1 and rest[1].split(".")[0] == "yieldmc":
            return program, {"kind": "module", "target": rest[1], "args": rest[2:]}
        return None  # a script may set up its process before its imports (threads, flags)
    with open(program, "rb") as f:
        text = f.read(4096).decode(errors="replace")
    first = text.splitlines()[0] if text else ""
    interpreter = first[2:].strip()
    if (not first.startswith("#!") or " " in interpreter or Path(interpreter).parent != Path(sys.executable).parent
            or not re.search(r"^from yieldmc[.\w]* import main$", text, re.M)):
        return None  # not a console script of yieldmc's
    return interpreter, {"kind": "script", "target": program, "args": argv[1:]}


def shell_words(line: str) -> list | None:
    """The words of a ``bash -c`` line made of plain and quoted words only, else None."""
    words = line.split()
    if not words or not all(_PLAIN.fullmatch(w) for w in words):
        return None
    return [re.sub(r"""'([^']*)'|"([^"]*)\"""", lambda m: m.group(1) if m.group(1) is not None else m.group(2), w)
            for w in words]


def run(args, *, cwd, env=None, timeout=None, shell_line=False) -> subprocess.CompletedProcess:
    """``subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)``,
    by a warm interpreter where that is the same (see the module docstring).

    With ``shell_line=True`` ``args`` is one line for ``bash -c``; a line of plain and quoted
    words runs as bash would exec it (``PWD``, ``SHLVL`` and ``_`` set as bash sets them).
    """
    env = dict(os.environ if env is None else env)
    cwd = os.path.abspath(cwd)
    argv = shell_words(args) if shell_line else [str(a) for a in args]
    plan = _plan(argv, env) if argv else None
    if plan is not None:
        if shell_line:
            env.update(PWD=cwd, SHLVL=str(int(env.get("SHLVL", "0") or 0) + 1),
                       _=_venv_program(argv[0], env) or argv[0])
        interpreter, request = plan
        server = _server(interpreter, env)
        if server is not None:
            request.update(cwd=cwd, env=env)
            return server.run(request, args=["bash", "-c", args] if shell_line else args, timeout=timeout)
    command = ["bash", "-c", args] if shell_line else args
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def close_all():
    """End the warm interpreters of this process (each also ends when this process does)."""
    while _servers:
        _servers.popitem()[1].close()


atexit.register(close_all)


# --------------------------------------------------------------------------- the server
_IMPORTS_SET: dict = {}
_IMPORTS_UNSET: list = []


def serve(fd: int) -> None:
    """The warm interpreter's main: import :data:`PRELOAD`, then fork once per request; a
    child becomes the request's command and ends as that command ends."""
    _start(_fork_per_request(fd))  # only a child gets here; the interpreter then ends as the command's would


def _fork_per_request(fd: int) -> dict:
    """Serve requests on socket ``fd``; returns the request in a forked child."""
    sock = socket.socket(fileno=fd)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    import importlib

    before = dict(os.environ)
    with warnings.catch_warnings(record=True) as caught:  # the default filters: what a fresh run shows
        for name in PRELOAD:
            importlib.import_module(name)
    from jax._src import xla_bridge

    global _IMPORTS_SET, _IMPORTS_UNSET  # what the imports did to the environment (yieldmc sets XLA_FLAGS)
    _IMPORTS_SET = {k: v for k, v in os.environ.items() if before.get(k) != v}
    _IMPORTS_UNSET = [k for k in before if k not in os.environ]

    fit = not caught and not xla_bridge._backends  # nothing shown that a fresh run would show; no XLA thread
    sock.sendall(b"ready\n" if fit else f"unfit {[str(w.message) for w in caught]}\n".encode())
    buffer = b""
    while True:
        data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 2)
        if not data:
            os._exit(0)  # the client has gone
        buffer += data
        if not buffer.endswith(b"\n"):
            continue
        request, buffer = json.loads(buffer), b""
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.dup2(fds[0], 1)
            os.dup2(fds[1], 2)
            for f in (*fds, devnull):
                os.close(f)
            sock.close()
            return request
        for f in fds:
            os.close(f)
        sock.sendall(f"pid {pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        sock.sendall(f"status {status}\n".encode())


def _start(request: dict) -> None:
    """Become the command: its directory, environment, argv, ``sys.path[0]`` and a fresh
    ``__main__``, then its entry."""
    import importlib
    import runpy

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.update(_IMPORTS_SET)  # as the same imports leave it in a fresh process
    for key in _IMPORTS_UNSET:
        os.environ.pop(key, None)
    target, kind = request["target"], request["kind"]
    sys.path.remove(str(Path(__file__).parent))  # what serve's command line put first
    sys.path[0] = os.getcwd() if kind == "module" else os.path.dirname(os.path.realpath(target))
    importlib.invalidate_caches()
    main = sys.modules["__main__"].__dict__  # as a fresh interpreter has it
    builtins = main["__builtins__"]
    main.clear()
    main.update(__name__="__main__", __doc__=None, __package__=None, __loader__=None, __spec__=None,
                __annotations__={}, __builtins__=builtins)
    sys.argv = [target, *request["args"]]
    if kind == "module":
        runpy._run_module_as_main(target)  # what `python -m target` runs
    else:
        runpy.run_path(target, run_name="__main__")  # what `python target` runs
