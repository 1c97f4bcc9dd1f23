use super::*;

#[test]
fn common_queries_parse() {
    for q in [
        "1",
        "-2^2",
        "rate(foo[5m])",
        "sum by (a) (foo)",
        "foo offset -5m @ 100",
    ] {
        assert!(parse(q).is_ok(), "{q}");
    }
}
