# Sourced from the repository's root by bench-count.sh and bench-phases.sh: builds
# policy-perf in the runner profile (the wasmtime build `make runner-tests` uses, and the
# one bench/fresh-instance-budget.txt was counted with) and counts its instructions.
cargo build --locked --quiet --profile runner -p policy-runner --bin policy-perf
perf="$PWD/target/runner/policy-perf"
# A figure is the difference between 1 and 1 + $requests requests, over $requests.
requests=10

# count ARGS...: the instructions of `policy-perf count ARGS...`, by callgrind.
count() {
  local out
  out="$(valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=/dev/null \
    "$perf" count "$@" 2>&1)" || { echo "$out" >&2; return 1; }
  sed -n 's/.*Collected : //p' <<<"$out"
}

# fill ARGS...: runs `policy-perf count ARGS...` natively and under valgrind (without a
# tool: seconds) to fill wasmtime's compilation cache for both CPUs: wasmtime compiles
# for the features of the CPU it sees, and valgrind's lacks some (AVX-512), so a counted
# run after a native one alone would miss the cache and count a whole compilation.
fill() {
  "$perf" count "$@" >/dev/null
  valgrind --tool=none -q "$perf" count "$@" >/dev/null
}
