//! Benchmark of the embedded store (being written).

fn main() {}
