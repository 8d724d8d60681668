//! Two agents on one machine, fed replayed traces with known totals, and a coordinator.

use std::time::Duration;

use eai_cluster::{
    Agent, AgentConfig, AgentSpec, ClusterFlag, Coordinator, Error, Exposition, now_unix_ns,
};
use eai_core::Watts;
use eai_power::{ConstantSource, Domain, PowerSource, ReplaySource, Timeline};

use crate::common::{Sine, raw, trace, truth};

const TOKEN: &str = "test-token-6f1d";

fn replay(tl: &Timeline) -> Vec<Box<dyn PowerSource>> {
    ReplaySource::all(tl)
        .unwrap()
        .into_iter()
        .map(|s| Box::new(s) as Box<dyn PowerSource>)
        .collect()
}

fn start(sources: Vec<Box<dyn PowerSource>>, host: &str, shift_ns: i64) -> Agent {
    let cfg = AgentConfig::new(Some(TOKEN.into()))
        .listen("127.0.0.1:0")
        .host(host)
        .clock_shift_ns(shift_ns);
    Agent::start(sources, cfg).unwrap()
}

/// Per source of agent `i`: the agent-clock time (ns) at which its replayed trace's t = 0 was
/// played (its first read, to within the read's duration).
fn replay_starts(coord: &Coordinator, i: usize) -> Vec<i64> {
    let tr = coord.trace(i).unwrap();
    (0..tr.timeline.sources.len())
        .map(|src| {
            let first = tr
                .timeline
                .channels
                .iter()
                .filter(|c| c.source == src)
                .filter_map(|c| c.samples.first())
                .map(|s| s.t_ns)
                .min()
                .unwrap();
            tr.anchor_unix_ns + first as i64
        })
        .collect()
}

/// Truth of agent `i` over agent-clock `[from, to]`.
fn agent_truth(profiles: &[Sine], starts: &[i64], from: i64, to: i64) -> f64 {
    profiles
        .iter()
        .zip(starts)
        .map(|(p, s)| truth(&[*p], (from - s) as f64 * 1e-9, (to - s) as f64 * 1e-9).0)
        .sum()
}

