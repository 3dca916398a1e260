/*
 * pyworker: embedded CPython in a worker process.  See pyworker.h.
 *
 * Reference notes: "new" = we own it and must Py_DECREF, "borrowed" = we
 * must not, "stolen" = the callee took our reference.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "pyproto.h"
#include "pyworker.h"
#include "run.h"
#include "util.h"

static int worker_fd = -1;
static struct pyshm *shm;		/* the call slots, shared with event-sub */
static const char *current_handler = "";
static uint64_t current_seq;		/* the call running, 0 between calls */

/* Python side of the worker: resolving, calling, capturing output. */
static const char bootstrap[] =
"import importlib, importlib.util, io, json, logging, os, sys, traceback\n"
"import _er\n"
"_cache = {}\n"
"_hdir = None\n"
"def _shadowed(mod):\n"
"    # a module of the handlers' directory that Python takes from\n"
"    # elsewhere: one built in or frozen, or one the worker had imported\n"
"    # before the directory was on sys.path (json, logging...)\n"
"    top = mod.partition('.')[0]\n"
"    mine = [p for p in (os.path.join(_hdir, top + '.py'),\n"
"                        os.path.join(_hdir, top)) if os.path.exists(p)]\n"
"    if not mine:\n"
"        return\n"
"    try:\n"
"        spec = importlib.util.find_spec(top)\n"
"    except Exception:\n"
"        return  # the import says what is wrong\n"
"    if spec is None:\n"
"        return\n"
"    at = ([spec.origin] if spec.has_location else []) + \\\n"
"        list(spec.submodule_search_locations or [])\n"
"    # as found on sys.path (a symbolic link in the directory stays in\n"
"    # it), or resolved (the directory itself a link)\n"
"    ds = (os.path.abspath(_hdir) + os.sep, os.path.realpath(_hdir) + os.sep)\n"
"    if not any(q.startswith(ds) for p in at\n"
"               for q in (os.path.abspath(p), os.path.realpath(p))):\n"
"        raise ImportError('%s is shadowed by Python\\'s module %s (%s), '\n"
"                          'which the worker loads first: rename it'\n"
"                          % (mine[0], top, spec.origin))\n"
"def _resolve(name):\n"
"    f = _cache.get(name)\n"
"    if f is None:\n"
"        mod, _, attr = name.rpartition('.')\n"
"        _shadowed(mod)\n"
"        f = getattr(importlib.import_module(mod), attr)\n"
"        if not callable(f):\n"
"            raise TypeError('%s is not callable' % name)\n"
"        _cache[name] = f\n"
"    return f\n"
"def _trace(e, skip=True):\n"
"    # the handler's frames, not the worker's own _call; a traceback\n"
"    # that cannot be made (a property of the exception raises) says so\n"
"    try:\n"
"        tb = e.__traceback__\n"
"        return ''.join(traceback.format_exception(type(e), e, tb.tb_next if skip and tb else tb))\n"
"    except BaseException as x:\n"
"        return 'no traceback: making it raised %s\\n' % type(x).__name__\n"
"def _text(f, *a):\n"
"    # f(*a) as the error column's text: a NUL (which would end it) as\n"
"    # \\x00; a str() or repr() that raises does not fail the report\n"
"    try:\n"
"        t = f(*a)\n"
"    except BaseException as x:\n"
"        t = '%s (and describing it raised %s)' % (type(a[-1]).__name__, type(x).__name__)\n"
"    return t.replace('\\0', '\\\\x00')\n"
"def _describe(e):\n"
"    if isinstance(e, SyntaxError):\n"
"        return _text(lambda e: 'SyntaxError: %s (%s, line %s)' % (e.msg, e.filename, e.lineno), e)\n"
"    return _text(lambda e: '%s: %s' % (type(e).__name__, e), e)\n"
"class _Stream(io.TextIOBase):\n"
"    def __init__(self, level):\n"
"        self.level, self.buf = level, ''\n"
"    def writable(self):\n"
"        return True\n"
"    def write(self, s):\n"
"        self.buf += s\n"
"        while '\\n' in self.buf:\n"
"            line, self.buf = self.buf.split('\\n', 1)\n"
"            _er.log(self.level, line)\n"
"        return len(s)\n"
"    def flush(self):\n"
"        if self.buf:\n"
"            _er.log(self.level, self.buf)\n"
"            self.buf = ''\n"
"class _Handler(logging.Handler):\n"
"    def emit(self, record):\n"
"        try:\n"
"            _er.log(record.levelno, self.format(record))\n"
"        except Exception:\n"
"            pass\n"
"def _setup(level):\n"
"    global _hdir\n"
"    _hdir = sys.path[0]\n"
"    sys.stdout, sys.stderr = _Stream(20), _Stream(30)\n"
"    root = logging.getLogger()\n"
"    root.handlers[:] = [_Handler()]\n"
"    root.setLevel(level)\n"
"def _verify(name):\n"
"    try:\n"
"        _resolve(name)\n"
"        return (0, None, None, None)\n"
"    except BaseException as e:\n"
"        return (2, None, _describe(e), _trace(e, False))\n"
"_loads = json.loads\n"
"_enc = json.JSONEncoder(allow_nan=False, ensure_ascii=False).encode\n"
"_encstr = json.encoder.encode_basestring\n"
"_irepr, _frepr, _inf = int.__repr__, float.__repr__, float('inf')\n"
"def _dumps(ret):\n"
"    # json.dumps(ret, allow_nan=False, ensure_ascii=False) without making\n"
"    # an encoder per call; plain scalars as json.dumps writes them\n"
"    t = type(ret)\n"
"    if t is int:\n"
"        return _irepr(ret)\n"
"    if t is str:\n"
"        return _encstr(ret)\n"
"    if ret is None:\n"
"        return 'null'\n"
"    if t is bool:\n"
"        return 'true' if ret else 'false'\n"
"    if t is float and -_inf < ret < _inf:\n"
"        return _frepr(ret)\n"
"    return _enc(ret)\n"
"_lone = __import__('re').compile('[\\ud800-\\udfff]')\n"
"def _json(ret):\n"
"    d = _dumps(ret)\n"
"    if not d.isascii():\n"
"        try:\n"
"            d.encode()\n"
"        except UnicodeEncodeError:\n"
"            # a lone surrogate (os.fsdecode() of bytes that are not\n"
"            # UTF-8): the text \\udcXX, which every JSON parser takes\n"
"            d = _lone.sub(lambda m: '\\\\\\\\u%04x' % ord(m.group()), d)\n"
"    return d\n"
"def _call(name, text):\n"
"    f = _cache.get(name)\n"
"    if f is None:\n"
"        try:\n"
"            f = _resolve(name)\n"
"        except BaseException as e:\n"
"            return (2, None, _describe(e), _trace(e, False))\n"
"    try:\n"
"        event = _loads(text)\n"
"    except BaseException as e:\n"
"        return (2, None, 'cannot make the event a dict: ' + _describe(e), None)\n"
"    try:\n"
"        ret = f(event)\n"
"    except SystemExit as e:\n"
"        try:\n"
"            done = e.code is None or e.code == 0\n"
"        except BaseException:\n"
"            done = False\n"
"        if done:\n"
"            return (0, None, None, None)\n"
"        return (1, None, _text(lambda e: 'SystemExit: %s' % (e.code,), e), '')\n"
"    except BaseException as e:\n"
"        return (1, None, _describe(e), _trace(e))\n"
"    finally:\n"
"        sys.stdout.flush()\n"
"        sys.stderr.flush()\n"
"    try:\n"
"        return (0, _json(ret), None, None)\n"
"    except BaseException as e:\n"
"        why = 'return value is not JSON (%s)' % _describe(e)\n"
"        try:\n"
"            return (0, _json(repr(ret)), why + '; its repr() is stored', None)\n"
"        except BaseException as x:\n"
"            return (0, None, why + '; nor could it be shown: repr() raised ' + _describe(x), None)\n";

