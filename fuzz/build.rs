//! Embeds the seed payloads (corpus/validate/*.json) for the structure-aware target.
use std::{env, fs, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("corpus/validate");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut seeds: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    seeds.sort();
    let list: String = seeds
        .iter()
        .map(|path| format!("include_str!({:?}),\n", path.display().to_string()))
        .collect();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bases.rs");
    fs::write(out, format!("&[\n{list}]\n")).unwrap();
}
