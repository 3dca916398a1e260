# Event Reactor.  `make` builds into $(BUILD); `make check` runs the tests;
# `make check SANITIZE=1` does the same with ASan+UBSan into build-asan/.

CC ?= cc
PKGS = libzmq libczmq jansson sqlite3 libbson-1.0 libmongoc-1.0 librabbitmq libmicrohttpd \
       libcrypto
PYTHON = /usr/bin/python3

ifeq ($(FUZZ),1)
# `make fuzz`: the library for libFuzzer's harnesses (tests/fuzz/), with
# clang: coverage for the fuzzer, ASan and UBSan, any report a crash.
BUILD ?= build-fuzz
CC = clang
SANFLAGS = -fsanitize=fuzzer-no-link,address,undefined \
           -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT ?= -O1 -g
else ifeq ($(SANITIZE),1)
BUILD ?= build-asan
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT ?= -O1 -g
else
BUILD ?= build
SANFLAGS =
OPT ?= -O2 -g
endif

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wpointer-arith -Wcast-qual
ifeq ($(CI),true)
WARN += -Werror
endif

# Recursive (=) so pkg-config runs only once scripts/install-deps has run.
PKG_CFLAGS = $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS)))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))
# jemalloc, as Redis links it: the router's store writer and ZeroMQ's I/O
# thread free what its main thread allocated, and with glibc's malloc they
# queue on its arena lock (the router with the SQLite store: 1.4 to 1.6
# times the events a second).  Not under the sanitizers: they bring their
# own.  Without it: make MALLOC_CFLAGS= MALLOC_LIBS=.
ifneq ($(SANITIZE)$(FUZZ),)
MALLOC_CFLAGS =
MALLOC_LIBS =
else
MALLOC_CFLAGS = -DHAVE_JEMALLOC
MALLOC_LIBS = $(shell pkg-config --libs jemalloc)
endif
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) -MMD -MP \
             -Iinclude $(SRC_DIRS:%=-I%) \
             $(PKG_CFLAGS) $(MALLOC_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS = $(PKG_LIBS) $(MALLOC_LIBS) -lpthread -lm

# src/core: the event model, config, loop, bus, log, util; src/stores,
# src/inputs, src/outputs, src/drivers: the plugins; src/daemons: what the
# daemons run; src/cmd: the three mains.  include/ is the library's public contract;
# internal headers sit beside their code.
SRC_DIRS = src/core src/stores src/inputs src/outputs src/drivers src/daemons
LIB_SRCS = $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c))
LIB_OBJS = $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
PROGS = $(BUILD)/event-router $(BUILD)/event-sub $(BUILD)/fire-event
FUZZERS = $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/fuzz/fuzz_%,$(wildcard tests/fuzz/fuzz_*.c))
# make bench's programs, built by all too: CI's -Werror then covers them
BENCH_PROGS = $(BUILD)/er-bench $(BUILD)/er-load $(BUILD)/er-amqp
UNIT_TESTS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

