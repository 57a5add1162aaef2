# Artemis in C.  `make run` and `make test` work on a fresh Debian 12 machine:
# both install missing packages first (scripts/deps.sh).
#
#   make            build/artemis, build/artemis-bench, the client library
#                   (build/libartemis-client.so + .a, artemis-client.pc), its
#                   examples (build/examples/) and benchmark
#   make install    the client library, its header and pkg-config file under
#                   $(DESTDIR)$(PREFIX) (PREFIX=/usr/local)
#   make run        install deps, build, run one node on the default config
#   make test       install deps, build, run unit (plain + ASan/UBSan, the
#                   client's threads also under ThreadSanitizer), fuzz (briefly),
#                   integration (the Debian package test too, once make test-deb
#                   made its Debian root) and the console's browser tests, with
#                   lint and format-check beside them (FORMAT_GATE=0 skips format-check)
#   make bench-console  first-load and 10,000-instance figures of the console
#   make console-screenshots  docs/console/*.png from the last browser-test run
#   make bench      the standard benchmark suite (scripts/bench.sh)
#   make install    PREFIX (/usr/local), DESTDIR, DATA_DIR, LOG_FILE: see below
#   make deb        the Debian package into build/deb;  make test-deb tests it
#   make format     clang-format in place;  make format-check fails on drift
#   make lint       clang-tidy + cppcheck, failing on any finding

CC      ?= gcc
CLANG   ?= clang
BUILD   ?= build
PKGS    := libevent jansson msgpack ck libbsd-overlay inih zlib libxxhash libsodium sqlite3 openssl
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -pthread -fno-strict-aliasing
LDLIBS  := -lhttp_parser -lnettle -levent -ljansson -lmsgpackc -lck -lbsd -linih -lz -lxxhash -lsodium -lsqlite3 -levent_openssl -lssl -lcrypto -lrt -lm -lpthread

