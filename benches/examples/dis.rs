fn main() {
    let path = std::env::args().nth(1).unwrap();
    let wasm = fresco_compiler::Compiler::new("m", "1").add_file(&path, None).unwrap().compile().unwrap();
    std::fs::write("/tmp/dis/m.wasm", &wasm).unwrap();
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true).cranelift_nan_canonicalization(true).cranelift_opt_level(wasmtime::OptLevel::Speed);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let bytes = engine.precompile_module(&wasm).unwrap();
    std::fs::write("/tmp/dis/m.cwasm", bytes).unwrap();
}