#[test]
fn two_agents_sum_within_0p1_percent_and_offsets_are_recovered() {
    let pa = Sine { base: 300.0, amp: 100.0, period: 8.0, phase: 0.0 };
    let pb = Sine { base: 450.0, amp: 120.0, period: 6.0, phase: 1.0 };
    let pc = Sine { base: 80.0, amp: 5.0, period: 5.0, phase: 0.3 };
    let ta = trace(&[("replay/gpu-a0", Domain::Gpu, pa)], 40.0);
    let tb = trace(
        &[
            ("replay/gpu-b0", Domain::Gpu, pb),
            ("replay/cpu-b0", Domain::CpuPackage { package: 0 }, pc),
        ],
        40.0,
    );
    let shift = [0i64, 2_500_000_000];
    let a = start(replay(&ta), "node-a", shift[0]);
    let b = start(replay(&tb), "node-b", shift[1]);
    let coord = Coordinator::new(vec![
        AgentSpec::new(a.url(), Some(TOKEN.into())),
        AgentSpec::new(b.url(), Some(TOKEN.into())),
    ]);

    // Clock offsets: the injected shift recovered within the measured uncertainty.
    let offs: Vec<_> = coord.sync(16).into_iter().map(Result::unwrap).collect();
    for (o, s) in offs.iter().zip(shift) {
        let err = (o.offset_ns - s).abs();
        eprintln!(
            "offset: injected {s} ns, estimated {} ns, error {err} ns, uncertainty {} ns (rtt {} ns)",
            o.offset_ns, o.uncertainty_ns, o.rtt_ns
        );
        assert!(
            err <= o.uncertainty_ns,
            "offset error {err} ns > uncertainty {} ns",
            o.uncertainty_ns
        );
    }
    let starts = [replay_starts(&coord, 0), replay_starts(&coord, 1)];
    let profiles: [Vec<Sine>; 2] = [vec![pa], vec![pb, pc]];

    // A window by name on both agents.
    std::thread::sleep(Duration::from_millis(1500));
    for r in coord.begin("job") {
        r.unwrap();
    }
    std::thread::sleep(Duration::from_secs(5));
    let w = coord.end("job");
    assert!(w.complete && w.flags.is_empty(), "{w}");
    let mut t = 0.0;
    for (i, o) in w.agents.iter().enumerate() {
        let aw = o.window.as_ref().unwrap();
        t += agent_truth(&profiles[i], &starts[i], aw.start_unix_ns, aw.end_unix_ns);
        for (k, d) in aw.measurement.devices.iter().enumerate() {
            let tk = agent_truth(
                &profiles[i][k..=k],
                &starts[i][k..=k],
                aw.start_unix_ns,
                aw.end_unix_ns,
            );
            eprintln!(
                "  {}: {:?} truth {tk:.3} J; counter {:?} instant {:?} dur {} s vs {} s",
                d.source,
                d.energy,
                d.counter_shaped,
                d.instant_integral,
                aw.measurement.duration.0,
                (aw.end_unix_ns - aw.start_unix_ns) as f64 * 1e-9
            );
        }
    }
    let e = w.energy.unwrap().0;
    let rel = (e - t) / t;
    eprintln!("window by name: sum {e:.3} J, truth {t:.3} J, error {:+.4} %", rel * 100.0);
    assert!(rel.abs() <= 1e-3, "{w}\ntruth {t}");

    // A window by time range on the coordinator's clock, translated with the offsets.
    let now = now_unix_ns();
    let (from, to) = (now - 4_500_000_000, now - 500_000_000);
    let r = coord.measure_range("range", from, to);
    assert!(r.complete && r.flags.is_empty(), "{r}");
    let (mut t, mut t_unshifted) = (0.0, 0.0);
    for i in 0..2 {
        t += agent_truth(&profiles[i], &starts[i], from + shift[i], to + shift[i]);
        t_unshifted += agent_truth(&profiles[i], &starts[i], from, to);
    }
    // The test can fail: ignoring the offset would be off by far more than 0.1 %.
    assert!(((t_unshifted - t) / t).abs() > 0.01, "{t} vs {t_unshifted}");
    let e = r.energy.unwrap().0;
    let rel = (e - t) / t;
    eprintln!(
        "window by range: sum {e:.3} J, truth {t:.3} J, error {:+.4} % (without offsets the truth would be {t_unshifted:.3} J)",
        rel * 100.0
    );
    assert!(rel.abs() <= 1e-3, "{r}\ntruth {t}");
    // The trace of the range only.
    let tr = coord.trace_range(1, from, to).unwrap();
    let n = tr.timeline.channels.iter().map(|c| c.samples.len()).sum::<usize>();
    let all =
        coord.trace(1).unwrap().timeline.channels.iter().map(|c| c.samples.len()).sum::<usize>();
    assert!(n > 300 && n < all, "{n} of {all}");
    for c in &tr.timeline.channels {
        for s in &c.samples {
            let u = tr.anchor_unix_ns + s.t_ns as i64;
            assert!(u >= from + shift[1] - 1_000_000 && u <= to + shift[1] + 1_000_000);
        }
    }
    a.stop().unwrap();
    b.stop().unwrap();
}

#[test]
fn an_agent_killed_mid_window_is_flagged_not_dropped() {
    let a = start(vec![Box::new(ConstantSource::new(Watts(100.0)))], "node-a", 0);
    let b = start(vec![Box::new(ConstantSource::new(Watts(200.0)))], "node-b", 0);
    let b_url = b.url();
    let coord = Coordinator::new(vec![
        AgentSpec::new(a.url(), Some(TOKEN.into())),
        AgentSpec::new(b_url.clone(), Some(TOKEN.into())),
    ])
    .timeout(Duration::from_secs(10));
    coord.sync(4);
    let before_begin = std::time::Instant::now();
    for r in coord.begin("job") {
        r.unwrap();
    }
    std::thread::sleep(Duration::from_millis(1500));
    for r in coord.heartbeat("job") {
        r.unwrap();
    }
    let before_kill = before_begin.elapsed().as_secs_f64();
    b.kill();
    std::thread::sleep(Duration::from_millis(500));
    let w = coord.end("job");
    eprintln!("{w}");
    assert!(!w.complete);
    assert_eq!(w.agents.len(), 2, "the lost agent stays in the result");
    assert!(w.flags.contains(&ClusterFlag::AgentLost { url: b_url }));
    assert!(w.agents[0].lost.is_none() && w.agents[0].window.as_ref().is_some_and(|x| !x.open));
    let lost = &w.agents[1];
    let l = lost.lost.as_ref().unwrap();
    assert!(l.last_contact_unix_ns.is_some(), "{l:?}");
    assert!(lost.window.as_ref().unwrap().open, "partial window up to the last poll");
    // 200 W from the beginning to the poll (at least 1.5 s, at most until the kill): partial,
    // and counted in the sum.
    let pe = lost.energy.unwrap().0;
    assert!(pe >= 0.99 * 200.0 * 1.5 && pe <= 200.0 * before_kill + 1.0, "{pe} J, {before_kill} s");
    let ea = w.agents[0].energy.unwrap().0;
    assert!((w.energy.unwrap().0 - (ea + pe)).abs() < 1e-9);
    a.stop().unwrap();
}

