// Shared by the fuzz targets: anything that parses must validate, score and compile
// without panicking.

pub fn exercise(ensemble: fresco_trees::Ensemble) {
    ensemble.validate().expect("parsers return validated ensembles");
    let row = vec![0.5; ensemble.n_features()];
    let mut out = vec![0.0; ensemble.n_outputs()];
    ensemble.predict_row(&row, &mut out);
    if ensemble.n_nodes() < 100_000 {
        let compiler = fresco_compiler::Compiler::new("fuzz", "1").add_ensemble(ensemble).expect("validated above");
        let _ = compiler.compile();
    }
}
