"""A realistic app for the pipeline benchmark: a C program compiled by `make build` (gcc, static, so it
runs on the busybox base image), unit tests run by `make test`, a Dockerfile that copies the binary.

    python3 real_app.py DIR IMAGE        (IMAGE: the repository gitops builds, for gitops.toml)

Sizes are chosen for this 2-core machine: `make build` ~1.5 s of gcc -O2 (MODULES translation units),
`make test` ~1 s (builds and runs the unit tests).  bump_version.sh changes src/version.c (a new commit
that changes the binary, hence a new image layer).
"""

from __future__ import annotations

import sys
from pathlib import Path

MODULES = 6
FUNCTIONS = 25

MAKEFILE = """\
# The app's own build and unit tests (what a CI job runs before building the image).
CC ?= gcc
CFLAGS ?= -O2 -Wall -Werror
SRC := $(wildcard src/*.c)
LIB := $(filter-out build/main.o,$(SRC:src/%.c=build/%.o))

.PHONY: build test clean
build: build/app

build/app: build/main.o $(LIB)
\t$(CC) -static -o $@ $^

build/%.o: src/%.c src/app.h
\t@mkdir -p build
\t$(CC) $(CFLAGS) -c -o $@ $<

build/unit_tests: tests/unit_tests.c $(LIB) src/app.h
\t$(CC) $(CFLAGS) -Isrc -o $@ tests/unit_tests.c $(LIB)

test: build/unit_tests
\t./build/unit_tests

clean:
\trm -rf build
"""

DOCKERFILE = """\
FROM gitops-demo/busybox:1.36
COPY build/app /usr/local/bin/app
USER 65534
CMD ["/usr/local/bin/app"]
"""

HEADER = """\
#ifndef APP_H
#define APP_H
#include <stdint.h>
extern const char *app_version;
{decls}
uint64_t count_primes(uint64_t limit);
#endif
"""

MODULE_FUNCTION = """\
uint64_t m{m}_f{f}(uint64_t x) {{
    uint64_t acc = x ^ {seed}u;
    for (int i = 0; i < 64; i++) {{
        acc = acc * 6364136223846793005ull + (uint64_t)(i * {f} + {m});
        if (acc % {mod}u == 0) acc ^= acc >> 17; else acc += (acc << 3) ^ {seed}u;
        switch ((acc >> 7) & 7) {{
            case 0: acc += {a}u; break; case 1: acc ^= {b}u; break; case 2: acc -= {c}u; break;
            case 3: acc = (acc << 5) | (acc >> 59); break; case 4: acc *= 3; break;
            case 5: acc += x; break; case 6: acc ^= x << 1; break; default: acc -= x >> 2;
        }}
    }}
    return acc;
}}
"""

PRIMES = """\
#include <stdlib.h>
#include "app.h"

uint64_t count_primes(uint64_t limit) {
    unsigned char *composite = calloc(limit + 1, 1);
    uint64_t n = 0;
    if (!composite) return 0;
    for (uint64_t i = 2; i <= limit; i++) {
        if (composite[i]) continue;
        n++;
        for (uint64_t j = i * i; j <= limit; j += i) composite[j] = 1;
    }
    free(composite);
    return n;
}
"""

MAIN = """\
#include <stdio.h>
#include "app.h"

int main(void) {{
    uint64_t sum = 0;
{calls}
    printf("app %s checksum %llu\\n", app_version, (unsigned long long)sum);
    return 0;
}}
"""

UNIT_TESTS = """\
#include <stdio.h>
#include "app.h"

static int failures = 0;
#define CHECK(cond) do {{ if (!(cond)) {{ \\
    printf("FAIL %s:%d %s\\n", __FILE__, __LINE__, #cond); failures++; }} }} while (0)

int main(void) {{
    CHECK(count_primes(100) == 25);
    CHECK(count_primes(1000000) == 78498);
    for (int round = 0; round < 4; round++) CHECK(count_primes(40000000) == 2433654);
{checks}
    printf(failures ? "unit tests: %d failed\\n" : "unit tests: all passed%.0d\\n", failures);
    return failures != 0;
}}
"""


def module(m: int) -> str:
    body = "".join(MODULE_FUNCTION.format(m=m, f=f, seed=1000003 * (m + 1) + f, mod=7 + (f % 13),
                                          a=m * 31 + f, b=m * 17 + f * 3, c=f * 11 + 5)
                   for f in range(FUNCTIONS))
    return f'#include "app.h"\n\n{body}'


def main() -> None:
    root, image = Path(sys.argv[1]), sys.argv[2]
    decls = "\n".join(f"uint64_t m{m}_f{f}(uint64_t x);" for m in range(MODULES) for f in range(FUNCTIONS))
    calls = "\n".join(f"    sum += m{m}_f{f}(sum);" for m in range(MODULES) for f in range(0, FUNCTIONS, 8))
    checks = "\n".join(f"    CHECK(m{m}_f0(1) == m{m}_f0(1) && m{m}_f1(2) != m{m}_f1(3));" for m in range(MODULES))
    files = {
        "Makefile": MAKEFILE,
        "Dockerfile": DOCKERFILE,
        ".gitignore": "build/\n",
        ".dockerignore": ".git\nsrc\ntests\n",
        "gitops.toml": f'image = "{image}"\nbuild_command = "make build"\ntest_command = "make test"\n',
        "src/app.h": HEADER.format(decls=decls),
        "src/version.c": '#include "app.h"\nconst char *app_version = "1";\n',
        "src/primes.c": PRIMES,
        "src/main.c": MAIN.format(calls=calls),
        "tests/unit_tests.c": UNIT_TESTS.format(checks=checks),
        **{f"src/module_{m:02d}.c": module(m) for m in range(MODULES)},
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


if __name__ == "__main__":
    main()