#[test]
fn every_route_needs_the_bearer_token() {
    let a = start(vec![Box::new(ConstantSource::new(Watts(50.0)))], "node-a", 0);
    for path in ["/v1/health", "/v1/time", "/v1/trace", "/metrics", "/v1/windows/x"] {
        assert_eq!(raw("GET", a.addr(), path, None).0, 401, "{path}");
        assert_eq!(raw("GET", a.addr(), path, Some("test-token-6f1e")).0, 401, "{path}");
    }
    assert_eq!(raw("POST", a.addr(), "/v1/windows/x/begin", None).0, 401);
    assert_eq!(raw("GET", a.addr(), "/v1/health", Some(TOKEN)).0, 200);
    for token in [None, Some("wrong".to_string())] {
        let c = Coordinator::new(vec![AgentSpec::new(a.url(), token)]);
        assert!(matches!(c.sync(1).remove(0), Err(Error::Unauthorized { status: 401, .. })));
    }
    a.stop().unwrap();
}

#[test]
fn windows_by_name_metrics_and_errors() {
    let mut cfg = AgentConfig::new(Some(TOKEN.into())).listen("127.0.0.1:0").host("node-a");
    cfg.metrics_lag = Duration::from_millis(600);
    let a = Agent::start(vec![Box::new(ConstantSource::new(Watts(150.0)))], cfg).unwrap();
    let addr = a.addr();
    assert_eq!(raw("POST", addr, "/v1/windows/w%2F1/begin", Some(TOKEN)).0, 200);
    assert_eq!(raw("POST", addr, "/v1/windows/w%2F1/begin", Some(TOKEN)).0, 409);
    assert_eq!(raw("POST", addr, "/v1/windows/nope/end", Some(TOKEN)).0, 404);
    assert_eq!(raw("GET", addr, "/v1/range?from_unix_ns=5&to_unix_ns=1", Some(TOKEN)).0, 400);
    let far = now_unix_ns() + 60_000_000_000;
    assert_eq!(
        raw("GET", addr, &format!("/v1/range?from_unix_ns=1&to_unix_ns={far}"), Some(TOKEN)).0,
        400
    );
    std::thread::sleep(Duration::from_millis(2500));
    let (s, body) = raw("GET", addr, "/metrics", Some(TOKEN));
    assert_eq!(s, 200);
    let e1 = Exposition::parse(&body, "agent").unwrap();
    let j1 = e1.metric("eai_energy_joules_total").next().unwrap().value;
    let t1 = e1.metric("eai_energy_upto_unix_seconds").next().unwrap().value;
    assert!(j1 > 0.0);
    assert_eq!(e1.metric("eai_agent_open_windows").next().unwrap().value, 1.0);
    // The agent's sampler may lag on a loaded 2-core machine: poll (up to 15 s) until the
    // accounted instant moves on.
    let (mut j2, mut t2) = (j1, t1);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(1500));
        let e2 = Exposition::parse(&raw("GET", addr, "/metrics", Some(TOKEN)).1, "agent").unwrap();
        j2 = e2.metric("eai_energy_joules_total").next().unwrap().value;
        t2 = e2.metric("eai_energy_upto_unix_seconds").next().unwrap().value;
        if j2 > j1 && t2 > t1 {
            break;
        }
    }
    assert!(
        j2 > j1 && t2 > t1,
        "the agent's counters did not advance: {j1} J at {t1} s, then {j2} J at {t2} s"
    );
    // 150 W between the two accounted instants.
    let p = (j2 - j1) / (t2 - t1);
    assert!((p - 150.0).abs() < 1.5, "{p} W");
    let (s, body) = raw("POST", addr, "/v1/windows/w%2F1/end", Some(TOKEN));
    assert_eq!(s, 200, "{body}");
    let w: eai_cluster::AgentWindow = serde_json::from_str(&body).unwrap();
    assert_eq!(w.name, "w/1");
    assert!(w.measurement.energy().unwrap().0 > 0.0);
    a.stop().unwrap();
}
