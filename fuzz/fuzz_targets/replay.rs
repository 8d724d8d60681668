//! Trace replay: a recorded trace (CSV, or JSON when it starts with `{`), and the energy of
//! its whole span and of its halves. A window's energy is never negative or infinite.
#![no_main]
use libfuzzer_sys::fuzz_target;
use eai_power::Timeline;

#[global_allocator]
static A: eai_fuzz::Counting = eai_fuzz::Counting;

fuzz_target!(|data: &[u8]| {
    let tl = eai_fuzz::bounded(data.len(), || {
        if data.first() == Some(&b'{') {
            Timeline::read_json(data, "fuzz.json")
        } else {
            Timeline::read_csv(data, "fuzz.csv")
        }
    });
    let Ok(tl) = tl else { return };
    let _ = eai_power::ReplaySource::all(&tl);
    let end = tl.end_ns();
    for (t0, t1) in [(0, end), (0, end / 2), (end / 2, end)] {
        if let Ok(m) = tl.measure("fuzz", t0, t1) {
            for d in &m.devices {
                if let Some(e) = d.energy {
                    assert!(e.0.is_finite() && e.0 >= 0.0, "{}: {} J", d.source, e.0);
                }
            }
        }
    }
});
