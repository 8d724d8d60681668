//! CI's fuzzing smoke: every fuzz target's body (`fuzz/src/lib.rs`, the same code libFuzzer
//! drives) over its seed corpus and a few thousand deterministic mutations of the seeds. Not
//! coverage-guided (building libFuzzer and an instrumented copy of the dependencies takes longer
//! than CI's smoke budget): the long, coverage-guided campaigns are in docs/fuzzing.md. A
//! panic here is a reader bug, as it is under libFuzzer.

#[path = "../fuzz/src/lib.rs"]
#[allow(unreachable_pub, clippy::all)]
mod fuzz;

use std::path::Path;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One of libFuzzer's simpler mutations: flip a bit, set an interesting byte, overwrite a
/// little-endian integer with an extreme, truncate, duplicate or delete a chunk.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            v.push(rng.next() as u8);
            continue;
        }
        let i = rng.below(v.len());
        match rng.below(6) {
            0 => v[i] ^= 1 << rng.below(8),
            1 => v[i] = [0, 0xff, 0x7f, 0x80, b'-', b'9', b'"', b'{', b','][rng.below(9)],
            2 => {
                let x: u64 = [u64::MAX, 1 << 32, 1 << 24, 0, 1 << 63][rng.below(5)];
                for (k, b) in x.to_le_bytes().iter().enumerate().take(v.len() - i) {
                    v[i + k] = *b;
                }
            }
            3 => v.truncate(i),
            4 => {
                let j = (i + rng.below(64)).min(v.len());
                let chunk = v[i..j].to_vec();
                v.splice(i..i, chunk);
            }
            _ => {
                let j = (i + rng.below(16)).min(v.len());
                v.drain(i..j);
            }
        }
    }
    v
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seed for {target}");
    out
}

fn smoke(target: &str, body: fn(&[u8]), mutations: usize) {
    let mut rng = Rng(0x5eed ^ target.len() as u64);
    for s in seeds(target) {
        body(&s);
        for _ in 0..mutations {
            body(&mutate(&s, &mut rng));
        }
    }
}

/// Every input a campaign found (`fuzz/regressions/<target>/`), through its target's body:
/// each must now finish quickly without a panic.
#[test]
fn inputs_the_fuzzers_found_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    type Body = fn(&[u8]);
    let bodies: [(&str, Body); 9] = [
        ("gguf", |d| drop(fuzz::gguf(d))),
        ("safetensors", fuzz::safetensors),
        ("arc", fuzz::arc),
        ("hellaswag", fuzz::hellaswag),
        ("truthfulqa", fuzz::truthfulqa),
        ("mmlu", fuzz::mmlu),
        ("gsm8k", fuzz::gsm8k),
        ("replay", fuzz::replay),
        ("runs", fuzz::runs),
    ];
    let mut n = 0;
    for (target, body) in bodies {
        let Ok(dir) = std::fs::read_dir(root.join(target)) else { continue };
        for e in dir.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            let t = std::time::Instant::now();
            body(&data);
            // libFuzzer's timeout in the campaigns is 10 s; a fixed input takes milliseconds.
            let took = t.elapsed();
            assert!(took.as_secs() < 10, "{}: {took:?}", e.path().display());
            n += 1;
        }
    }
    assert!(n > 0, "no regression input under {}", root.display());
}

#[test]
fn fuzz_targets_survive_their_seeds_and_mutations() {
    smoke("gguf", |d| drop(fuzz::gguf(d)), 3000);
    smoke("safetensors", fuzz::safetensors, 1500);
    smoke("arc", fuzz::arc, 1500);
    smoke("hellaswag", fuzz::hellaswag, 1500);
    smoke("truthfulqa", fuzz::truthfulqa, 1500);
    smoke("mmlu", fuzz::mmlu, 1500);
    smoke("gsm8k", fuzz::gsm8k, 1500);
    smoke("replay", fuzz::replay, 1500);
    smoke("runs", fuzz::runs, 1500);
    let _ = std::fs::remove_dir_all(
        Path::new("/dev/shm").join(format!("eai-fuzz-{}", std::process::id())),
    );
}