MODULES := util codec config auth tls shm mgmt reaper worker replicator
LIB_SRC := $(foreach m,$(MODULES),$(wildcard $(m)/*.c)) \
           $(filter-out master/main.c,$(wildcard master/*.c))
BENCH_SRC := $(wildcard bench/*.c)
# The client library's tests link the client's objects, not the server's.
CLIENT_UNIT_SRC := $(wildcard tests/unit/test_client*.c)
UNIT_SRC := $(filter-out $(CLIENT_UNIT_SRC),$(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
HDRS := $(wildcard include/artemis/*.h */*.h)

# ---- libartemis-client (client/, include/artemis/client.h) ------------------
# The library reuses util/ and codec/ code, compiled with hidden visibility:
# the .so exports only the ARTEMIS_API functions, and the .a is one object
# whose other symbols are made local, so neither clashes with a program's.
# It depends on no server module (shm/, worker/, master/).
CLIENT_SRC := $(wildcard client/*.c)
CLIENT_REUSED := util/buf.c util/clock.c codec/json_in.c codec/json_out.c codec/instance.c
CLIENT_ALL := $(CLIENT_SRC) $(CLIENT_REUSED)
CLIENT_LIBS := -lhttp_parser -lnettle -levent -ljansson -lpthread
CLIENT_VERSION := 1.0.0
CLIENT_SONAME := libartemis-client.so.1
CLIENT_OBJ := $(CLIENT_ALL:%.c=$(BUILD)/cobj/%.o)
CLIENT_ASAN_OBJ := $(CLIENT_ALL:%.c=$(BUILD)/casan/%.o)
CLIENT_TSAN_OBJ := $(CLIENT_ALL:%.c=$(BUILD)/ctsan/%.o)
CLIENT_FUZZ_OBJ := $(CLIENT_ALL:%.c=$(BUILD)/cfuzz/%.o)
CLI_SRC := $(wildcard cli/*.c)
EXAMPLES := $(BUILD)/examples/hello-service $(BUILD)/examples/hello-caller
TSAN_FLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -Iinclude -pthread -fno-strict-aliasing \
	-fsanitize=thread -fno-omit-frame-pointer $(WARN)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
ASAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/asan/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%) \
	$(CLIENT_UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_ASAN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests-asan/%) \
	$(CLIENT_UNIT_SRC:tests/unit/%.c=$(BUILD)/tests-asan/%)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all run test deps unit unit-asan unit-tsan fuzz integration browser-test bench \
	bench-console console-screenshots format format-check lint clean client install install-node \
	install-client deb test-deb test-gates test-stages

all: $(BUILD)/artemis $(BUILD)/artemis-bench client

deps:
	@sh scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	./$(BUILD)/artemis server

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/asan/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
		-fno-sanitize-recover=undefined -c $< -o $@

$(BUILD)/libartemis.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libartemis-asan.a: $(ASAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/artemis: $(BUILD)/obj/master/main.o $(CLI_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libartemis.a \
		$(BUILD)/libartemis-client.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/artemis-bench: $(BENCH_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libartemis.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# build/artemis-hooks: build/artemis with the test-only hooks compiled in
# (-DARTEMIS_TEST_HOOKS, see shm/registry.c); only the integration tests run
# it, build/artemis has none.  Its objects come first, so the library's
# copies of the same files are not linked.
HOOKS_SRC := shm/registry.c
$(BUILD)/hooks/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DARTEMIS_TEST_HOOKS -c $< -o $@

$(BUILD)/artemis-hooks: $(BUILD)/obj/master/main.o $(HOOKS_SRC:%.c=$(BUILD)/hooks/%.o) \
		$(CLI_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libartemis.a $(BUILD)/libartemis-client.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# test_shm_faults replaces two libc calls to inject their failures;
# test_api, the routing part of a service's answer.
FAULT_WRAPS := -Wl,--wrap=pthread_mutex_init -Wl,--wrap=posix_fallocate
$(BUILD)/tests/test_shm_faults $(BUILD)/tests-asan/test_shm_faults: LDLIBS += $(FAULT_WRAPS)
$(BUILD)/tests/test_api $(BUILD)/tests-asan/test_api: LDLIBS += -Wl,--wrap=mgmt_route_frame
$(BUILD)/tests/test_routing $(BUILD)/tests-asan/test_routing: LDLIBS += -Wl,--wrap=posix_fallocate

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libartemis.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libartemis.a $(LDLIBS) -lcmocka

$(BUILD)/tests-asan/%: tests/unit/%.c $(BUILD)/libartemis-asan.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
		-fno-sanitize-recover=undefined -DUNDER_ASAN=1 \
		-o $@ $< $(BUILD)/libartemis-asan.a $(LDLIBS) -lcmocka

# ---- libartemis-client: the rules (its variables are at the top) ----------
client: $(BUILD)/libartemis-client.so $(BUILD)/libartemis-client.a \
	$(BUILD)/artemis-client.pc $(EXAMPLES) $(BUILD)/artemis-client-bench

$(BUILD)/cobj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(BUILD)/casan/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
		-fno-sanitize-recover=undefined -c $< -o $@

$(BUILD)/ctsan/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(TSAN_FLAGS) -c $< -o $@

$(BUILD)/$(CLIENT_SONAME): $(CLIENT_OBJ)
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(CLIENT_SONAME) -Wl,--no-undefined -o $@ \
		$(CLIENT_OBJ) $(CLIENT_LIBS)

$(BUILD)/libartemis-client.so: $(BUILD)/$(CLIENT_SONAME)
	ln -sf $(CLIENT_SONAME) $@

$(BUILD)/libartemis-client.a: $(CLIENT_OBJ)
	ld -r -o $(BUILD)/cobj/artemis-client.o $(CLIENT_OBJ)
	objcopy --localize-hidden $(BUILD)/cobj/artemis-client.o
	@rm -f $@
	ar rcs $@ $(BUILD)/cobj/artemis-client.o

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

# The .pc for PREFIX; `make install` writes it again for the PREFIX it is given.
CLIENT_PC = sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	-e 's|@VERSION@|$(CLIENT_VERSION)|' client/artemis-client.pc.in

$(BUILD)/artemis-client.pc: client/artemis-client.pc.in Makefile
	@mkdir -p $(BUILD)
	$(CLIENT_PC) > $@

$(BUILD)/examples/hello-service: examples/hello_service.c $(BUILD)/libartemis-client.so
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -L$(BUILD) -lartemis-client -levent -Wl,-rpath,'$$ORIGIN/..'

$(BUILD)/examples/hello-caller: examples/hello_caller.c $(BUILD)/libartemis-client.so
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -L$(BUILD) -lartemis-client -Wl,-rpath,'$$ORIGIN/..'

$(BUILD)/artemis-client-bench: client/bench/client_bench.c $(BUILD)/libartemis-client.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libartemis-client.a $(CLIENT_LIBS)

$(CLIENT_UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%): $(BUILD)/tests/%: tests/unit/%.c $(CLIENT_OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iclient -o $@ $< $(CLIENT_OBJ) $(CLIENT_LIBS) -lcmocka

$(CLIENT_UNIT_SRC:tests/unit/%.c=$(BUILD)/tests-asan/%): $(BUILD)/tests-asan/%: tests/unit/%.c \
		$(CLIENT_ASAN_OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iclient -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
		-fno-sanitize-recover=undefined -DUNDER_ASAN=1 \
		-o $@ $< $(CLIENT_ASAN_OBJ) $(CLIENT_LIBS) -lcmocka

# ThreadSanitizer: the client's multi-threaded tests (libevent and jansson
# are not instrumented; the client shares no object of theirs between threads).
CLIENT_TSAN_TESTS := $(BUILD)/tests-tsan/test_client_mt
$(CLIENT_TSAN_TESTS): $(BUILD)/tests-tsan/%: tests/unit/%.c $(CLIENT_TSAN_OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(TSAN_FLAGS) -Iclient -DUNDER_TSAN=1 -o $@ $< $(CLIENT_TSAN_OBJ) \
		$(CLIENT_LIBS) -lcmocka

unit-tsan: $(CLIENT_TSAN_TESTS) $(BUILD)/artemis
	@set -e; for t in $(CLIENT_TSAN_TESTS); do echo "== $$t (tsan)"; \
		TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ARTEMIS_BIN=$(BUILD)/artemis $$t; done

$(BUILD)/cfuzz/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/fuzz_client: tests/fuzz/fuzz_client.c $(CLIENT_FUZZ_OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -Iclient -fsanitize=fuzzer -o $@ $< $(CLIENT_FUZZ_OBJ) $(CLIENT_LIBS)

# Installs the client library; the node itself (binary, config, man pages)
# is meant to join as install-node.
install: install-client

install-client: $(BUILD)/$(CLIENT_SONAME) $(BUILD)/libartemis-client.a
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/artemis $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/artemis/client.h $(DESTDIR)$(INCLUDEDIR)/artemis/client.h
	install -m 755 $(BUILD)/$(CLIENT_SONAME) $(DESTDIR)$(LIBDIR)/libartemis-client.so.$(CLIENT_VERSION)
	ln -sf libartemis-client.so.$(CLIENT_VERSION) $(DESTDIR)$(LIBDIR)/$(CLIENT_SONAME)
	ln -sf $(CLIENT_SONAME) $(DESTDIR)$(LIBDIR)/libartemis-client.so
	install -m 644 $(BUILD)/libartemis-client.a $(DESTDIR)$(LIBDIR)/libartemis-client.a
	$(CLIENT_PC) > $(DESTDIR)$(PKGCONFIGDIR)/artemis-client.pc


# Fuzz targets: libFuzzer with clang, linked against the library built once
# with the fuzzer's coverage instrumentation.
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -Iinclude -pthread -fno-strict-aliasing \
	-fsanitize=address,undefined
FUZZ_OBJ := $(LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)

$(BUILD)/fuzzobj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/libartemis-fuzz.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libartemis-fuzz.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libartemis-fuzz.a $(LDLIBS)

# ARTEMIS_BIN: tests that end with `artemis check` run this binary.
unit: $(UNIT_BIN) $(BUILD)/artemis
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; ARTEMIS_BIN=$(BUILD)/artemis $$t; done

unit-asan: $(UNIT_ASAN) $(BUILD)/artemis
	@set -e; for t in $(UNIT_ASAN); do echo "== $$t (asan+ubsan)"; \
		ASAN_OPTIONS=detect_leaks=1 ARTEMIS_BIN=$(BUILD)/artemis $$t; done

FUZZ_SECONDS ?= 15
fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); echo "== $$n ($(FUZZ_SECONDS)s)"; \
		mkdir -p $(BUILD)/corpus/$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
			$(BUILD)/corpus/$$n tests/fuzz/corpus/$$n 2>$(BUILD)/fuzz/$$n.log \
			|| { tail -50 $(BUILD)/fuzz/$$n.log; exit 1; }; \
		grep -E 'Done [0-9]+ runs' $(BUILD)/fuzz/$$n.log || true; done

integration: all $(BUILD)/artemis-hooks
	cd tests/integration && ARTEMIS_BIN=$(CURDIR)/$(BUILD)/artemis \
		ARTEMIS_BENCH=$(CURDIR)/$(BUILD)/artemis-bench \
		ARTEMIS_HOOKS_BIN=$(CURDIR)/$(BUILD)/artemis-hooks \
		/usr/bin/python3 -m pytest -q -x -p no:cacheprovider .

# The console in a browser: skipped, with a message saying why, where
# chromium, node 20+ or npm cannot be had.
browser-test: all
	@BUILD=$(BUILD) sh scripts/browser_test.sh

# The gates (lint and format-check; FORMAT_GATE=0 drops the latter) run beside the test
# stages, as a second make job: they are CPU work, the stages mostly wait on
# processes, sockets and the fuzzers' fixed time.  At the lowest priority
# (nice 19), so they take the idle CPU and never starve a test whose
# processes must make progress (a writer holding the registry lock).  A
# finding fails make test.
FORMAT_GATE ?= 1
GATES := lint $(if $(filter 1,$(FORMAT_GATE)),format-check)

test:
	@sh scripts/deps.sh --browser
	@sh scripts/deps.sh --deb || echo "test: the packaging tools could not be installed: the package test will be skipped"
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -j2 test-gates test-stages

test-gates:
	@nice -n 19 $(MAKE) --no-print-directory $(GATES)

test-stages:
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory unit-asan
	@$(MAKE) --no-print-directory unit-tsan
	@$(MAKE) --no-print-directory fuzz
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory browser-test

bench: deps
	@sh scripts/deps.sh --bench
	@$(MAKE) --no-print-directory all
	BUILD=$(BUILD) sh scripts/bench.sh

bench-console: all
	@sh scripts/deps.sh --browser
	@BUILD=$(BUILD) sh scripts/browser_test.sh --bench

console-screenshots:
	@sh scripts/deps.sh --docs
	@BUILD=$(BUILD) sh scripts/console_screenshots.sh

# ---- Installing and packaging (docs/DEPLOY.md) ------------------------------
# make install: binaries, /etc/artemis/artemis.conf (an existing one is kept;
# DATA_DIR= and LOG_FILE= are written into a new one), man pages, console.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
install: install-node
install-node: all
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" SYSCONFDIR="$(SYSCONFDIR)" BUILD="$(BUILD)" \
		DATA_DIR="$(DATA_DIR)" LOG_FILE="$(LOG_FILE)" sh scripts/install.sh

deb:
	@sh scripts/deps.sh --deb
	BUILD=$(BUILD) sh scripts/deb.sh

# Builds the package from a clean clone and installs it into a minimal Debian
# root (debootstrap, cached in build/debroot): 4 to 5 minutes the first time.
# `make test` runs the same test (in integration) once that root is cached:
# 30 to 90 s; without it, it says the test is skipped and why.
test-deb: all
	@sh scripts/deps.sh --deb
	cd tests/integration && ARTEMIS_TEST_DEB=1 ARTEMIS_BIN=$(CURDIR)/$(BUILD)/artemis \
		/usr/bin/python3 -m pytest -q -s -rs -x -p no:cacheprovider test_deploy_deb.py

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# The C sources against .clang-format; the files that drift are listed.
format-check:
	@echo "== clang-format ($$(git ls-files '*.c' '*.h' | wc -l) files)"
	@git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror 2>/dev/null || { \
		echo "format-check: not clang-formatted (make format rewrites them):"; \
		for f in $$(git ls-files '*.c' '*.h'); do \
			clang-format --dry-run -Werror "$$f" >/dev/null 2>&1 || echo "  $$f"; done; \
		exit 1; }

# Lint gates `make test`: any clang-tidy finding (.clang-tidy: the analyzer
# and bug-prone checks, WarningsAsErrors) or cppcheck warning fails it.
LINT_SRC := $(LIB_SRC) master/main.c $(CLIENT_SRC) $(CLI_SRC)
lint:
	@echo "== clang-tidy ($(words $(LINT_SRC)) files)"
	@printf '%s\n' $(LINT_SRC) | xargs -P $$(nproc) -n 6 sh -c \
		'clang-tidy --quiet "$$@" -- $(CFLAGS) 2>/dev/null' clang-tidy
	@echo "== cppcheck"
	@cppcheck --quiet --enable=warning,performance,portability --inline-suppr \
		--error-exitcode=1 -Iinclude $(LINT_SRC)

clean:
	rm -rf $(BUILD)
