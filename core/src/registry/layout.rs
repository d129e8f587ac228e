//! Where each file of a registry tree lives, relative to the registry's base URL (or
//! directory). One place, so the signer, `dbcrate-registry serve` and the agent agree.
//!
//! ```text
//! root/1.root.json                      root version 1
//! root/1.root.json.<KEY ID>.minisig     one signature per signing key
//! root/2.root.json …                    every later root, never deleted
//! manifest.json, manifest.json.minisig  the current manifest
//! artifacts/…                           the files the manifest lists
//! ```
//! A root carries one minisig file per key because minisign signatures have one signer;
//! `minisign -V -H -p KEY.pub -m root/2.root.json -x root/2.root.json.<ID>.minisig`
//! checks any of them with the stock tool.

use super::minisign::KeyId;

/// The manifest, relative to the registry root.
pub const MANIFEST: &str = "manifest.json";
/// The manifest's signature.
pub const MANIFEST_SIG: &str = "manifest.json.minisig";
/// The directory holding the roots.
pub const ROOT_DIR: &str = "root";
/// The directory `dbcrate-registry build` writes artifacts into.
pub const ARTIFACT_DIR: &str = "artifacts";

/// The file name (inside [`ROOT_DIR`]) of root `version`.
pub fn root_file(version: u64) -> String {
    format!("{version}.root.json")
}

/// The file name (inside [`ROOT_DIR`]) of `key`'s signature over root `version`.
pub fn root_sig_file(version: u64, key: KeyId) -> String {
    format!("{version}.root.json.{key}.minisig")
}
