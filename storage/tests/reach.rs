//! Directory destinations under a reach policy: only under a configured root, never
//! through `.`/`..` or a symbolic link below the root, checked before anything is touched.

use dbcrate_storage::reach::ReachPolicy;
use dbcrate_storage::FailureClass;
use dbcrate_testkit::TempDir;
use std::path::PathBuf;

#[test]
fn directories_stay_under_their_roots() {
    let base = TempDir::new("storage-reach").unwrap();
    let root = base.path().join("root");
    std::fs::create_dir_all(root.join("acme")).unwrap();
    std::fs::create_dir_all(base.path().join("outside")).unwrap();
    std::os::unix::fs::symlink(base.path().join("outside"), root.join("escape")).unwrap();
    let policy = ReachPolicy::new(vec![], std::slice::from_ref(&root)).unwrap();
    let root = policy.directory_roots()[0].clone();

    assert!(policy.check_directory(&root.join("acme")).is_ok());
    assert!(policy
        .check_directory(&root.join("acme/new/deeper"))
        .is_ok());
    for (bad, why) in [
        (PathBuf::from("/etc"), "not under"),
        (root.join("../outside"), ". or .."),
        (root.join("acme/../../outside"), ". or .."),
        (root.join("escape"), "symbolic link"),
        (root.join("escape/x"), "symbolic link"),
        (PathBuf::from("relative"), "absolute"),
    ] {
        let err = policy.check_directory(&bad).unwrap_err();
        assert!(err.to_string().contains(why), "{}: {err}", bad.display());
        assert_eq!(err.class(), FailureClass::NotAllowed);
    }
    let err = ReachPolicy::default()
        .check_directory(&root.join("acme"))
        .unwrap_err();
    assert!(err.to_string().contains("DBCRATE_DIRECTORY_ROOTS"), "{err}");
    // A root that does not exist is a configuration error at start, not later.
    assert!(ReachPolicy::new(vec![], &[base.path().join("missing")]).is_err());
}
