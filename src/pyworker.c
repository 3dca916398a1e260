/*
 * pyworker: embedded CPython in a worker process.  See include/pyworker.h.
 *
 * Reference notes: "new" = we own it and must Py_DECREF, "borrowed" = we
 * must not, "stolen" = the callee took our reference.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyproto.h"
#include "pyworker.h"
#include "util.h"

static int worker_fd = -1;
static const char *current_handler = "";

/* Python side of the worker: resolving, calling, capturing output. */
static const char bootstrap[] =
"import importlib, io, json, logging, sys, traceback\n"
"import _er\n"
"_cache = {}\n"
"def _resolve(name):\n"
"    f = _cache.get(name)\n"
"    if f is None:\n"
"        mod, _, attr = name.rpartition('.')\n"
"        f = getattr(importlib.import_module(mod), attr)\n"
"        if not callable(f):\n"
"            raise TypeError('%s is not callable' % name)\n"
"        _cache[name] = f\n"
"    return f\n"
"def _trace(e):\n"
"    # the handler's frames, not the worker's own _call\n"
"    return ''.join(traceback.format_exception(type(e), e, e.__traceback__.tb_next))\n"
"def _describe(e):\n"
"    if isinstance(e, SyntaxError):\n"
"        return 'SyntaxError: %s (%s, line %s)' % (e.msg, e.filename, e.lineno)\n"
"    return '%s: %s' % (type(e).__name__, e)\n"
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
"    sys.stdout, sys.stderr = _Stream(20), _Stream(30)\n"
"    root = logging.getLogger()\n"
"    root.handlers[:] = [_Handler()]\n"
"    root.setLevel(level)\n"
"def _verify(name):\n"
"    try:\n"
"        _resolve(name)\n"
"        return (0, None, None, None)\n"
"    except BaseException as e:\n"
"        return (2, None, _describe(e), traceback.format_exc())\n"
"def _call(name, text):\n"
"    try:\n"
"        f = _resolve(name)\n"
"    except BaseException as e:\n"
"        return (2, None, _describe(e), traceback.format_exc())\n"
"    try:\n"
"        event = json.loads(text)\n"
"    except BaseException as e:\n"
"        return (2, None, 'cannot make the event a dict: ' + _describe(e), None)\n"
"    try:\n"
"        ret = f(event)\n"
"    except SystemExit as e:\n"
"        if e.code is None or e.code == 0:\n"
"            return (0, None, None, None)\n"
"        return (1, None, 'SystemExit: %s' % (e.code,), '')\n"
"    except BaseException as e:\n"
"        return (1, None, _describe(e), _trace(e))\n"
"    finally:\n"
"        sys.stdout.flush()\n"
"        sys.stderr.flush()\n"
"    try:\n"
"        return (0, json.dumps(ret, allow_nan=False, ensure_ascii=False), None, None)\n"
"    except (TypeError, ValueError, RecursionError) as e:\n"
"        return (0, json.dumps(repr(ret), ensure_ascii=False),\n"
"                'return value is not JSON (%s); its repr() is stored' % _describe(e), None)\n";

/* _er.log(level, text): one 'L' frame to event-sub. */
static PyObject *
er_log(PyObject *self, PyObject *args)
{
	const char *text;
	Py_ssize_t len;
	int level;
	unsigned char lv;

	(void)self;
	if (!PyArg_ParseTuple(args, "is#", &level, &text, &len))
		return NULL;	/* exception set */
	lv = (unsigned char)(level < 0 ? 0 : level > 255 ? 255 : level);
	if (pyproto_write(worker_fd, 'L', &lv, 1, current_handler,
	    strlen(current_handler) + 1, text, (size_t)len) != 0)
		return PyErr_SetFromErrno(PyExc_OSError);
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

/* Append a 4-byte length and the bytes to buf. */
static void
put_str(char **buf, size_t *len, const char *s, size_t n)
{
	unsigned char h[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16),
	    (unsigned char)(n >> 8), (unsigned char)n };

	*buf = xrealloc(*buf, *len + 4 + n);
	memcpy(*buf + *len, h, 4);
	if (n)
		memcpy(*buf + *len + 4, s, n);
	*len += 4 + n;
}

/* UTF-8 of a str item of tuple t (borrowed), or NULL for None. */
static const char *
item_str(PyObject *t, Py_ssize_t i, Py_ssize_t *n)
{
	PyObject *v = PyTuple_GetItem(t, i);	/* borrowed */

	*n = 0;
	if (v == NULL || v == Py_None)
		return NULL;
	return PyUnicode_AsUTF8AndSize(v, n);	/* borrowed buffer */
}

/* Send the 'R' frame for a (status, data, error, traceback) tuple. */
static int
send_result(PyObject *t)
{
	char *buf = xmalloc(1);
	size_t len = 1;
	Py_ssize_t n;
	const char *s;
	long st = PyLong_AsLong(PyTuple_GetItem(t, 0));	/* borrowed */
	int rc;

	buf[0] = (char)(st == PY_OK ? PY_OK : st == PY_FAILED ? PY_FAILED :
	    PY_ERROR);
	for (Py_ssize_t i = 1; i <= 3; i++) {
		s = item_str(t, i, &n);
		if (s == NULL)
			PyErr_Clear();
		put_str(&buf, &len, s, s ? (size_t)n : 0);
	}
	rc = pyproto_write(worker_fd, 'R', buf, len, NULL, 0, NULL, 0);
	free(buf);
	return rc;
}

