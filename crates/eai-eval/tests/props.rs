//! Property tests for the invariants the scoring relies on.
use eai_eval::metrics::{self, cut_at_stop};
use eai_eval::{Limit, Mc2Version, PyRandom, split_whitespace};
use proptest::prelude::*;

proptest! {
    #[test]
    fn sample_is_k_distinct_indices(seed in any::<i64>(), n in 1usize..3000, kk in 0usize..40) {
        let k = kk.min(n);
        let s = PyRandom::new(seed).sample_indices(n, k).unwrap();
        prop_assert_eq!(s.len(), k);
        prop_assert!(s.iter().all(|&i| i < n));
        let mut d = s.clone();
        d.sort_unstable();
        d.dedup();
        prop_assert_eq!(d.len(), k);
    }

    #[test]
    fn mc2_is_a_probability_and_matches_the_naive_form(
        lls in proptest::collection::vec(-50.0f64..0.0, 1..12),
        bits in any::<u16>(),
    ) {
        let labels: Vec<bool> = (0..lls.len()).map(|i| bits >> i & 1 == 1).collect();
        let v = metrics::mc2(&lls, &labels, Mc2Version::V3LabelMask);
        prop_assert!((0.0..=1.0 + 1e-12).contains(&v));
        let p: Vec<f64> = lls.iter().map(|x| x.exp()).collect();
        let naive = p.iter().zip(&labels).filter(|(_, l)| **l).map(|(p, _)| p).sum::<f64>()
            / p.iter().sum::<f64>();
        prop_assert!((v - naive).abs() < 1e-9, "{} vs {}", v, naive);
        let old = metrics::mc2(&lls, &labels, Mc2Version::V2SplitAtFirstFalse);
        prop_assert!(old <= v + 1e-12, "the prefix of trues is a subset of the trues");
    }

    #[test]
    fn whitespace_split_preserves_the_text(ctx in "[a-z \\t\\n]{0,12}", cont in "[a-z ]{0,6}") {
        let (c, k) = split_whitespace(&ctx, &cont);
        prop_assert_eq!(format!("{c}{k}"), format!("{ctx}{cont}"));
        prop_assert!(!c.ends_with(|ch: char| ch.is_whitespace()));
    }

    #[test]
    fn stop_cut_is_a_prefix_without_stops(text in "[ab:Q\\n]{0,30}") {
        let until = vec!["Q:".to_string(), "\n\n".to_string()];
        let out = cut_at_stop(&text, &until);
        prop_assert!(text.starts_with(&out));
        prop_assert!(until.iter().all(|u| !out.contains(u.as_str())));
    }

    #[test]
    fn limits_never_exceed_the_set(len in 0usize..10_000, n in 0usize..20_000, f in 0.0f64..1.0) {
        prop_assert!(Limit::Count(n).apply(len) <= len);
        prop_assert!(Limit::Fraction(f).apply(len) <= len);
    }
}
