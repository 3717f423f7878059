//! fresco's benchmarks live in `benches/`; run them with `cargo bench -p fresco-benches`.
//! Results and the commands that produced them are recorded in `benches/README.md`.
