//! kpack's `build_pod_test.go` (§8), ported for the kpack-compatible mode.

use super::test_support::*;
use super::*;

fn kpack_pod(b: &Build) -> k8s_openapi::api::core::v1::Pod {
    let mut ctx = context(Mode::Kpack);
    ctx.secrets = example_secrets();
    build_pod(b, &images(), &ctx).unwrap()
}

// The whole §1.15 example pod, hand-written.
#[test]
fn example_git_build_pod() {
    let pod = kpack_pod(&git_build());
    golden("kpack-git-build", &pod);
    assert!(
        check_restricted(&pod).is_empty(),
        "{:?}",
        check_restricted(&pod)
    );
}
