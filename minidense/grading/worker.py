"""The worker: the only process that ever runs a student's code, inside its box.

The grader starts it (see sandbox.py) as the first process of fresh Linux namespaces. It reads
its configuration from the request pipe (nothing of it is on its command line), and it

1. joins the box's cgroups (memory and processes bounded for the box as a whole, where the
   machine allows), then imports NumPy and minidense while it still sees the whole machine;
2. builds the box's filesystem (``enter_box``): an empty root holding read-only copies (bind
   mounts) of the Python installation, the student's task files at /submission and a private,
   writable /tmp; not the library's source, not the exercises' tests or solutions, not the home
   folder; no network (an empty network namespace), its own process numbers and /proc;
3. switches off the library code the task forbids (``switch_off``): every forbidden function's
   code is replaced *in place* by one that raises ``ForbiddenUse``, so whatever route reaches it
   (an import, ``sys.modules``, ``getattr``, the garbage collector) finds the stub;
4. drops root for an unprivileged uid of its own, sets resource limits (CPU time, memory, open
   files, processes, file size), takes a fresh, empty session keyring and installs a seccomp
   filter that refuses every keyring call (``close_keyrings``), and loads the student's module;
5. answers the grader's requests (``serve``): call this function with these values, read this
   attribute, run backward from this output. Requests and answers are plain data (wire.py).

Whatever the student's code does here (patch NumPy, replace this module's functions, fork, kill)
can only change what the worker answers, and every answer is checked on the grader's side.
"""
import ctypes
import ctypes.util
import importlib
import importlib.util
import os
import pkgutil
import resource
import signal
import sys
import traceback
from collections import OrderedDict

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 32, 4096, 8192, 16384, 1 << 18
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
KEYCTL_JOIN_SESSION_KEYRING = 1
# The key management system calls (add_key, request_key, keyctl) per architecture, as the
# seccomp filter sees it: (audit architecture, their numbers, first number of another ABI).
KEY_SYSCALLS = {"x86_64": (0xC000003E, (248, 249, 250), 0x40000000),   # x32 numbers from 2^30
                "aarch64": (0xC00000B7, (217, 218, 219), None)}
MAX_GRAPHS = 2000                     # recorded graphs kept for backward requests
BOX_SUBMISSION = "/submission"        # where the student's files are, inside the box


class ForbiddenUse(NotImplementedError):
    """The student's code reached library code the task asks them to write themselves."""


# ----------------------------------------------------------------------------------------------
# 2. The box's filesystem
# ----------------------------------------------------------------------------------------------
_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return _libc


def _mount(source, target, fstype, flags, data=None):
    encode = lambda s: None if s is None else os.fsencode(s)   # noqa: E731
    if libc().mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags),
                   encode(data)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


