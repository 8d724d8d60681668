//! GPU benchmark (placeholder until written).
fn main() {}
