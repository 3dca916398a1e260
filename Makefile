# Event Reactor.  `make` builds into $(BUILD); `make check` runs the tests;
# `make check SANITIZE=1` does the same with ASan+UBSan into build-asan/.

CC ?= cc
PKGS = libzmq jansson sqlite3 libbson-1.0
PYTHON = /usr/bin/python3

ifeq ($(SANITIZE),1)
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
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) -Iinclude \
             $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS = $(PKG_LIBS) -lpthread

LIB_SRCS = src/log.c src/util.c src/event.c src/config.c src/match.c \
           src/bus.c src/store.c src/store_sqlite.c src/daemon.c \
           src/router.c src/runner.c src/sub.c
LIB_OBJS = $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
PROGS = $(BUILD)/event-router $(BUILD)/event-sub $(BUILD)/fire-event
UNIT_TESTS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

.PHONY: all deps demo check unit integration clean
all: deps
	@$(MAKE) --no-print-directory $(PROGS) $(UNIT_TESTS)

deps:
	@scripts/install-deps

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libeventreactor.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/event-router: $(BUILD)/obj/event_router.o $(BUILD)/libeventreactor.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/event-sub: $(BUILD)/obj/event_sub.o $(BUILD)/libeventreactor.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/fire-event: $(BUILD)/obj/fire_event.o $(BUILD)/libeventreactor.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libeventreactor.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(ALL_LDFLAGS) -o $@ $< \
		$(BUILD)/libeventreactor.a $(LIBS)

demo: all
	scripts/demo $(BUILD)

check: all
	@BUILD=$(BUILD) PYTHON=$(PYTHON) scripts/run-tests

unit: all
	@BUILD=$(BUILD) PYTHON=$(PYTHON) scripts/run-tests unit

integration: all
	@BUILD=$(BUILD) PYTHON=$(PYTHON) scripts/run-tests integration

clean:
	rm -rf build build-asan