/* An error outside the handler (should not happen): report it as such. */
static int
send_internal_error(const char *what)
{
	char *buf = xmalloc(1);
	size_t len = 1;
	int rc;

	buf[0] = PY_ERROR;
	put_str(&buf, &len, NULL, 0);
	put_str(&buf, &len, what, strlen(what));
	put_str(&buf, &len, NULL, 0);
	rc = pyproto_write(worker_fd, 'R', buf, len, NULL, 0, NULL, 0);
	free(buf);
	return rc;
}

static int
serve(PyObject *fn_call, PyObject *fn_verify, char type,
    const unsigned char *p, size_t len)
{
	const char *handler = (const char *)p, *nul;
	PyObject *res;
	PyGILState_STATE g;
	int rc;

	nul = memchr(p, '\0', len);
	if (type == 'V') {
		char *h = xmalloc(len + 1);
		memcpy(h, p, len);
		h[len] = '\0';
		current_handler = h;
		g = PyGILState_Ensure();
		res = PyObject_CallFunction(fn_verify, "s", h);	/* new */
		rc = res ? send_result(res) : send_internal_error("verify failed");
		if (res == NULL)
			PyErr_Print();
		Py_XDECREF(res);
		PyGILState_Release(g);
		current_handler = "";
		free(h);
		return rc;
	}
	if (nul == NULL)
		return send_internal_error("malformed call frame");
	current_handler = handler;
	g = PyGILState_Ensure();
	res = PyObject_CallFunction(fn_call, "sy#", handler, nul + 1,
	    (Py_ssize_t)(len - (size_t)(nul + 1 - handler)));	/* new */
	if (res != NULL) {
		rc = send_result(res);
	} else {
		/* json.loads failed or a bug in the bootstrap */
		PyObject *type_, *value, *tb;
		PyErr_Fetch(&type_, &value, &tb);	/* new refs */
		PyObject *s = value ? PyObject_Str(value) : NULL;	/* new */
		const char *msg = s ? PyUnicode_AsUTF8(s) : "unknown error";
		rc = send_internal_error(msg ? msg : "unknown error");
		PyErr_Clear();
		Py_XDECREF(s);
		Py_XDECREF(type_);
		Py_XDECREF(value);
		Py_XDECREF(tb);
	}
	Py_XDECREF(res);
	PyGILState_Release(g);
	current_handler = "";
	return rc;
}

int
pyworker_main(int fd, const char *handlers_dir, int level)
{
	PyConfig config;
	PyStatus status;
	PyObject *main_mod, *globals, *fn_call, *fn_verify, *sys_path, *dir, *r;
	struct pyproto_buf in = { 0 };
	PyThreadState *ts;
	char buf[65536];

	worker_fd = fd;
	if (PyImport_AppendInittab("_er", er_init) != 0)
		return 1;
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
		return 1;
	}

	sys_path = PySys_GetObject("path");	/* borrowed */
	dir = PyUnicode_DecodeFSDefault(handlers_dir);	/* new */
	if (sys_path == NULL || dir == NULL || PyList_Insert(sys_path, 0, dir) != 0)
		goto py_fail;
	Py_DECREF(dir);

	main_mod = PyImport_AddModule("__main__");	/* borrowed */
	globals = PyModule_GetDict(main_mod);	/* borrowed */
	r = PyRun_String(bootstrap, Py_file_input, globals, globals);	/* new */
	if (r == NULL)
		goto py_fail;
	Py_DECREF(r);
	r = PyObject_CallFunction(PyDict_GetItemString(globals, "_setup"), "i",
	    level);	/* new */
	if (r == NULL)
		goto py_fail;
	Py_DECREF(r);
	fn_call = PyDict_GetItemString(globals, "_call");	/* borrowed */
	fn_verify = PyDict_GetItemString(globals, "_verify");	/* borrowed */
	if (fn_call == NULL || fn_verify == NULL)
		goto py_fail;
	Py_INCREF(fn_call);	/* cached for the worker's life */
	Py_INCREF(fn_verify);
	ts = PyEval_SaveThread();

	if (pyproto_write(fd, 'H', NULL, 0, NULL, 0, NULL, 0) != 0)
		goto done;
	for (;;) {
		const unsigned char *p;
		size_t len;
		char type;
		int k;
		ssize_t n;

		while ((k = pyproto_next(&in, &type, &p, &len)) == 1) {
			if ((type == 'C' || type == 'V') &&
			    serve(fn_call, fn_verify, type, p, len) != 0)
				goto done;
		}
		if (k < 0)
			goto done;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		pyproto_feed(&in, buf, (size_t)n);
	}
done:
	PyEval_RestoreThread(ts);
	Py_DECREF(fn_call);
	Py_DECREF(fn_verify);
	pyproto_buf_free(&in);
	Py_FinalizeEx();
	return 0;
py_fail:
	PyErr_Print();
	Py_FinalizeEx();
	return 1;
}
