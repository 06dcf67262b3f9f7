//! Compile-fail tests: wrong arity, invalid calling-convention descriptions, unsupported targets.

#[test]
fn compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/too_many_args.rs");
    t.compile_fail("tests/ui/abi_*.rs");
    // With the mock backend the stubs exist on the host, so this one only holds without it.
    #[cfg(not(feature = "mock"))]
    t.compile_fail("tests/ui/unsupported_target.rs");
    // The typed API exists on the host with the mock only.
    #[cfg(feature = "mock")]
    t.compile_fail("tests/ui/mock_*.rs");
}
