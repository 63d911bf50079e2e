//! Links the module with a 2 MiB initial memory instead of the 1.125 MiB the linker
//! picks: policy-server serves every request in a new instance, and the arena's first
//! chunk did not fit in that, so every request grew the memory (a `memory.grow` and an
//! `mprotect`; four of them at 100 containers). wasi-libc's malloc takes the heap's end
//! from the linker, so only the link can give it room. Pages are mapped on first touch:
//! the larger memory costs nothing until used.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--initial-memory={}", 2 << 20);
    }
}
