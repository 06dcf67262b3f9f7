//! The SMCCC and PSCI typed calls on the mock: every call's function identifier and arguments, and the
//! answers decoded, with the values Xen 4.17 gives written out by hand (from a run on Xen and from
//! `vsmc.c`/`vpsci.c`), not computed by the code under test.

#[cfg(feature = "mock")]
mod on_mock {
    use xen_hypercall::mock::{self, SmcccCall};
    use xen_hypercall::{psci, smccc};

    /// -n as the 64-bit register Xen writes (`PSCI_SET_RESULT` of an `int32_t`, sign-extended).
    const fn neg(n: i64) -> u64 {
        (-n) as u64
    }

    fn one(fid: u32, args: &[u64]) -> SmcccCall {
        let calls = mock::take_smccc_calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].fid, fid, "function identifier {:#x}", calls[0].fid);
        assert_eq!(calls[0].args, args);
        calls[0].clone()
    }

    #[test]
    fn smccc_version_and_arch_features() {
        mock::reset();
        mock::smccc_returns([0x1_0001, 0, 0, 0]);
        assert_eq!(smccc::version(), Ok(smccc::Version { major: 1, minor: 1 }));
        one(0x8000_0000, &[]);
        // SMCCC 1.0 has no SMCCC_VERSION: NOT_SUPPORTED.
        mock::smccc_returns([neg(1), 0, 0, 0]);
        assert_eq!(smccc::version(), Err(smccc::Error::NOT_SUPPORTED));
        one(0x8000_0000, &[]);
        mock::smccc_returns([neg(2), 0, 0, 0]);
        assert_eq!(
            smccc::arch_features(smccc::ARCH_WORKAROUND_1),
            Err(smccc::Error::NOT_REQUIRED)
        );
        one(0x8000_0001, &[0x8000_8000]);
        mock::smccc_returns([0, 0, 0, 0]);
        assert_eq!(smccc::arch_features(0x8000_7fff), Ok(0));
        one(0x8000_0001, &[0x8000_7fff]);
    }

    #[test]
    fn hypervisor_service_and_xen_detection() {
        mock::reset();
        mock::smccc_returns([3, 0, 0, 0]);
        assert_eq!(smccc::hypervisor::call_count(), Ok(3));
        one(0x8500_ff00, &[]);
        mock::smccc_returns([0, 1, 0, 0]);
        assert_eq!(smccc::hypervisor::revision(), Ok((0, 1)));
        one(0x8500_ff03, &[]);
        // Seen from an AArch64 dom0 on Xen 4.17.7: x0..x3 of 0x8500ff01.
        mock::smccc_returns([0xdc12_18a7, 0x6943_98c6, 0xd179_cf9a, 0x67e6_de8d]);
        assert!(smccc::is_xen());
        one(0x8500_ff01, &[]);
        // Its bytes are XEN_SMCCC_UID, a71812dc-c698-4369-9acf-79d18ddee667.
        assert_eq!(
            smccc::Uid::XEN.bytes(),
            [
                0xa7, 0x18, 0x12, 0xdc, 0xc6, 0x98, 0x43, 0x69, 0x9a, 0xcf, 0x79, 0xd1, 0x8d, 0xde,
                0xe6, 0x67
            ]
        );
        // KVM's UID (28b46fb6-2ec5-11e9-a9ca-4b564d003a74) is not Xen's.
        mock::smccc_returns([0xb66f_b428, 0xe911_c52e, 0x564b_caa9, 0x743a_004d]);
        assert!(!smccc::is_xen());
        // No hypervisor service: w0 = 0xffffffff.
        mock::smccc_returns([neg(1), 0, 0, 0]);
        assert!(!smccc::is_xen());
        mock::smccc_returns([neg(1), 0, 0, 0]);
        assert_eq!(smccc::hypervisor::uid(), None);
        // A UID that differs in one register only.
        mock::smccc_returns([0xdc12_18a7, 0x6943_98c6, 0xd179_cf9a, 0x67e6_de8c]);
        assert!(!smccc::is_xen());
    }

    #[test]
    fn psci_calls_and_codes() {
        mock::reset();
        mock::smccc_returns([0x1_0001, 0, 0, 0]);
        assert_eq!(psci::version(), psci::Version { major: 1, minor: 1 });
        one(0x8400_0000, &[]);

        mock::smccc_returns([0, 0, 0, 0]);
        assert_eq!(psci::features(0xc400_0003), Ok(0));
        one(0x8400_000a, &[0xc400_0003]);
        mock::smccc_returns([neg(1), 0, 0, 0]);
        assert_eq!(psci::features(0x8400_0012), Err(psci::Error::NOT_SUPPORTED));
        one(0x8400_000a, &[0x8400_0012]);

        // CPU_ON: SMC64 on a 64-bit host (AArch64's identifier), target, entry, context in order.
        mock::smccc_returns([0, 0, 0, 0]);
        // SAFETY: the mock runs nothing.
        assert_eq!(unsafe { psci::cpu_on(1, 0x4020_1000, 0xc0de) }, Ok(()));
        let on = if usize::BITS == 64 {
            0xc400_0003
        } else {
            0x8400_0003
        };
        one(on, &[1, 0x4020_1000, 0xc0de]);
        mock::smccc_returns([neg(2), 0, 0, 0]);
        // SAFETY: as above.
        let r = unsafe { psci::cpu_on(7, 0x4020_1000, 0) };
        assert_eq!(r, Err(psci::Error::INVALID_PARAMETERS));
        one(on, &[7, 0x4020_1000, 0]);
        mock::smccc_returns([neg(4), 0, 0, 0]);
        // SAFETY: as above.
        let r = unsafe { psci::cpu_on(1, 0x4020_1000, 0) };
        assert_eq!(r, Err(psci::Error::ALREADY_ON));
        mock::take_smccc_calls();

        let aff = if usize::BITS == 64 {
            0xc400_0004
        } else {
            0x8400_0004
        };
        mock::smccc_returns([1, 0, 0, 0]);
        assert_eq!(psci::affinity_info(1, 0), Ok(psci::AffinityState::OFF));
        one(aff, &[1, 0]);
        mock::smccc_returns([0, 0, 0, 0]);
        assert_eq!(psci::affinity_info(1, 0), Ok(psci::AffinityState::ON));
        mock::smccc_returns([2, 0, 0, 0]);
        assert_eq!(
            psci::affinity_info(1, 0),
            Ok(psci::AffinityState::ON_PENDING)
        );
        mock::smccc_returns([neg(2), 0, 0, 0]);
        assert_eq!(
            psci::affinity_info(1, 1),
            Err(psci::Error::INVALID_PARAMETERS)
        );
        mock::take_smccc_calls();

        mock::smccc_returns([2, 0, 0, 0]);
        assert_eq!(
            psci::migrate_info_type(),
            Ok(psci::MigrateType::NOT_PRESENT_OR_NOT_REQUIRED)
        );
        one(0x8400_0006, &[]);

        mock::smccc_returns([neg(3), 0, 0, 0]);
        assert_eq!(psci::cpu_off(), psci::Error::DENIED);
        one(0x8400_0002, &[]);
        mock::smccc_returns([neg(6), 0, 0, 0]);
        assert_eq!(psci::system_off(), psci::Error::INTERNAL_FAILURE);
        one(0x8400_0008, &[]);
        mock::smccc_returns([neg(1), 0, 0, 0]);
        assert_eq!(psci::system_reset(), psci::Error::NOT_SUPPORTED);
        one(0x8400_0009, &[]);
    }

    #[test]
    fn unknown_codes_are_kept_and_named_codes_print() {
        mock::reset();
        mock::smccc_returns([neg(42), 0, 0, 0]);
        let e = psci::features(0x8400_0000).unwrap_err();
        assert_eq!(e, psci::Error(-42));
        assert_eq!(e.name(), None);
        assert_eq!(
            psci::Error::INVALID_PARAMETERS.to_string(),
            "INVALID_PARAMETERS (-2)"
        );
        assert_eq!(format!("{:?}", psci::Error(-9)), "INVALID_ADDRESS");
        assert_eq!(smccc::Error(-3).name(), Some("INVALID_PARAMETER"));
        // Opted in, the mock answers what finds the queue empty as Xen does an unknown function.
        mock::smccc_answer_not_supported();
        assert_eq!(smccc::arch_features(1), Err(smccc::Error::NOT_SUPPORTED));
        assert_eq!(mock::take_smccc_calls()[1].results, [u64::MAX, 0, 0, 0]);
    }

    #[test]
    #[should_panic(expected = "mock: unscripted SMCCC call 0x80000000 (arguments [])")]
    fn an_unscripted_smccc_call_fails_the_test() {
        mock::reset();
        // Nothing queued and no opt-in: the mock refuses to make up an answer.
        let _ = smccc::version();
    }

    #[test]
    #[should_panic(expected = "mock: unscripted SMCCC call 0x80000001")]
    fn reset_forgets_the_not_supported_opt_in() {
        mock::reset();
        mock::smccc_answer_not_supported();
        assert_eq!(smccc::arch_features(1), Err(smccc::Error::NOT_SUPPORTED));
        mock::reset();
        let _ = smccc::arch_features(1);
    }

    #[test]
    fn smccc_calls_do_not_touch_the_hypercall_record() {
        mock::reset();
        mock::smccc_returns([0x1_0001, 0, 0, 0]);
        let _ = psci::version();
        assert!(mock::calls().is_empty());
        assert_eq!(mock::smccc_calls().len(), 1);
        mock::reset();
        assert!(mock::smccc_calls().is_empty());
    }
}

#[cfg(not(feature = "mock"))]
#[test]
#[ignore = "needs the mock backend: run `cargo test --features mock` (cargo xtask test does)"]
fn needs_feature_mock() {}
