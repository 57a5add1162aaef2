# Artemis in C.  `make run` and `make test` work on a fresh Debian 12 machine:
# both install missing packages first (scripts/deps.sh).
#
#   make            build/artemis and build/artemis-bench
#   make run        install deps, build, run one node on the default config
#   make test       install deps, build, run unit (plain + ASan/UBSan), fuzz
#                   (briefly), integration and the console's browser tests
#   make bench-console  first-load and 10,000-instance figures of the console
#   make bench      the standard benchmark suite (scripts/bench.sh)
#   make install    PREFIX (/usr/local), DESTDIR, DATA_DIR, LOG_FILE: see below
#   make deb        the Debian package into build/deb;  make test-deb tests it
#   make format     clang-format in place;  make lint: clang-tidy + cppcheck

CC      ?= gcc
CLANG   ?= clang
BUILD   ?= build
PKGS    := libevent jansson msgpack ck libbsd-overlay inih zlib libxxhash libsodium
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -pthread -fno-strict-aliasing
LDLIBS  := -lhttp_parser -lnettle -levent -ljansson -lmsgpackc -lck -lbsd -linih -lz -lxxhash -lsodium -lrt -lm -lpthread

MODULES := util codec config auth shm reaper worker replicator
LIB_SRC := $(foreach m,$(MODULES),$(wildcard $(m)/*.c)) \
           $(filter-out master/main.c,$(wildcard master/*.c))
BENCH_SRC := $(wildcard bench/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
HDRS := $(wildcard include/artemis/*.h */*.h)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
ASAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/asan/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_ASAN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests-asan/%)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all run test deps unit unit-asan fuzz integration browser-test bench bench-console \
	format lint clean install install-node deb test-deb

all: $(BUILD)/artemis $(BUILD)/artemis-bench

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

$(BUILD)/artemis: $(BUILD)/obj/master/main.o $(BUILD)/libartemis.a
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
		$(BUILD)/libartemis.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# test_shm_faults replaces two libc calls to inject their failures.
FAULT_WRAPS := -Wl,--wrap=pthread_mutex_init -Wl,--wrap=posix_fallocate
$(BUILD)/tests/test_shm_faults $(BUILD)/tests-asan/test_shm_faults: LDLIBS += $(FAULT_WRAPS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libartemis.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libartemis.a $(LDLIBS) -lcmocka

$(BUILD)/tests-asan/%: tests/unit/%.c $(BUILD)/libartemis-asan.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
		-fno-sanitize-recover=undefined -DUNDER_ASAN=1 \
		-o $@ $< $(BUILD)/libartemis-asan.a $(LDLIBS) -lcmocka

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

unit: $(UNIT_BIN) $(BUILD)/artemis
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

unit-asan: $(UNIT_ASAN)
	@set -e; for t in $(UNIT_ASAN); do echo "== $$t (asan+ubsan)"; \
		ASAN_OPTIONS=detect_leaks=1 $$t; done

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

test:
	@sh scripts/deps.sh --browser
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory unit-asan
	@$(MAKE) --no-print-directory fuzz
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory browser-test
	@if [ -n "$$ARTEMIS_TEST_DEB" ]; then $(MAKE) --no-print-directory test-deb; \
	else echo "test: the package test is skipped (make test-deb, or ARTEMIS_TEST_DEB=1 make test)"; fi

bench: deps
	@sh scripts/deps.sh --bench
	@$(MAKE) --no-print-directory all
	BUILD=$(BUILD) sh scripts/bench.sh

bench-console: all
	@sh scripts/deps.sh --browser
	@BUILD=$(BUILD) sh scripts/browser_test.sh --bench

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
# root (debootstrap, cached in $(BUILD)/debroot): minutes on a fresh machine.
test-deb: all
	@sh scripts/deps.sh --deb
	cd tests/integration && ARTEMIS_TEST_DEB=1 ARTEMIS_BIN=$(CURDIR)/$(BUILD)/artemis \
		/usr/bin/python3 -m pytest -q -s -rs -x -p no:cacheprovider test_deploy_deb.py

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	clang-tidy --quiet $(LIB_SRC) master/main.c -- $(CFLAGS)
	cppcheck --quiet --enable=warning,performance,portability --inline-suppr \
		--error-exitcode=1 -Iinclude $(LIB_SRC) master/main.c

clean:
	rm -rf $(BUILD)
