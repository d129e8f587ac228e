//! The community age test vectors (testdata/age-cctv) against dbcrate's own key paths:
//! unwrapping a file key from a header, decrypting with a bare file key, and decrypting
//! with an identity file. Each must agree with the vector's `expect`.

use dbcrate_agent::crypto::{unwrap_file_key, Decryption};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

struct Vector {
    name: String,
    expect: String,
    payload: Option<String>,
    file_key: Option<String>,
    identities: Vec<String>,
    body: Vec<u8>,
}

fn load(path: &Path) -> Vector {
    let bytes = std::fs::read(path).unwrap();
    let split = bytes.windows(2).position(|w| w == b"\n\n").unwrap();
    let header = std::str::from_utf8(&bytes[..split]).unwrap();
    let mut v = Vector {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        expect: String::new(),
        payload: None,
        file_key: None,
        identities: Vec::new(),
        body: bytes[split + 2..].to_vec(),
    };
    for line in header.lines() {
        let (key, value) = line.split_once(": ").unwrap();
        match key {
            "expect" => v.expect = value.to_string(),
            "payload" => v.payload = Some(value.to_string()),
            "file key" => v.file_key = Some(value.to_string()),
            "identity" => v.identities.push(value.to_string()),
            // Large bodies are stored zstd-compressed (see testdata/age-cctv/README.md).
            "compressed" if value == "zstd" => v.body = zstd::decode_all(&v.body[..]).unwrap(),
            "compressed" => panic!("{}: unsupported compression {value}", path.display()),
            _ => {}
        }
    }
    v
}

/// Where dbcrate's paths knowingly differ from a vector's expectation, and why. The test
/// fails if this list and reality part ways in either direction.
const KNOWN_DISAGREEMENTS: &[(&str, &str)] = &[
    // age 0.11's header parser accepts these two malformed stanzas (every path). The
    // header MAC still covers the bytes as written, so nobody without the file key can
    // produce such a header; it is leniency, not a way around authentication.
    ("stanza_missing_body", "unwrap"),
    ("stanza_missing_body", "identity file"),
    ("stanza_missing_body", "file key"),
    ("stanza_missing_final_line", "unwrap"),
    ("stanza_missing_final_line", "identity file"),
    ("stanza_missing_final_line", "file key"),
    // A bare file key opens the payload without reading recipient stanzas, so a
    // malformed X25519 stanza goes unnoticed; the header MAC, checked with that key,
    // still proves the header was written by someone who had it.
    ("x25519_extra_argument", "file key"),
    ("x25519_identity", "file key"),
    ("x25519_long_share", "file key"),
    ("x25519_low_order", "file key"),
    ("x25519_not_canonical_share", "file key"),
    ("x25519_short_share", "file key"),
];

/// Decrypts `body` fully with `decryption`; Ok(SHA-256 of the plaintext) or Err.
fn decrypt(body: &[u8], decryption: &Decryption) -> Result<String, String> {
    let decryptor = age::Decryptor::new_buffered(body).map_err(|e| e.to_string())?;
    let mut reader = decryptor
        .decrypt(decryption.identities().into_iter())
        .map_err(|e| e.to_string())?;
    let mut plaintext = Vec::new();
    reader
        .read_to_end(&mut plaintext)
        .map_err(|e| e.to_string())?;
    Ok(dbcrate_core::hex::encode(&Sha256::digest(&plaintext)))
}

#[test]
fn every_x25519_vector_agrees_with_its_expectation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/age-cctv");
    let scratch = dbcrate_testkit::TempDir::new("cctv").unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let v = load(&path);
        checked += 1;
        let identities: Vec<age::x25519::Identity> = v
            .identities
            .iter()
            .map(|i| age::x25519::Identity::from_str(i).unwrap())
            .collect();
        let succeeds = v.expect == "success";
        let key_readable = succeeds || v.expect == "payload failure";

        // 1. The file key from the header alone, as a managed restore unwraps it.
        let unwrapped = identities
            .iter()
            .find_map(|id| unwrap_file_key(&v.body, id).ok())
            .map(|k| dbcrate_core::hex::encode(k.expose_secret()));
        if key_readable {
            if unwrapped != v.file_key {
                failures.push((
                    v.name.clone(),
                    "unwrap",
                    format!("{unwrapped:?}, want {:?}", v.file_key),
                ));
            }
        } else if unwrapped.is_some() {
            failures.push((
                v.name.clone(),
                "unwrap",
                format!("{} expected, but a file key was unwrapped", v.expect),
            ));
        }

        // 2. The identity file path (--identity).
        let identity_file = scratch.path().join(format!("{}.key", v.name));
        std::fs::write(&identity_file, v.identities.join("\n")).unwrap();
        let by_identity = Decryption::from_identity_file(&identity_file)
            .map_err(|e| e.to_string())
            .and_then(|d| decrypt(&v.body, &d));
        check(&v, "identity file", &by_identity, &mut failures);

        // 3. The bare file key path (--file-key-file); "no match" vectors are about
        // stanzas, which a bare file key does not read.
        if let (Some(key), true) = (&v.file_key, v.expect != "no match") {
            let key_file = scratch.path().join(format!("{}.filekey", v.name));
            std::fs::write(&key_file, key).unwrap();
            let by_key = Decryption::from_file_key_file(&key_file)
                .map_err(|e| e.to_string())
                .and_then(|d| decrypt(&v.body, &d));
            check(&v, "file key", &by_key, &mut failures);
        }
    }
    assert!(
        checked >= 60,
        "only {checked} vectors found in {}",
        dir.display()
    );
    failures.sort();
    let found: Vec<(&str, &str)> = failures.iter().map(|(n, p, _)| (n.as_str(), *p)).collect();
    let mut known = KNOWN_DISAGREEMENTS.to_vec();
    known.sort();
    assert_eq!(found, known, "disagreements changed:\n{failures:#?}");
}

type Disagreement = (String, &'static str, String);

fn check(
    v: &Vector,
    path: &'static str,
    result: &Result<String, String>,
    failures: &mut Vec<Disagreement>,
) {
    match (v.expect.as_str(), result) {
        ("success", Ok(digest)) if Some(digest) == v.payload.as_ref() => {}
        ("success", other) => failures.push((v.name.clone(), path, format!("{other:?}"))),
        (_, Ok(_)) => failures.push((
            v.name.clone(),
            path,
            format!("decrypted, want {}", v.expect),
        )),
        (_, Err(_)) => {}
    }
}