def _bind(path, root, read_only=True):
    """Show host ``path`` (a folder or a file) at the same place inside ``root``."""
    inside = root + path
    if os.path.isdir(path):
        os.makedirs(inside, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        open(inside, "a").close()
    _mount(path, inside, None, MS_BIND | MS_REC)
    if read_only:
        _mount(None, inside, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def enter_box(plan):
    """Build the box's root in ``plan['root']`` (a folder of the host) and move into it."""
    root = plan["root"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)           # nothing leaks back to the host
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755")
    # The private /tmp first: a Python installed under /tmp (a virtual environment there) is
    # then bound on top of it, read-only, instead of being covered by it.
    os.makedirs(root + "/tmp")
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={plan['tmp_bytes']},mode=1777")
    for link, target in plan["symlinks"]:                  # /bin -> usr/bin on merged-/usr systems
        os.makedirs(os.path.dirname(root + link), exist_ok=True)
        os.symlink(target, root + link)
    for path in plan["read_only"]:
        _bind(path, root)
    for path in plan["hidden"]:                            # e.g. the library's source, torch
        os.makedirs(root + path, exist_ok=True)
        _mount("tmpfs", root + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
    os.makedirs(root + BOX_SUBMISSION)
    _mount(plan["submission"], root + BOX_SUBMISSION, None, MS_BIND | MS_REC)
    _mount(None, root + BOX_SUBMISSION, None,
           MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.makedirs(root + "/dev", exist_ok=True)
    for device in ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"):
        _bind(device, root, read_only=False)
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(root)
    _mount(root, "/", None, MS_MOVE)                      # the box's root covers the host's
    os.chroot(".")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir("/tmp")


def join_cgroups(folders):
    """Move this process (and so everything it starts) into the box's cgroups."""
    for folder in folders:
        with open(os.path.join(folder, "cgroup.procs"), "w") as procs:
            procs.write("0")


def _bpf_filter_refusing(architecture, numbers, foreign_abi):
    """A classic BPF seccomp program: system calls ``numbers`` (and any call of another
    architecture or ABI) fail with EPERM; everything else is allowed."""
    load_word, jump_equal, jump_at_least, ret = 0x20, 0x15, 0x35, 0x06
    allow, refuse = 0x7FFF0000, 0x00050000 | 1               # SECCOMP_RET_ALLOW, _ERRNO(EPERM)
    program = [(load_word, 0, 0, 4),                          # seccomp_data.arch
               (jump_equal, 1, 0, architecture),
               (ret, 0, 0, refuse),
               (load_word, 0, 0, 0)]                          # seccomp_data.nr
    if foreign_abi is not None:
        program += [(jump_at_least, 0, 1, foreign_abi), (ret, 0, 0, refuse)]
    for number in numbers:
        program += [(jump_equal, 0, 1, number), (ret, 0, 0, refuse)]
    return program + [(ret, 0, 0, allow)]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def close_keyrings():
    """A fresh, empty session keyring, then no way to reach any keyring: add_key, request_key
    and keyctl fail with EPERM for this process and everything it starts (a seccomp filter,
    which nothing can remove). No key of the grader's, of another worker or of the uid's
    persistent keyring can be read, changed or left behind."""
    import platform
    machine = platform.machine()
    if machine not in KEY_SYSCALLS:
        raise OSError(f"no keyring filter for this machine ({machine})")
    architecture, numbers, foreign_abi = KEY_SYSCALLS[machine]
    libc().syscall(ctypes.c_long(numbers[2]), ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING),
                   ctypes.c_void_p(None))
    instructions = _bpf_filter_refusing(architecture, numbers, foreign_abi)
    array = (_SockFilter * len(instructions))(*[_SockFilter(*i) for i in instructions])
    program = _SockFprog(len(instructions), array)
    libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if libc().prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
                    ctypes.byref(program), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        raise OSError(ctypes.get_errno(), "installing the keyring filter failed")


def drop_privileges(config):
    """Become an unprivileged user with hard resource limits; nothing can undo it later."""
    if config["isolation"] == "user-namespaces":
        # Root inside a user namespace could unmount what hides the library; a nested user and
        # mount namespace locks every mount made so far.
        if libc().unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare of the nested user namespace failed")
    elif os.getuid() == 0 and config["uid"] is not None:
        os.setgroups([])
        os.setgid(config["uid"])
        os.setuid(config["uid"])
    limits = config["limits"]
    for name, value in (("RLIMIT_CPU", limits["cpu_seconds"]), ("RLIMIT_AS", limits["memory"]),
                        ("RLIMIT_NOFILE", 64), ("RLIMIT_NPROC", limits["processes"]),
                        ("RLIMIT_FSIZE", limits["file_size"]), ("RLIMIT_CORE", 0)):
        if hasattr(resource, name):
            resource.setrlimit(getattr(resource, name), (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # a too-big write fails, not kills
    libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if sys.platform.startswith("linux"):
        close_keyrings()


# ----------------------------------------------------------------------------------------------
# 3. Switching off forbidden library code
# ----------------------------------------------------------------------------------------------
def import_library():
    """Import all of minidense that student code may use, before its source goes out of view."""
    import numpy  # noqa: F401
    import numpy.random  # noqa: F401  (loaded lazily by NumPy; later the folder may be closed)
    import minidense
    skip = ("minidense.grading", "minidense.__main__", "minidense.bench", "minidense.train",
            "minidense.analysis.cli", "minidense.models.torch_reference")
    for info in pkgutil.walk_packages(minidense.__path__, "minidense."):
        if not info.name.startswith(skip):
            try:
                importlib.import_module(info.name)
            except ImportError:                         # an optional extra that is not installed
                pass


def _forbidden_objects(forbidden):
    """{id: (object, qualified name)} for the functions and classes the task forbids."""
    found = {}
    for name in forbidden:
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            obj = sys.modules.get(".".join(parts[:cut]))
            if obj is not None:
                for attribute in parts[cut:]:
                    obj = getattr(obj, attribute, None)
                break
        if obj is None:
            continue
        if type(obj) is type(sys):                        # a module: everything defined below it
            prefix = obj.__name__
            for module_name, module in list(sys.modules.items()):
                if module_name == prefix or module_name.startswith(prefix + "."):
                    for value in vars(module).values():
                        if getattr(value, "__module__", None) == module_name and \
                                (isinstance(value, type) or callable(value)):
                            found[id(value)] = (value, f"{module_name}.{value.__name__}")
        elif callable(obj):
            found[id(obj)] = (obj, name)
    return found


def _stub_code(message, freevars):
    """A code object that raises ForbiddenUse(message), with the closure layout of the original."""
    names = ", ".join(freevars)
    uses = f"\n        {names}" if freevars else ""
    source = (f"def make():\n    {' = '.join(freevars) + ' = None' if freevars else 'pass'}\n"
              f"    def stub(*args, **kwargs):{uses}\n"
              f"        raise ForbiddenUse({message!r})\n    return stub\n")
    namespace = {"ForbiddenUse": ForbiddenUse}
    exec(compile(source, "<switched off>", "exec"), namespace)
    return namespace["make"]().__code__


def _switch_off_function(function, message):
    if hasattr(function, "__code__"):
        function.__code__ = _stub_code(message, function.__code__.co_freevars)


def switch_off(forbidden, task_id):
    """Replace the code of every forbidden function (and every method of a forbidden class)."""
    import builtins
    builtins.ForbiddenUse = ForbiddenUse     # the stubs run with the library module's globals
    switched = _forbidden_objects(forbidden)
    for obj, qualified in switched.values():
        short = qualified.rsplit(".", 1)[-1]
        message = (f"this task ({task_id}) asks you to write {short} yourself: the library's "
                   f"{qualified} is switched off while grading")
        if isinstance(obj, type):
            for value in vars(obj).values():
                function = getattr(value, "__func__", value)
                _switch_off_function(getattr(function, "fget", function), message)
        else:
            _switch_off_function(obj, message)
    return {id(obj) for obj, _ in switched.values()}


# ----------------------------------------------------------------------------------------------
# 4. Loading the student's module
# ----------------------------------------------------------------------------------------------
def load_student_module(task_id, path, switched_ids):
    spec = importlib.util.spec_from_file_location(f"student_{task_id}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    used = sorted({name for name, value in vars(module).items() if id(value) in switched_ids})
    if used:
        raise ForbiddenUse(f"the module uses library code this task forbids: {', '.join(used)}")
    return module


# ----------------------------------------------------------------------------------------------
# 5. Answering requests
# ----------------------------------------------------------------------------------------------
class Server:
    """Holds the student's module, the objects handed out as handles and recorded graphs."""

    def __init__(self, module, wire, md):
        self.module, self.wire, self.md = module, wire, md
        self.objects, self.numbers = {}, {}     # handle number -> object; id(object) -> number
        self.graphs = OrderedDict()             # node id -> (output Tensor, input leaves)
        self.next_node = 1

    # values coming in ---------------------------------------------------------------------
    def incoming(self, value, leaves):
        wire, md = self.wire, self.md
        if isinstance(value, wire.TensorValue):
            leaf = md.tensor(value.array, requires_grad=value.requires_grad)
            leaves.append(leaf)
            return leaf
        if isinstance(value, wire.Handle):
            if value.number not in self.objects:
                raise LookupError("this object belongs to a worker that has ended")
            return self.objects[value.number]
        if isinstance(value, list):
            return [self.incoming(v, leaves) for v in value]
        if isinstance(value, tuple):
            return tuple(self.incoming(v, leaves) for v in value)
        if isinstance(value, dict):
            return {k: self.incoming(v, leaves) for k, v in value.items()}
        return value

    # values going out ---------------------------------------------------------------------
    def handle(self, obj):
        if id(obj) not in self.numbers:
            number = len(self.objects) + 1
            self.objects[number], self.numbers[id(obj)] = obj, number
        return self.wire.Handle(self.numbers[id(obj)], type(obj).__name__)

    def outgoing(self, value, leaves, record, depth=0):
        import numpy
        wire, md = self.wire, self.md
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (numpy.ndarray, numpy.generic)) \
                and value.dtype.name in wire.NUMERIC_DTYPES:
            return numpy.asarray(value) if isinstance(value, numpy.ndarray) else value
        if isinstance(value, md.Tensor):
            data = numpy.asarray(value.detach().numpy())
            node = None
            if record and value.requires_grad and data.dtype.name in wire.NUMERIC_DTYPES:
                node, self.next_node = self.next_node, self.next_node + 1
                self.graphs[node] = (value, leaves)
                while len(self.graphs) > MAX_GRAPHS:
                    self.graphs.popitem(last=False)
            return wire.TensorValue(data, value.requires_grad, node)
        if isinstance(value, type) and issubclass(value, numpy.generic) or \
                isinstance(value, numpy.dtype):
            return value
        if depth < wire.MAX_DEPTH - 2:
            if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
                items = [self.outgoing(v, leaves, record, depth + 1) for v in value]
                return items if isinstance(value, list) else tuple(items)
            if type(value) in (dict, OrderedDict) and all(isinstance(k, str) for k in value):
                return {k: self.outgoing(v, leaves, record, depth + 1) for k, v in value.items()}
        return self.handle(value)

    # requests -----------------------------------------------------------------------------
    def answer(self, request):
        operation = request["op"]
        target = self.module if request.get("object") is None else \
            self.incoming(self.wire.Handle(request["object"], ""), [])
        if operation == "getattr":
            return self.outgoing(getattr(target, request["name"]), [], False), []
        if operation == "setattr":
            setattr(target, request["name"], self.incoming(request["value"], []))
            return None, []
        if operation == "call":
            return self.call(target, request)
        if operation == "backward":
            return self.backward(request["node"], request["grad"]), []
        raise ValueError(f"unknown request {operation!r}")

    def call(self, target, request):
        import numpy
        leaves = []
        function = getattr(target, request["name"]) if request.get("name") else target
        args = self.incoming(request["args"], leaves)
        kwargs = self.incoming(request["kwargs"], leaves)
        before = [(path, array.copy()) for path, array in _arrays_in((args, kwargs))]
        result = function(*args, **kwargs)
        changed = [[path, numpy.asarray(now)] for (path, old), (_, now)
                   in zip(before, _arrays_in((args, kwargs)))
                   if now.shape == old.shape and now.tobytes() != old.tobytes()]
        return self.outgoing(result, leaves, bool(request.get("record"))), changed

    def backward(self, node, grad):
        if node not in self.graphs:
            raise LookupError("this output's graph is no longer kept; run the forward again")
        output, leaves = self.graphs[node]
        for leaf in leaves:
            leaf.grad = None
        output.backward(self.md.tensor(grad), retain_graph=True)
        return [None if leaf.grad is None else leaf.grad.numpy() for leaf in leaves]


def _arrays_in(value, path=()):
    """(path, array) of every NumPy array in nested lists, tuples and dicts, in order."""
    import numpy
    if isinstance(value, numpy.ndarray):
        yield list(path), value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _arrays_in(item, path + (i,))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _arrays_in(item, path + (key,))


def describe_error(error, submission):
    """What a failing call reports: the exception's type and message, and the lines of the
    student's own files the error went through (nothing of the grader's)."""
    frames = [f"{os.path.basename(frame.filename)}, line {frame.lineno}, in {frame.name}: "
              f"{(frame.line or '').strip()}"
              for frame in traceback.extract_tb(error.__traceback__)
              if frame.filename.startswith(submission)]
    try:
        message = str(error)
    except BaseException:                                  # a hostile __str__
        message = "(the exception's message could not be read)"
    return {"type": type(error).__name__[:100], "message": message[:2000],
            "where": "\n".join(frames[-5:])[:2000]}


def serve(server, wire, request_fd, reply_fd, submission):
    while True:
        try:
            request = wire.read_message(request_fd, max_array_bytes=1 << 30)
        except EOFError:
            return
        try:
            value, changed = server.answer(request)
            encoded = wire.encode({"ok": value, "changed": changed})
        except BaseException as error:                     # SystemExit too: reported, as data
            encoded = wire.encode({"error": describe_error(error, submission)})
        wire.send(reply_fd, encoded)


def main(config):
    """Run the worker: ``config`` (read from the request pipe by the boot code in sandbox.py)
    says which task, where its file is, the box's plan and limits."""
    request_fd, reply_fd = 0, config["reply_fd"]
    join_cgroups(config["cgroups"])
    from minidense.grading import wire
    import_library()
    import minidense as md
    submission = config["submission"]
    if config["isolation"] in ("namespaces", "user-namespaces"):
        enter_box(config["plan"])
        submission = BOX_SUBMISSION
    switched_ids = switch_off(config["forbidden"], config["task"])
    drop_privileges(config)
    try:
        module = load_student_module(config["task"], os.path.join(submission, config["file"]),
                                     switched_ids)
        ready = {"ready": True}
    except BaseException as error:                          # SystemExit at import time too
        module, ready = None, {"error": describe_error(error, submission)}
    wire.write_message(reply_fd, ready)
    if module is not None:
        serve(Server(module, wire, md), wire, request_fd, reply_fd, submission)
