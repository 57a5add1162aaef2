# Artemis in C.  `make run` and `make test` work on a fresh Debian 12 machine:
# both install missing packages first (scripts/deps.sh).
#
#   make            build/artemis and build/artemis-bench
#   make run        install deps, build, run one node on the default config
#   make test       install deps, build, run unit (plain + ASan/UBSan), fuzz
#                   (briefly) and integration tests
#   make bench      the standard benchmark suite (scripts/bench.sh)
#   make format     clang-format in place;  make lint: clang-tidy + cppcheck

CC      ?= gcc
CLANG   ?= clang
BUILD   ?= build
PKGS    := libevent jansson msgpack ck libbsd-overlay inih zlib libxxhash libsodium sqlite3
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -pthread -fno-strict-aliasing
LDLIBS  := -lhttp_parser -lnettle -levent -ljansson -lmsgpackc -lck -lbsd -linih -lz -lxxhash -lsodium -lsqlite3 -lrt -lm -lpthread

MODULES := util codec config shm mgmt reaper worker replicator
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

.PHONY: all run test deps unit unit-asan fuzz integration bench format lint clean

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

integration: all
	cd tests/integration && ARTEMIS_BIN=$(CURDIR)/$(BUILD)/artemis \
		ARTEMIS_BENCH=$(CURDIR)/$(BUILD)/artemis-bench \
		/usr/bin/python3 -m pytest -q -x -p no:cacheprovider .

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory unit-asan
	@$(MAKE) --no-print-directory fuzz
	@$(MAKE) --no-print-directory integration

bench: deps
	@sh scripts/deps.sh --bench
	@$(MAKE) --no-print-directory all
	BUILD=$(BUILD) sh scripts/bench.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	clang-tidy --quiet $(LIB_SRC) master/main.c -- $(CFLAGS)
	cppcheck --quiet --enable=warning,performance,portability --inline-suppr \
		--error-exitcode=1 -Iinclude $(LIB_SRC) master/main.c

clean:
	rm -rf $(BUILD)
