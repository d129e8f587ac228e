//! The registry's trust rules against every attack the issue lists, on in-memory
//! documents (the agent's end-to-end tests repeat the important ones over HTTPS).

use super::metadata::{Artifact, Manifest, Root, MANIFEST_TYPE, ROOT_TYPE};
use super::minisign::{KeyId, PublicKey, Signature};
use super::trust::*;
use super::RegistryError;
use ed25519_dalek::SigningKey;

const NOW: i64 = 1_800_000_000; // 2027-01-15
const LATER: &str = "2030-01-01T00:00:00Z";
const EARLIER: &str = "2020-01-01T00:00:00Z";

struct Key(KeyId, SigningKey);

impl Key {
    fn new(seed: u8) -> Self {
        Self(KeyId([seed; 8]), SigningKey::from_bytes(&[seed; 32]))
    }
    fn public(&self) -> PublicKey {
        PublicKey::from_signing_key(self.0, &self.1)
    }
    fn sign(&self, data: &[u8]) -> Signature {
        Signature::sign(self.0, &self.1, data, "test")
    }
}

fn root(version: u64, root_keys: &[&Key], threshold: u32, manifest_keys: &[&Key]) -> Vec<u8> {
    Root {
        kind: ROOT_TYPE.into(),
        version,
        expires: LATER.into(),
        root_keys: root_keys.iter().map(|k| k.public().to_base64()).collect(),
        root_threshold: threshold,
        manifest_keys: manifest_keys
            .iter()
            .map(|k| k.public().to_base64())
            .collect(),
    }
    .to_json()
}

fn manifest(version: u64, expires: &str) -> Vec<u8> {
    Manifest {
        kind: MANIFEST_TYPE.into(),
        version,
        expires: expires.into(),
        artifacts: vec![Artifact {
            pg_major: 16,
            arch: "x86_64".into(),
            pg_version: "16.2".into(),
            url: "artifacts/pg16.tar.zst".into(),
            length: 10,
            sha256: "00".repeat(32),
        }],
    }
    .to_json()
}

fn sigs(data: &[u8], keys: &[&Key]) -> Vec<Signature> {
    keys.iter().map(|k| k.sign(data)).collect()
}

/// Root 1 (key a, manifest key m1) → 2 (key b, manifest m2) → 3 (keys c+d, threshold 2).
fn chain() -> (TrustedRoot, [Key; 6]) {
    let [a, b, c, d, m1, m2] = [1, 2, 3, 4, 11, 12].map(Key::new);
    let r1 = root(1, &[&a], 1, &[&m1]);
    let t1 = verify_first_root(&r1, &sigs(&r1, &[&a]), &[a.public()]).unwrap();
    let r2 = root(2, &[&b], 1, &[&m2]);
    let t2 = verify_next_root(&t1, &r2, &sigs(&r2, &[&a, &b])).unwrap();
    let r3 = root(3, &[&c, &d], 2, &[&m2]);
    let t3 = verify_next_root(&t2, &r3, &sigs(&r3, &[&b, &c, &d])).unwrap();
    check_root_fresh(&t3, NOW).unwrap();
    (t3, [a, b, c, d, m1, m2])
}

fn expect(result: Result<impl std::fmt::Debug, RegistryError>, needle: &str) {
    let err = result.expect_err("must be refused");
    assert!(err.to_string().contains(needle), "{err}");
}

#[test]
fn rotation_chain_1_2_3_is_accepted() {
    let (t3, [.., m2]) = chain();
    assert_eq!(t3.root.version, 3);
    let m = manifest(1, LATER);
    let accepted = verify_manifest(&t3, &m, &m2.sign(&m), NOW, None).unwrap();
    assert_eq!(accepted.artifact(16, "x86_64").unwrap().pg_version, "16.2");
}

