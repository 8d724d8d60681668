//! `eai agent` and `eai measure --agent` as users run them: two agent processes on loopback,
//! one killed (SIGKILL) by the measured command mid-window.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent(token: &std::path::Path, watts: &str, name: &str) -> (Killed, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eai"))
        .args(["agent", "--listen", "127.0.0.1:0", "--no-gpu", "--no-cpu", "--constant", watts])
        .args(["--node-name", name, "--token-file"])
        .arg(token)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (Killed(c), url)
}

#[test]
fn eai_measure_on_two_agents_flags_the_one_killed_mid_window() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "cli-token-91b2\n").unwrap();
    let (_a, url_a) = agent(&token, "100", "node-a");
    let (b, url_b) = agent(&token, "200", "node-b");
    let report = dir.path().join("cluster.json");
    let script = format!("sleep 3.5; kill -9 {}; sleep 1", b.0.id());
    let out = Command::new(env!("CARGO_BIN_EXE_eai"))
        .args(["measure", "--agent", &url_a, "--agent", &url_b, "--agent-token-file"])
        .arg(&token)
        .arg("--json")
        .arg(&report)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(out.status.success(), "{stderr}");
    let w: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(w["complete"], false);
    assert_eq!(w["agents"].as_array().unwrap().len(), 2, "the killed agent stays in the result");
    assert_eq!(w["flags"][0]["flag"], "agent_lost");
    assert_eq!(w["flags"][0]["url"], url_b.as_str());
    assert!(w["agents"][1]["lost"].is_object());
    assert!(w["agents"][0]["lost"].is_null());
    assert_eq!(w["agents"][0]["host"], "node-a");
    // node-a ran 100 W through the whole window (~4.5 s).
    let ea = w["agents"][0]["energy"].as_f64().unwrap();
    let dur = w["agents"][0]["window"]["measurement"]["duration"].as_f64().unwrap();
    assert!(dur >= 4.5 && (ea / dur - 100.0).abs() < 1.0, "{ea} J over {dur} s");
    assert!(stderr.contains("LOST"), "{stderr}");
}
