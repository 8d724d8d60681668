//! Invariants: EOR scales inversely with energy, improvements compose, intervals contain the mean.

use eai_core::{Joules, Seconds};
use eai_metrics::{EnergyDomain, Run, Summary, compare, improvement, ratio_of_means};
use proptest::prelude::*;

fn run(scheme: &str, rep: u32, joules: f64, score: f64, secs: f64) -> Run {
    Run::builder("m", scheme, "h")
        .repetition(rep)
        .score("t", score)
        .energy(EnergyDomain::Gpu(0), Joules(joules))
        .wall(Seconds(secs))
        .build()
        .unwrap()
}

proptest! {
    #[test]
    fn eor_scales_inversely_with_energy(e in 1e-3f64..1e7, k in 1e-3f64..1e3, s in 0.0f64..=1.0) {
        let a = run("a", 1, e, s, 1.0).eor().unwrap().0;
        let b = run("a", 1, e * k, s, 1.0).eor().unwrap().0;
        prop_assert!((a - b * k).abs() <= 1e-9 * a.abs().max(1e-300));
    }

    #[test]
    fn tweor_is_eor_over_time(e in 1e-3f64..1e7, t in 1e-3f64..1e5, s in 0.01f64..=1.0) {
        let r = run("a", 1, e, s, t);
        let (eor, tweor) = (r.eor().unwrap().0, r.tweor().unwrap().0);
        prop_assert!((tweor * t - eor).abs() <= 1e-9 * eor);
    }

    #[test]
    fn improvements_compose(a in 1e-3f64..1e3, b in 1e-3f64..1e3, c in 1e-3f64..1e3) {
        let ab = 1.0 + improvement(a, b).unwrap().0 / 100.0;
        let bc = 1.0 + improvement(b, c).unwrap().0 / 100.0;
        let ac = 1.0 + improvement(a, c).unwrap().0 / 100.0;
        prop_assert!((ab * bc - ac).abs() <= 1e-9 * ac);
    }

    #[test]
    fn eor_improvements_compose_through_compare(
        e in proptest::array::uniform3(1.0f64..1e6),
        s in proptest::array::uniform3(0.01f64..=1.0),
    ) {
        let r: Vec<_> = (0..3).map(|i| run(&format!("s{i}"), 1, e[i], s[i], 1.0)).collect();
        let ab = compare(&r[0..1], &r[1..2]).unwrap().eor_improvement.value / 100.0 + 1.0;
        let bc = compare(&r[1..2], &r[2..3]).unwrap().eor_improvement.value / 100.0 + 1.0;
        let ac = compare(&r[0..1], &r[2..3]).unwrap().eor_improvement.value / 100.0 + 1.0;
        prop_assert!((ab * bc - ac).abs() <= 1e-9 * ac);
    }

    #[test]
    fn intervals_contain_the_mean(xs in proptest::collection::vec(-1e6f64..1e6, 2..20)) {
        let s = Summary::of(&xs).unwrap();
        let ci = s.ci.unwrap();
        prop_assert!(ci.contains(s.mean));
        prop_assert!(ci.lo <= ci.hi);
    }

    #[test]
    fn fieller_interval_contains_the_ratio(
        num in proptest::collection::vec(10.0f64..20.0, 2..6),
        den in proptest::collection::vec(10.0f64..20.0, 2..6),
    ) {
        // With 2 runs (df ≈ 1, t = 12.7) a noisy denominator may make Fieller's set unbounded:
        // that is a typed error, and whenever an interval exists it contains the ratio.
        match ratio_of_means(&num, &den, 0.95, "prop") {
            Ok(r) => {
                let ci = r.interval.unwrap();
                prop_assert!(ci.contains(r.value), "{:?} {}", ci, r.value);
            }
            Err(e) => prop_assert!(matches!(e, eai_metrics::Error::UnboundedRatio { .. }), "{e}"),
        }
    }

    #[test]
    fn compare_intervals_contain_their_estimates(
        be in proptest::collection::vec(100.0f64..110.0, 3),
        ce in proptest::collection::vec(70.0f64..80.0, 3),
        bs in proptest::collection::vec(0.5f64..0.6, 3),
        cs in proptest::collection::vec(0.5f64..0.6, 3),
    ) {
        let b: Vec<_> = (0..3).map(|i| run("b", i as u32, be[i], bs[i], 10.0)).collect();
        let c: Vec<_> = (0..3).map(|i| run("c", i as u32, ce[i], cs[i], 9.0)).collect();
        let cmp = compare(&b, &c).unwrap();
        for est in [cmp.energy_reduction, cmp.accuracy_loss, cmp.eor_improvement, cmp.tweor_improvement.unwrap()] {
            prop_assert!(est.ci.unwrap().contains(est.value), "{:?}", est);
        }
    }
}

fn dominated_by(a: &[f64], b: &[f64], senses: &[eai_metrics::Sense]) -> bool {
    // b dominates a
    let better_eq = |x: f64, y: f64, s: &eai_metrics::Sense| match s {
        eai_metrics::Sense::Maximize => y >= x,
        eai_metrics::Sense::Minimize => y <= x,
    };
    let strictly = |x: f64, y: f64, s: &eai_metrics::Sense| match s {
        eai_metrics::Sense::Maximize => y > x,
        eai_metrics::Sense::Minimize => y < x,
    };
    a.iter().zip(b).zip(senses).all(|((x, y), s)| better_eq(*x, *y, s))
        && a.iter().zip(b).zip(senses).any(|((x, y), s)| strictly(*x, *y, s))
}

proptest! {
    /// The front is exactly the set of points no other point dominates (2-D uses a sweep,
    /// 3-D the pairwise check; both are compared with the definition). Values on a coarse grid
    /// so that ties and duplicates occur.
    #[test]
    fn pareto_front_is_the_non_dominated_set(
        pts in proptest::collection::vec(proptest::collection::vec(0u8..6, 3), 0..25),
    ) {
        use eai_metrics::{Sense, pareto_indices};
        for senses in [vec![Sense::Maximize, Sense::Minimize], vec![Sense::Maximize, Sense::Minimize, Sense::Minimize]] {
            let rows: Vec<Vec<f64>> = pts.iter().map(|p| p[..senses.len()].iter().map(|&v| f64::from(v)).collect()).collect();
            let front = pareto_indices(&rows, &senses).unwrap();
            let want: Vec<usize> = (0..rows.len())
                .filter(|&i| !rows.iter().any(|b| dominated_by(&rows[i], b, &senses)))
                .collect();
            prop_assert_eq!(front, want);
        }
    }
}