#[test]
fn root_signed_only_by_the_new_key_is_refused() {
    let [a, b] = [1, 2].map(Key::new);
    let r1 = root(1, &[&a], 1, &[]);
    let t1 = verify_first_root(&r1, &sigs(&r1, &[&a]), &[a.public()]).unwrap();
    let r2 = root(2, &[&b], 1, &[]);
    expect(
        verify_next_root(&t1, &r2, &sigs(&r2, &[&b])),
        "0 valid signature(s) by the keys of root version 1",
    );
    // …and only by the old key: the new key must prove it is held.
    expect(
        verify_next_root(&t1, &r2, &sigs(&r2, &[&a])),
        "by its own root keys",
    );
}

#[test]
fn root_skipping_a_version_is_refused() {
    let [a, b] = [1, 2].map(Key::new);
    let r1 = root(1, &[&a], 1, &[]);
    let t1 = verify_first_root(&r1, &sigs(&r1, &[&a]), &[a.public()]).unwrap();
    let r3 = root(3, &[&b], 1, &[]);
    expect(
        verify_next_root(&t1, &r3, &sigs(&r3, &[&a, &b])),
        "published as version 2 says version 3",
    );
}

#[test]
fn each_key_counts_once_towards_a_threshold() {
    let [a, b, c] = [1, 2, 3].map(Key::new);
    let r1 = root(1, &[&a, &b], 2, &[]);
    // Two signatures by a, listed twice: still one key.
    expect(
        verify_first_root(&r1, &sigs(&r1, &[&a, &a]), &[a.public(), b.public()]),
        "1 valid signature(s)",
    );
    let t1 = verify_first_root(&r1, &sigs(&r1, &[&a, &b]), &[a.public(), b.public()]).unwrap();
    // A root listing one key twice cannot meet threshold 2 with it.
    let dup = Root {
        root_keys: vec![c.public().to_base64(), c.public().to_base64()],
        ..Root::parse(&root(2, &[&c], 1, &[])).unwrap().0
    };
    let dup = Root {
        root_threshold: 2,
        ..dup
    }
    .to_json();
    expect(
        verify_next_root(&t1, &dup, &sigs(&dup, &[&a, &b, &c, &c])),
        "root_keys lists key 0303030303030303 twice",
    );
    // Nor with the same public key under a second id: one holder, one vote.
    let alias = Key(KeyId([7; 8]), c.1.clone());
    let aliased = root(2, &[&c, &alias], 2, &[]);
    expect(
        verify_next_root(&t1, &aliased, &sigs(&aliased, &[&a, &b, &c, &alias])),
        "root_keys lists the same public key as 0303030303030303 and 0707070707070707",
    );
    // The same rules for manifest keys.
    let twice = root(2, &[&c], 1, &[&b, &b]);
    expect(
        Root::parse(&twice),
        "manifest_keys lists key 0202020202020202 twice",
    );
    let twice = root(2, &[&c], 1, &[&c, &alias]);
    expect(
        Root::parse(&twice),
        "manifest_keys lists the same public key",
    );
}

#[test]
fn first_root_must_be_signed_by_the_pinned_key() {
    let [a, evil] = [1, 66].map(Key::new);
    let r1 = root(1, &[&evil], 1, &[]);
    expect(
        verify_first_root(&r1, &sigs(&r1, &[&evil]), &[a.public()]),
        "check that --registry-root-key",
    );
}

#[test]
fn tampered_manifest_byte_is_refused() {
    let (t3, [.., m2]) = chain();
    let m = manifest(1, LATER);
    let sig = m2.sign(&m);
    let mut tampered = m.clone();
    let at = tampered.iter().position(|&b| b == b'6').unwrap();
    tampered[at] = b'7';
    expect(
        verify_manifest(&t3, &tampered, &sig, NOW, None),
        "does not match the file",
    );
}

#[test]
fn manifest_signed_by_a_removed_key_is_refused() {
    let (t3, [.., m1, _]) = chain();
    let m = manifest(1, LATER);
    expect(
        verify_manifest(&t3, &m, &m1.sign(&m), NOW, None),
        "which root version 3 does not list as a manifest key",
    );
}

