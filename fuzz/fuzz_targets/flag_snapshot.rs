#![no_main]
//! Fuzzes Unleash flag state (a snapshot file, or a server's answer): a state that is
//! accepted must be one the engine evaluates for any id without panicking, and it must
//! save and read back.

use fresco::rollout::FlagSource;
use fresco_unleash::UnleashFlags;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(flags) = UnleashFlags::from_snapshot(data) else { return };
    for flag in flags.flag_names() {
        for id in ["", "rider-1", "rider-2", "\u{1F680}", "0"] {
            let _ = flags.decide(&flag, id);
        }
        let _ = flags.versions(&flag);
    }
    let saved = flags.snapshot().expect("the applied state serializes");
    UnleashFlags::from_snapshot(&saved).expect("a saved state reads back");
});