/*
 * A line's bytes sent at most: with its truncation marker it still fits
 * what event-sub keeps of a run's output (RUN_OUTPUT_CAP), and a line
 * of any length fits a frame (PYPROTO_MAX_FRAME).
 */
#define PYLOG_LINE_MAX (RUN_OUTPUT_CAP - 128)

/*
 * _er.log(level, text): one 'L' frame to event-sub; a line longer than
 * PYLOG_LINE_MAX is cut at a character's start, and says so.
 */
static PyObject *
er_log(PyObject *self, PyObject *args)
{
	PyObject *str, *bytes = NULL;
	const char *text;
	char *line = NULL;	/* text cut, when it is */
	Py_ssize_t len;
	size_t n;
	int level, rc;
	unsigned char pre[9];

	(void)self;
	if (!PyArg_ParseTuple(args, "iU", &level, &str))
		return NULL;	/* exception set */
	/* a lone surrogate (os.fsdecode() of a bad name) as \udcXX, as
	 * Python's own stderr writes it, not a UnicodeEncodeError */
	if ((text = PyUnicode_AsUTF8AndSize(str, &len)) == NULL) {
		PyErr_Clear();
		bytes = PyUnicode_AsEncodedString(str, "utf-8",
		    "backslashreplace");
		if (bytes == NULL)
			return NULL;
		text = PyBytes_AS_STRING(bytes);
		len = PyBytes_GET_SIZE(bytes);
	}
	n = (size_t)len;
	pre[0] = (unsigned char)(level < 0 ? 0 : level > 255 ? 255 : level);
	pyproto_put_be64(pre + 1, current_seq);
	if (len > PYLOG_LINE_MAX) {
		size_t cut = PYLOG_LINE_MAX;

		while (cut > 0 && ((unsigned char)text[cut] & 0xc0) == 0x80)
			cut--;
		line = xmalloc(cut + 96);
		memcpy(line, text, cut);
		n = cut + (size_t)snprintf(line + cut, 96, " [event-reactor: "
		    "line truncated, %zu bytes dropped]", (size_t)len - cut);
		text = line;
	}
	rc = pyproto_write(worker_fd, 'L', pre, sizeof(pre), current_handler,
	    strlen(current_handler) + 1, text, n) != 0 ? errno : 0;
	free(line);
	Py_XDECREF(bytes);
	if (rc != 0) {
		errno = rc;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	Py_RETURN_NONE;
}

static PyMethodDef er_methods[] = {
	{ "log", er_log, METH_VARARGS, "Send a log line to event-sub." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef er_module = {
	PyModuleDef_HEAD_INIT, "_er", NULL, -1, er_methods,
	NULL, NULL, NULL, NULL,
};

static PyObject *
er_init(void)
{
	return PyModule_Create(&er_module);	/* new */
}

/*
 * UTF-8 of a str item of tuple t, or NULL for None.  A lone surrogate (a
 * name os.fsdecode() made of bytes that are not UTF-8) is written as
 * \udcXX: inside data's JSON strings that is JSON's own escape for it.
 * The bytes are t's (borrowed), or *keep's: a new object the caller
 * releases once they are sent.
 */
static const char *
item_str(PyObject *t, Py_ssize_t i, size_t *n, PyObject **keep)
{
	PyObject *v = PyTuple_GET_ITEM(t, i);	/* borrowed */
	Py_ssize_t len = 0;
	const char *s;

	*n = 0;
	if (v == Py_None)
		return NULL;
	if ((s = PyUnicode_AsUTF8AndSize(v, &len)) == NULL) {
		PyErr_Clear();
		*keep = PyUnicode_AsEncodedString(v, "utf-8",
		    "backslashreplace");	/* new */
		if (*keep == NULL) {
			PyErr_Clear();
			return NULL;
		}
		s = PyBytes_AS_STRING(*keep);
		len = PyBytes_GET_SIZE(*keep);
	}
	*n = (size_t)len;
	return len > 0 ? s : NULL;
}

/*
 * Fill r from a (status, data, error, traceback) tuple (borrowed: r points
 * into it, or into keep[3], new objects the caller releases), or with an
 * internal error when t is not one (an exception of the bootstrap, or
 * NULL with the exception set: cleared here).
 */
static void
result_from(PyObject *t, struct pyproto_result *r, char *msg, size_t msgsz,
    PyObject **keep)
{
	PyObject *type_, *value, *tb, *s;
	const char *m;
	long st;

	if (t != NULL && PyTuple_Check(t) && PyTuple_GET_SIZE(t) == 4) {
		st = PyLong_AsLong(PyTuple_GET_ITEM(t, 0));	/* borrowed */
		if (st == -1)
			PyErr_Clear();
		r->status = st == PY_OK ? PY_OK : st == PY_FAILED ? PY_FAILED :
		    PY_ERROR;
		r->data = item_str(t, 1, &r->data_len, &keep[0]);
		r->error = item_str(t, 2, &r->error_len, &keep[1]);
		r->tb = item_str(t, 3, &r->tb_len, &keep[2]);
		return;
	}
	/* a bug in the bootstrap: report it as such */
	snprintf(msg, msgsz, "unknown error");
	if (t == NULL) {
		PyErr_Fetch(&type_, &value, &tb);	/* new refs */
		s = value ? PyObject_Str(value) : NULL;	/* new */
		m = s ? PyUnicode_AsUTF8(s) : NULL;
		if (m != NULL)
			snprintf(msg, msgsz, "%s", m);
		PyErr_Clear();
		Py_XDECREF(s);
		Py_XDECREF(type_);
		Py_XDECREF(value);
		Py_XDECREF(tb);
	}
	r->status = PY_ERROR;
	r->data = r->tb = NULL;
	r->data_len = r->tb_len = 0;
	r->error = msg;
	r->error_len = strlen(msg);
}

/* Send r as an 'R' frame for call seq (0: a 'V' answer). */
static int
send_result(uint64_t seq, const struct pyproto_result *r)
{
	size_t n = pyproto_result_size(r);
	unsigned char *buf = xmalloc(8 + n);
	int rc;

	pyproto_put_be64(buf, seq);
	pyproto_result_put(buf + 8, r);
	rc = pyproto_write(worker_fd, 'R', buf, 8 + n, NULL, 0, NULL, 0);
	free(buf);
	return rc;
}

/*
 * The result of call seq: into its slot when it fits, else an 'R' frame
 * (an error in its place when over PYPROTO_MAX_FRAME); then one 'W'
 * frame if event-sub sleeps waiting for this call.
 */
static int
publish(uint64_t seq, const struct pyproto_result *r)
{
	struct pyshm_slot *sl = &shm->slot[seq % PYSHM_SLOTS];
	size_t n = pyproto_result_size(r);
	struct pyproto_result big;
	char why[256];

	if (1 + 8 + n > PYPROTO_MAX_FRAME) {
		snprintf(why, sizeof(why), "result too large: %zu bytes (the "
		    "return value as JSON, the error and the traceback), over "
		    "the %u MiB a worker can send (PYPROTO_MAX_FRAME); not "
		    "stored", r->data_len + r->error_len + r->tb_len,
		    PYPROTO_MAX_FRAME >> 20);
		big = (struct pyproto_result){ .status = PY_ERROR,
		    .started_at = r->started_at, .duration_ms = r->duration_ms,
		    .error = why, .error_len = strlen(why) };
		r = &big;
		n = pyproto_result_size(r);
	}

	if (n <= PYSHM_INLINE) {
		pyproto_result_put(sl->data, r);
		sl->len = (uint32_t)n;
		atomic_store(&sl->state, PYSLOT(seq, PYSLOT_DONE));
	} else {
		if (send_result(seq, r) != 0)
			return -1;	/* the call stays TAKEN: failed */
		atomic_store(&sl->state, PYSLOT(seq, PYSLOT_DONE_EXT));
	}
	if (atomic_load(&shm->host_waiting) &&
	    seq >= atomic_load(&shm->wake_seq) &&
	    atomic_exchange(&shm->host_waiting, 0))
		return pyproto_write(worker_fd, 'W', NULL, 0, NULL, 0, NULL, 0);
	return 0;
}

/* A 'C' frame: take the call (unless event-sub took it back), run it,
 * publish its result.  The GIL is held. */
static int
serve_call(PyObject *fn_call, const unsigned char *p, size_t len)
{
	struct pyproto_result r;
	struct pyshm_slot *sl;
	const unsigned char *nul;
	const char *json;
	PyObject *args[2], *res, *keep[3] = { NULL, NULL, NULL };
	uint64_t seq, want;
	long long t0;
	size_t jlen;
	char msg[512];
	int rc;

	if (len < 8 || (seq = pyproto_get_be64(p)) == 0 ||
	    (nul = memchr(p + 8, '\0', len - 8)) == NULL) {
		fprintf(stderr, "python worker: malformed call frame\n");
		return -1;
	}
	json = (const char *)nul + 1;
	jlen = len - (size_t)(nul + 1 - p);
	sl = &shm->slot[seq % PYSHM_SLOTS];
	atomic_store_explicit(&sl->started_ns, util_mono_ns(),
	    memory_order_relaxed);
	want = PYSLOT(seq, PYSLOT_QUEUED);
	if (!atomic_compare_exchange_strong(&sl->state, &want,
	    PYSLOT(seq, PYSLOT_TAKEN)))
		return 0;	/* taken back by event-sub: it runs elsewhere */
	memset(&r, 0, sizeof(r));
	r.started_at = util_now();
	t0 = util_mono_ns();
	current_handler = (const char *)p + 8;
	current_seq = seq;
	args[0] = PyUnicode_FromString(current_handler);	/* new */
	/* the event as str: json.loads() skips detecting the encoding */
	args[1] = PyUnicode_DecodeUTF8(json, (Py_ssize_t)jlen,
	    "surrogatepass");	/* new */
	if (args[1] == NULL) {
		PyErr_Clear();	/* json.loads() says what is wrong with it */
		args[1] = PyBytes_FromStringAndSize(json, (Py_ssize_t)jlen);
	}
	res = args[0] != NULL && args[1] != NULL ?
	    PyObject_Vectorcall(fn_call, args, 2, NULL) : NULL;	/* new */
	Py_XDECREF(args[0]);
	Py_XDECREF(args[1]);
	r.duration_ms = (double)(util_mono_ns() - t0) / 1e6;
	result_from(res, &r, msg, sizeof(msg), keep);
	rc = publish(seq, &r);
	Py_XDECREF(res);
	for (int i = 0; i < 3; i++)
		Py_XDECREF(keep[i]);
	current_handler = "";
	current_seq = 0;
	return rc;
}

/* A 'V' frame: resolve the handler, answer with an 'R' frame (seq 0). */
static int
serve_verify(PyObject *fn_verify, const unsigned char *p, size_t len)
{
	struct pyproto_result r;
	PyObject *res, *keep[3] = { NULL, NULL, NULL };
	char *h = xmalloc(len + 1), msg[512];
	int rc;

	memcpy(h, p, len);
	h[len] = '\0';
	current_handler = h;
	memset(&r, 0, sizeof(r));
	r.started_at = util_now();
	res = PyObject_CallFunction(fn_verify, "s", h);	/* new */
	result_from(res, &r, msg, sizeof(msg), keep);
	rc = send_result(0, &r);
	Py_XDECREF(res);
	for (int i = 0; i < 3; i++)
		Py_XDECREF(keep[i]);
	current_handler = "";
	free(h);
	return rc;
}

/*
 * A request for more memory than the machine has (RAM and swap) fails,
 * as glibc's malloc fails it, and Python raises MemoryError.  jemalloc,
 * which the workers run on (they are event-sub), reserves any size
 * without a word (the kernel overcommits), and a bytearray(1 << 46)
 * then fills memory page by page.  Large requests reach the RAW domain
 * (pymalloc passes them on), so only that one is wrapped.
 */
static PyMemAllocatorEx raw_next;
static size_t raw_max;

static void *
raw_malloc(void *ctx, size_t n)
{
	(void)ctx;
	return n > raw_max ? NULL : raw_next.malloc(raw_next.ctx, n);
}

static void *
raw_calloc(void *ctx, size_t nelem, size_t elsize)
{
	(void)ctx;
	if (elsize != 0 && nelem > raw_max / elsize)
		return NULL;
	return raw_next.calloc(raw_next.ctx, nelem, elsize);
}

static void *
raw_realloc(void *ctx, void *p, size_t n)
{
	(void)ctx;
	return n > raw_max ? NULL : raw_next.realloc(raw_next.ctx, p, n);
}

static void
raw_free(void *ctx, void *p)
{
	(void)ctx;
	raw_next.free(raw_next.ctx, p);
}

/* Before Python starts: the RAW domain capped at RAM and swap. */
static void
cap_raw(void)
{
	PyMemAllocatorEx a = { NULL, raw_malloc, raw_calloc, raw_realloc,
	    raw_free };
	struct sysinfo si;

	if (sysinfo(&si) != 0 || si.mem_unit == 0)
		return;
	raw_max = ((size_t)si.totalram + (size_t)si.totalswap) * si.mem_unit;
	PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &raw_next);
	PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &a);
}

/* An isolated interpreter (see the top of this file); 0, or -1 (said). */
static int
start_python(void)
{
	PyPreConfig preconfig;
	PyConfig config;
	PyStatus status;

	cap_raw();
	if (PyImport_AppendInittab("_er", er_init) != 0)
		return -1;
	/*
	 * UTF-8 mode (PEP 540): open() without encoding=, file names and
	 * locale.getpreferredencoding() are UTF-8 whatever the locale
	 * event-sub runs in (often none under init.d, and an isolated
	 * configuration never reads LANG: it would be ASCII).  Only before
	 * initialisation, through the pre-configuration.
	 */
	PyPreConfig_InitIsolatedConfig(&preconfig);
	preconfig.utf8_mode = 1;
	status = Py_PreInitialize(&preconfig);
	if (PyStatus_Exception(status)) {
		fprintf(stderr, "python worker: cannot start Python: %s\n",
		    status.err_msg ? status.err_msg : "?");
		return -1;
	}
	PyConfig_InitIsolatedConfig(&config);
	config.install_signal_handlers = 0;	/* event-sub owns signals */
	config.site_import = 1;		/* dist-packages, not user site */
	config.user_site_directory = 0;
	config.parse_argv = 0;
	config.write_bytecode = 0;	/* don't litter handler dirs */
	status = Py_InitializeFromConfig(&config);
	PyConfig_Clear(&config);
	if (PyStatus_Exception(status)) {
		fprintf(stderr, "python worker: cannot start Python: %s\n",
		    status.err_msg ? status.err_msg : "?");
		return -1;
	}
	return 0;
}

/*
 * The bootstrap run (its imports from Python's own path), then
 * handlers_dir first on sys.path, then _setup(level);
 * *fn_call and *fn_verify: new references to _call and _verify.  0, or -1
 * with the Python error set.
 */
static int
setup(const char *handlers_dir, int level, PyObject **fn_call,
    PyObject **fn_verify)
{
	PyObject *main_mod, *globals, *sys_path, *dir, *r;

	main_mod = PyImport_AddModule("__main__");	/* borrowed */
	globals = PyModule_GetDict(main_mod);	/* borrowed */
	r = PyRun_String(bootstrap, Py_file_input, globals, globals);	/* new */
	if (r == NULL)
		return -1;
	Py_DECREF(r);
	/* after the bootstrap's imports: a handler module named json.py
	 * must not replace the json the worker reads events with */
	sys_path = PySys_GetObject("path");	/* borrowed */
	dir = PyUnicode_DecodeFSDefault(handlers_dir);	/* new */
	if (sys_path == NULL || dir == NULL || PyList_Insert(sys_path, 0, dir) != 0)
		return -1;
	Py_DECREF(dir);
	r = PyObject_CallFunction(PyDict_GetItemString(globals, "_setup"), "i",
	    level);	/* new */
	if (r == NULL)
		return -1;
	Py_DECREF(r);
	*fn_call = PyDict_GetItemString(globals, "_call");	/* borrowed */
	*fn_verify = PyDict_GetItemString(globals, "_verify");	/* borrowed */
	if (*fn_call == NULL || *fn_verify == NULL)
		return -1;
	Py_INCREF(*fn_call);	/* cached for the worker's life */
	Py_INCREF(*fn_verify);
	return 0;
}

/* Say hello, then serve frames until EOF or an error (GIL not held). */
static void
serve(int fd, PyObject *fn_call, PyObject *fn_verify)
{
	struct pyproto_buf in = { 0 };
	char buf[65536];

	if (pyproto_write(fd, 'H', NULL, 0, NULL, 0, NULL, 0) != 0)
		return;
	for (;;) {
		const unsigned char *p;
		PyGILState_STATE g;
		size_t len;
		char type;
		int k = 0, rc = 0;
		ssize_t n;

		/* every whole frame read so far, under one GIL hold */
		g = PyGILState_Ensure();
		while (rc == 0 && (k = pyproto_next(&in, &type, &p, &len)) == 1) {
			if (type == 'C')
				rc = serve_call(fn_call, p, len);
			else if (type == 'V')
				rc = serve_verify(fn_verify, p, len);
		}
		PyGILState_Release(g);
		if (rc != 0 || k < 0)
			break;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		pyproto_feed(&in, buf, (size_t)n);
	}
	pyproto_buf_free(&in);
}

int
pyworker_main(int fd, const char *handlers_dir, int level)
{
	PyObject *fn_call = NULL, *fn_verify = NULL;
	PyThreadState *ts;

	/* started from /proc/self/exe, which names the process "exe": ps -C
	 * event-sub and pgrep find the workers with event-sub */
	(void)prctl(PR_SET_NAME, "event-sub", 0, 0, 0);
	/* event-sub gone (killed during a start-up check's import, say):
	 * this worker goes too, and does not run on as an orphan */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() == 1)
		return 1;
	worker_fd = fd;
	shm = pyproto_shm_map(PYWORKER_SHM_FD);
	if (shm == NULL) {
		fprintf(stderr, "python worker: no call slots at fd %d: %s\n",
		    PYWORKER_SHM_FD, strerror(errno));
		return 1;
	}
	close(PYWORKER_SHM_FD);	/* the mapping stays */
	if (start_python() != 0)
		return 1;
	if (setup(handlers_dir, level, &fn_call, &fn_verify) != 0) {
		PyErr_Print();
		Py_FinalizeEx();
		return 1;
	}
	ts = PyEval_SaveThread();
	serve(fd, fn_call, fn_verify);
	PyEval_RestoreThread(ts);
	Py_DECREF(fn_call);
	Py_DECREF(fn_verify);
	Py_FinalizeEx();
	return 0;
}