#[test]
fn replayed_older_manifest_is_refused() {
    let (t3, [.., m2]) = chain();
    let m5 = manifest(5, LATER);
    let accepted = verify_manifest(&t3, &m5, &m2.sign(&m5), NOW, None).unwrap();
    let floor = floor_after(&t3, &accepted, m2.0, None);
    assert_eq!(
        floor.binding(&t3.keys),
        Some((5, m2.0.to_string().as_str()))
    );
    let m4 = manifest(4, LATER);
    expect(
        verify_manifest(&t3, &m4, &m2.sign(&m4), NOW, Some(&floor)),
        "version 4 but version 5 was already accepted",
    );
    // The same version again is fine (a client re-checking an unchanged registry).
    verify_manifest(&t3, &m5, &m2.sign(&m5), NOW, Some(&floor)).unwrap();
}

#[test]
fn floor_of_a_removed_manifest_key_is_dropped() {
    let (t3, [_, _, c, d, _, m2]) = chain();
    let huge = manifest(u64::MAX, LATER);
    let leaked = verify_manifest(&t3, &huge, &m2.sign(&huge), NOW, None).unwrap();
    let floor = floor_after(&t3, &leaked, m2.0, None);
    let m3 = Key::new(13);
    let r4 = root(4, &[&c, &d], 2, &[&m3]);
    let t4 = verify_next_root(&t3, &r4, &sigs(&r4, &[&c, &d])).unwrap();
    let m = manifest(2, LATER);
    let ok = verify_manifest(&t4, &m, &m3.sign(&m), NOW, Some(&floor)).unwrap();
    let after = floor_after(&t4, &ok, m3.0, Some(&floor));
    let only_m3 = [(m3.0.to_string(), 2)].into_iter().collect();
    assert_eq!(after.versions_by_manifest_key, only_m3);
}

#[test]
fn expired_manifest_and_root_are_refused() {
    let (t3, [.., m2]) = chain();
    let m = manifest(1, EARLIER);
    expect(
        verify_manifest(&t3, &m, &m2.sign(&m), NOW, None),
        "manifest.json version 1 expired at 2020-01-01T00:00:00Z",
    );
    let later = super::super::time::parse_rfc3339(LATER).unwrap();
    expect(check_root_fresh(&t3, later), "root version 3 expired");
}

#[test]
fn unknown_fields_and_wrong_types_are_refused() {
    let (t3, [.., m2]) = chain();
    let text = String::from_utf8(manifest(1, LATER)).unwrap();
    let extra = text.replacen('{', "{\"mirror\": \"x\",", 1).into_bytes();
    expect(
        verify_manifest(&t3, &extra, &m2.sign(&extra), NOW, None),
        "unknown field `mirror`",
    );
    let k = Key::new(1);
    let r = root(1, &[&k], 1, &[]);
    expect(Manifest::parse(&r), "manifest.json");
}

#[test]
fn replay_of_an_old_key_manifest_after_adding_a_key_is_refused() {
    let (t3, [_, _, c, d, _, m2]) = chain();
    let m5 = manifest(5, LATER);
    let accepted = verify_manifest(&t3, &m5, &m2.sign(&m5), NOW, None).unwrap();
    let floor = floor_after(&t3, &accepted, m2.0, None);
    // Routine rotation, step 1: root 4 lists the old key m2 and the new key m3.
    let m3 = Key::new(13);
    let r4 = root(4, &[&c, &d], 2, &[&m2, &m3]);
    let t4 = verify_next_root(&t3, &r4, &sigs(&r4, &[&c, &d])).unwrap();
    // An older manifest signed by m2, which is still listed, must not come back.
    let m4 = manifest(4, LATER);
    expect(
        verify_manifest(&t4, &m4, &m2.sign(&m4), NOW, Some(&floor)),
        "version 4 but version 5 was already accepted",
    );
    // The new key takes over at version 6; m2's version 5 is now a replay too.
    let m6 = manifest(6, LATER);
    let ok = verify_manifest(&t4, &m6, &m3.sign(&m6), NOW, Some(&floor)).unwrap();
    let floor = floor_after(&t4, &ok, m3.0, Some(&floor));
    expect(
        verify_manifest(&t4, &m5, &m2.sign(&m5), NOW, Some(&floor)),
        "version 5 but version 6 was already accepted",
    );
}

