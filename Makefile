# fief — one GNU Makefile. Quiet by default; `make V=1` shows the commands.
#
#   make            release build into build/
#   make asan       AddressSanitizer + UBSan build into build/asan/
#   make asan check the whole test suite against the sanitizer build
#   make check      install deps, build, run unit, fuzz-replay and integration tests
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS each
#   make demo       install deps, build, start a demo host (Ctrl-C stops it)

PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
PYTHON    ?= /usr/bin/python3
FUZZ_SECONDS ?= 60

ifneq ($(filter asan,$(MAKECMDGOALS)),)
SAN := 1
endif

ifeq ($(SAN),1)
O        := build/asan
OPTFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
HARDEN   :=
LDHARDEN := -fsanitize=address,undefined
else
O        := build
OPTFLAGS := -O2 -g
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
LDHARDEN := -pie -Wl,-z,relro,-z,now
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?=
CPPFLAGS += -D_GNU_SOURCE -Ilib -MMD -MP
ALLCFLAGS = -std=gnu11 $(WARN) $(OPTFLAGS) $(HARDEN) $(CFLAGS)
LDLIBS_COMMON := -lyaml

ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2)
endif

LIB_SRC      := $(wildcard lib/*.c)
LAUNCHER_SRC := $(wildcard launcher/*.c)
GATEWAY_SRC  := $(wildcard gateway/*.c)
ROUTER_SRC   := $(wildcard router/*.c)
CTL_SRC      := $(wildcard ctl/*.c)

objs = $(patsubst %.c,$(O)/obj/%.o,$(1))

LIBFIEF := $(O)/libfief.a
BINS    := $(O)/fief-launcher $(O)/fief-gateway $(O)/fief-router $(O)/fiefctl
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRC))
PROBE     := $(O)/fief-probe

.PHONY: all asan check unit integration fuzz fuzz-build fuzz-replay bench demo deps install clean
all: $(BINS) $(PROBE)
asan: all

$(O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c $< -o $@

$(LIBFIEF): $(call objs,$(LIB_SRC))
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/fief-launcher: $(call objs,$(LAUNCHER_SRC)) $(LIBFIEF)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALLCFLAGS) $(LDHARDEN) -o $@ $^ $(LDLIBS_COMMON) -lev -lcgroup -lutil -lcap -lseccomp

$(O)/fief-gateway: $(call objs,$(GATEWAY_SRC)) $(LIBFIEF)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALLCFLAGS) $(LDHARDEN) -o $@ $^ $(LDLIBS_COMMON) -lev -lssh -lcrypt -lcap -lseccomp

# The router shares the tun helpers with the tenant side (launcher/tun.c).
$(O)/fief-router: $(call objs,$(ROUTER_SRC) launcher/tun.c) $(LIBFIEF)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALLCFLAGS) $(LDHARDEN) -o $@ $^ $(LDLIBS_COMMON) -lev -luring -pthread

$(O)/fiefctl: $(call objs,$(CTL_SRC)) $(LIBFIEF)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALLCFLAGS) $(LDHARDEN) -o $@ $^ $(LDLIBS_COMMON)

# The probe runs inside tenants in tests: static, so any rootfs can run it.
$(PROBE): tests/probe/probe.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -static -o $@ $<

# Unit tests of daemon modules link those modules' sources too.
TEST_EXTRA_mounts := launcher/mounts.c
TEST_EXTRA_cgroup := launcher/cgroup.c
TEST_LIBS_cgroup  := -lcgroup
TEST_EXTRA_filter := router/filter.c
TEST_EXTRA_cron   := launcher/cron.c
TEST_EXTRA_logs   := launcher/logs.c
TEST_EXTRA_seccomp := launcher/seccomp.c
TEST_LIBS_seccomp  := -lseccomp
TEST_EXTRA_tenantproc := launcher/tenantproc.c launcher/seccomp.c
TEST_LIBS_tenantproc  := -lseccomp
TEST_LIBS_records := -lev

.SECONDEXPANSION:
$(O)/tests/test_%: tests/unit/test_%.c $(LIBFIEF) $$(TEST_EXTRA_$$*)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CPPFLAGS) $(ALLCFLAGS) $(LDHARDEN) -o $@ $< $(TEST_EXTRA_$*) $(LIBFIEF) -lcmocka $(LDLIBS_COMMON) $(TEST_LIBS_$*)

# ---- fuzzing (clang, libFuzzer) ----
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -DFIEF_FUZZING -Ilib -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRC) $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(call say,CLANG,$<)
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(LDLIBS_COMMON) -lev

fuzz-build: $(FUZZ_BINS)

# Replay each corpus, then fuzz briefly: a regression test for `make check`.
fuzz-replay: $(FUZZ_BINS)
	$(Q)scripts/run-fuzz 5 $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	$(Q)scripts/run-fuzz $(FUZZ_SECONDS) $(FUZZ_BINS)

# ---- tests ----
deps:
	$(Q)scripts/install-deps

unit: $(UNIT_BINS)
	$(Q)scripts/run-unit $(UNIT_BINS)

integration: all
	$(Q)FIEF_BUILD=$(CURDIR)/$(O) $(PYTHON) -m pytest -q -ra tests/integration

# `make check`: unit tests and fuzz replays on the release build, then the
# integration suite on the ASan + UBSan build, which is where memory and
# undefined-behaviour bugs show. Two suites each run once, on the release
# build instead: the demo and install tests (they test what ships), and the
# load suite (its latency bounds are about the release build). Every
# integration file runs exactly once: the whole suite twice would not fit
# CI's time. `make asan check` runs everything on the sanitizer build;
# `make integration` runs the whole suite on the release build.
RELEASE_INTEGRATION := $(wildcard tests/integration/test_demo.py tests/integration/test_install.py \
	tests/integration/test_load.py tests/integration/test_memory.py)
ASAN_INTEGRATION := $(filter-out $(RELEASE_INTEGRATION),$(sort $(wildcard tests/integration/test_*.py)))

check: deps
	$(Q)$(MAKE) --no-print-directory SAN=$(SAN) all $(UNIT_BINS)
	$(Q)$(MAKE) --no-print-directory fuzz-build
ifneq ($(SAN),1)
	$(Q)FIEF_CHECK_TESTS="$(RELEASE_INTEGRATION)" scripts/run-check $(O)
	$(Q)$(MAKE) --no-print-directory SAN=1 all $(patsubst build/%,build/asan/%,$(UNIT_BINS))
	$(Q)FIEF_CHECK_ONLY="unit integration" FIEF_CHECK_TESTS="$(ASAN_INTEGRATION)" scripts/run-check build/asan
else
	$(Q)scripts/run-check $(O)
endif

bench: deps all
	$(Q)scripts/run-bench $(O)

demo: deps all
	$(Q)scripts/demo $(O)

install: all
	$(Q)scripts/install "$(DESTDIR)" "$(PREFIX)" "$(O)"

clean:
	rm -rf build

-include $(shell find $(O)/obj -name '*.d' -type f 2>/dev/null)