# Installation layout (GNU conventions); DESTDIR for staged installs.
PREFIX ?= /usr/local
prefix = $(PREFIX)
bindir = $(prefix)/bin
sbindir = $(prefix)/sbin
mandir = $(prefix)/share/man
sysconfdir = /etc
localstatedir = /var
unitdir = $(prefix)/lib/systemd/system
SUBST = sed -e 's|@sbindir@|$(sbindir)|g' -e 's|@sysconfdir@|$(sysconfdir)|g'
MANPAGES = $(wildcard man/*.[1-8])

.PHONY: all deps demo check check-fleet unit integration clean install uninstall lint-man \
        bench bench-smoke fuzz fuzzers
all: deps
	@$(MAKE) --no-print-directory $(PROGS) $(UNIT_TESTS) $(BENCH_PROGS)

deps:
	@scripts/install-deps

# Only pyworker.c includes Python.h (pkg-config python3-embed: Debian's 3.11).
PY_CFLAGS = $(patsubst -I%,-isystem %,$(shell pkg-config --cflags python3-embed))
PY_LIBS = $(shell pkg-config --libs python3-embed)
$(BUILD)/obj/drivers/pyworker.o: src/drivers/pyworker.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PY_CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libeventreactor.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/event-router: $(BUILD)/obj/cmd/event_router.o $(BUILD)/libeventreactor.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/event-sub: $(BUILD)/obj/cmd/event_sub.o $(BUILD)/libeventreactor.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(PY_LIBS)
$(BUILD)/fire-event: $(BUILD)/obj/cmd/fire_event.o $(BUILD)/libeventreactor.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libeventreactor.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(ALL_LDFLAGS) -o $@ $< \
		$(BUILD)/libeventreactor.a $(LIBS) $(PY_LIBS)

# libFuzzer's main and the harness; the library as built with FUZZ=1.
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(BUILD)/libeventreactor.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/fuzz -fsanitize=fuzzer -o $@ $< \
		$(BUILD)/libeventreactor.a $(LIBS) $(PY_LIBS)

# Each harness of tests/fuzz/ for FUZZ_SECONDS seconds, FUZZ_JOBS at a
# time, from its seed corpus (tests/fuzz/corpus/NAME/, read only); what
# they find goes to build-fuzz/ (scripts/run-fuzz).
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
fuzz: deps
	@$(MAKE) --no-print-directory FUZZ=1 BUILD=build-fuzz fuzzers
	FUZZ_JOBS=$(FUZZ_JOBS) scripts/run-fuzz build-fuzz $(FUZZ_SECONDS)
# (FUZZ=1 only: the harnesses need clang and the fuzz build of the library)
fuzzers: $(FUZZERS)

$(BUILD)/er-bench: bench/er-bench.c $(BUILD)/libeventreactor.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libeventreactor.a $(LIBS)

# The independent load: libzmq alone, none of the project's code.
$(BUILD)/er-load: bench/er-load.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< -lzmq

# The fleet's floor: rabbitmq-c alone, none of the project's code.
$(BUILD)/er-amqp: bench/er-amqp.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< -lrabbitmq -lpthread

# Optimized build of everything in build-bench/, then the figures.
bench: deps
	@$(MAKE) --no-print-directory BUILD=build-bench OPT="-O2 -DNDEBUG" \
		build-bench/event-router build-bench/event-sub \
		build-bench/fire-event build-bench/er-bench build-bench/er-load \
		build-bench/er-amqp
	bench/run build-bench

# A small run of the same programs, to see they work (no figures claimed).
bench-smoke: all
	bench/run $(BUILD) --quick

# The demo's first screen is the demo: the build's commands go to a log
# file, shown only when the build fails.
demo: deps
	@mkdir -p $(BUILD)
	@echo "building into $(BUILD)/ (log in $(BUILD)/build.log)..."
	@$(MAKE) --no-print-directory $(PROGS) >$(BUILD)/build.log 2>&1 || \
		{ cat $(BUILD)/build.log; \
		  echo "make demo: the build failed (log above, in $(BUILD)/build.log)" >&2; \
		  exit 1; }
	@scripts/demo $(BUILD)

check: all
	@BUILD=$(BUILD) PYTHON=$(PYTHON) ER_SANITIZE=$(SANITIZE) scripts/run-tests

unit: all
	@BUILD=$(BUILD) PYTHON=$(PYTHON) ER_SANITIZE=$(SANITIZE) scripts/run-tests unit

integration: all
	@BUILD=$(BUILD) PYTHON=$(PYTHON) ER_SANITIZE=$(SANITIZE) scripts/run-tests integration

# A fleet of event-subs on a 3-node RabbitMQ cluster, 10,000 events
# (tests/integration/fleet_cluster.py; about 3 minutes: not in check).
check-fleet: all
	@ER_BUILD_DIR=$(BUILD) $(PYTHON) tests/integration/fleet_cluster.py

install: all
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(sbindir) \
		$(DESTDIR)$(sysconfdir)/init.d $(DESTDIR)$(unitdir) \
		$(DESTDIR)$(sysconfdir)/event-reactor/event-handlers
	install -m 755 $(BUILD)/fire-event $(DESTDIR)$(bindir)/
	install -m 755 $(BUILD)/event-router $(BUILD)/event-sub $(DESTDIR)$(sbindir)/
	for m in $(MANPAGES); do \
		d=$(DESTDIR)$(mandir)/man$${m##*.}; \
		install -d $$d && install -m 644 $$m $$d/ || exit 1; \
	done
	install -d -m 750 $(DESTDIR)$(localstatedir)/lib/event-reactor
	scripts/add-user "$(DESTDIR)" $(localstatedir)/lib/event-reactor
	@# sample configuration: never overwrite what the operator has;
	@# config.json holds secrets (tokens, the AMQP password): 0640, its
	@# group the service user's when that user exists
	for f in config.json event-handlers.json; do \
		t=$(DESTDIR)$(sysconfdir)/event-reactor/$$f; \
		if [ -e $$t ]; then echo "keeping existing $$t"; continue; fi; \
		if [ $$f = event-handlers.json ]; then \
			install -m 644 etc/$$f $$t || exit 1; continue; fi; \
		install -m 640 etc/$$f $$t || exit 1; \
		g=$$(awk -F: '$$1 == "event-reactor" { print $$3 }' \
			$(DESTDIR)/etc/group 2>/dev/null); \
		if [ -n "$$g" ] && [ "$$(id -u)" = 0 ]; then \
			chgrp $$g $$t || exit 1; fi; \
	done
	for f in etc/event-handlers/*; do \
		[ -f "$$f" ] || continue; \
		t=$(DESTDIR)$(sysconfdir)/event-reactor/event-handlers/$${f##*/}; \
		if [ -e $$t ]; then echo "keeping existing $$t"; \
		else install -m 644 $$f $$t || exit 1; fi; \
	done
	$(SUBST) init.d/event-reactor > $(DESTDIR)$(sysconfdir)/init.d/event-reactor
	chmod 755 $(DESTDIR)$(sysconfdir)/init.d/event-reactor
	for u in event-router event-sub; do \
		$(SUBST) systemd/$$u.service.in > $(DESTDIR)$(unitdir)/$$u.service || exit 1; \
	done

# Leaves the configuration in $(sysconfdir)/event-reactor and the event
# store in $(localstatedir)/lib/event-reactor: they are the operator's data.
uninstall:
	rm -f $(DESTDIR)$(bindir)/fire-event $(DESTDIR)$(sbindir)/event-router \
		$(DESTDIR)$(sbindir)/event-sub \
		$(DESTDIR)$(sysconfdir)/init.d/event-reactor \
		$(DESTDIR)$(unitdir)/event-router.service \
		$(DESTDIR)$(unitdir)/event-sub.service
	for m in $(MANPAGES); do \
		rm -f $(DESTDIR)$(mandir)/man$${m##*.}/$${m##*/}; \
	done

lint-man:
	@command -v mandoc >/dev/null || { echo "lint-man: mandoc is missing"; exit 1; }
	mandoc -Tlint -Wwarning $(MANPAGES)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

clean:
	rm -rf build build-asan build-bench build-fuzz