#[test]
fn removing_a_leaked_manifest_key_drops_its_inflated_floor() {
    let (t3, [_, _, c, d, _, m2]) = chain();
    let m3 = Key::new(13);
    let r4 = root(4, &[&c, &d], 2, &[&m2, &m3]);
    let t4 = verify_next_root(&t3, &r4, &sigs(&r4, &[&c, &d])).unwrap();
    let legit = manifest(3, LATER);
    let ok = verify_manifest(&t4, &legit, &m3.sign(&legit), NOW, None).unwrap();
    let floor = floor_after(&t4, &ok, m3.0, None);
    // m2 leaks; the attacker's manifest claims the highest possible version.
    let huge = manifest(u64::MAX, LATER);
    let bad = verify_manifest(&t4, &huge, &m2.sign(&huge), NOW, Some(&floor)).unwrap();
    let floor = floor_after(&t4, &bad, m2.0, Some(&floor));
    // While m2 is listed, its inflated version holds for every key.
    let m4 = manifest(4, LATER);
    expect(
        verify_manifest(&t4, &m4, &m3.sign(&m4), NOW, Some(&floor)),
        "already accepted",
    );
    // Recovery: root 5 drops m2; m3's version 4 is accepted again…
    let r5 = root(5, &[&c, &d], 2, &[&m3]);
    let t5 = verify_next_root(&t4, &r5, &sigs(&r5, &[&c, &d])).unwrap();
    let ok = verify_manifest(&t5, &m4, &m3.sign(&m4), NOW, Some(&floor)).unwrap();
    let floor = floor_after(&t5, &ok, m3.0, Some(&floor));
    // …but m3's own history still counts: its version 3 is a replay now.
    expect(
        verify_manifest(&t5, &legit, &m3.sign(&legit), NOW, Some(&floor)),
        "version 3 but version 4 was already accepted",
    );
    expect(
        verify_manifest(&t5, &huge, &m2.sign(&huge), NOW, Some(&floor)),
        "does not list as a manifest key",
    );
}

#[test]
fn a_root_listing_too_many_keys_is_refused() {
    let many: Vec<Key> = (100..133).map(Key::new).collect();
    let refs: Vec<&Key> = many.iter().collect();
    let (some, all) = (&refs[..32], &refs[..]);
    // 32 of each is the most a root may list.
    Root::parse(&root(1, some, 1, some)).unwrap();
    expect(
        Root::parse(&root(1, all, 1, &[])),
        "root.json: root_keys lists 33 keys; at most 32 are allowed",
    );
    expect(
        Root::parse(&root(1, some, 1, all)),
        "root.json: manifest_keys lists 33 keys; at most 32 are allowed",
    );
}

#[test]
fn sha256_must_be_lower_case_hex() {
    let with_hash = |sha256: String| {
        let mut m = Manifest::parse(&manifest(1, LATER)).unwrap();
        m.artifacts[0].sha256 = sha256;
        m.to_json()
    };
    let needle = "manifest.json: PostgreSQL 16 x86_64: sha256 must be 64 lower-case hex digits";
    expect(Manifest::parse(&with_hash("AB".repeat(32))), needle);
    expect(Manifest::parse(&with_hash("ab".repeat(31))), needle);
    expect(Manifest::parse(&with_hash("ag".repeat(32))), needle);
    Manifest::parse(&with_hash("0123456789abcdef".repeat(4))).unwrap();
}
