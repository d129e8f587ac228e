//! Where the control plane may reach on a tenant's behalf.
//!
//! A tenant admin chooses a destination's S3 endpoint, SFTP host or directory; the
//! control plane then connects there itself (probe, README, age header reads,
//! retention deletes). Without limits that is a server-side request forgery: the
//! control plane's own ports, a database on loopback, a cloud metadata service or any
//! internal host would be one destination away. A [`ReachPolicy`] sets the limits:
//!
//! - **Addresses.** Only public unicast addresses, unless the operator allows named
//!   ranges (`10.0.0.0/8`, `127.0.0.1/32`, …) for self-hosted storage. Names are
//!   resolved and every address is checked; the S3 client's resolver and the SFTP
//!   connection use only the checked addresses, so a name cannot pass the check and then
//!   re-resolve to a forbidden address on connect. IP literals are checked the same way.
//! - **Directories.** Only under the operator's configured roots, given as absolute
//!   paths without `.` or `..`, and with no symbolic link anywhere below the root (a link
//!   could lead out of it). Nothing is written before the check passes.
//!
//! The agent uses only the directory rule, with roots of its own (`dbcrate-agent run
//! --directory-root`): a scheduled job's directory destination must be under them. It
//! does not limit addresses: it runs on the database host and reaches what its operator
//! lets it reach.

use crate::error::{Error, FailureClass, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Component, Path, PathBuf};

/// Words in every refusal of an address, telling the reader why it was refused. Only
/// for people: a refusal that comes back wrapped in another library's error (the S3
/// client's resolver) is recognised by [`refused_in_chain`], never by these words.
pub const REFUSED_MARK: &str = "which destinations may not reach";

/// An IP network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `192.168.1.5` (one address), `fd00::/8`, `::1`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid_input(format!(
                "{text:?} is not a network ({why}); write it like 10.0.0.0/8, 127.0.0.1/32 or fd00::/8"
            ))
        };
        let (address, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| bad("not an IP address"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad("the prefix length is out of range"))?,
            None => max,
        };
        let network = Self { address, prefix };
        if network.masked(address) != address {
            return Err(bad("host bits are set after the prefix"));
        }
        Ok(network)
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }

    /// Whether `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.address.is_ipv4() && self.masked(ip) == self.address
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// Why `ip` is not a public unicast address, if it is not.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            // Addresses that carry an IPv4 address reach that address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let segments = v6.segments();
            if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6] == [0; 4] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return non_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            let first = segments[0];
            if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_loopback() {
                Some("loopback")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first & 0xff00 == 0xff00 {
                Some("multicast")
            } else if first == 0x2001 && segments[1] == 0x0db8 {
                Some("reserved for documentation")
            } else if first == 0x2002 || (first == 0x2001 && segments[1] == 0) {
                Some("a tunnel to an IPv4 address")
            } else if segments[..4] == [0x100, 0, 0, 0] {
                Some("a discard address")
            } else if segments[..6] == [0; 6] {
                Some("IPv4-compatible (deprecated)")
            } else {
                None
            }
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => Some("the 'this network' range"),
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Some("private"),
        (100, 64..=127, _) => Some("shared (carrier-grade NAT)"),
        (127, _, _) => Some("loopback"),
        (169, 254, _) => Some("link-local (cloud metadata services live here)"),
        (192, 0, 0) => Some("reserved for protocol assignments"),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Some("reserved for documentation"),
        (198, 18..=19, _) => Some("reserved for benchmarking"),
        (224..=239, _, _) => Some("multicast"),
        (240..=255, _, _) => Some("reserved or broadcast"),
        _ => None,
    }
}

/// The limits on what the control plane reaches for a tenant; see the module
/// documentation. The default allows only public addresses and no directory at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReachPolicy {
    allowed_networks: Vec<Network>,
    directory_roots: Vec<PathBuf>,
}

impl ReachPolicy {
    /// A policy allowing `allowed_networks` besides public addresses, and directories
    /// under `directory_roots` (absolute, existing; symbolic links in a root itself are
    /// resolved once here, since the operator chose it).
    pub fn new(allowed_networks: Vec<Network>, directory_roots: &[PathBuf]) -> Result<Self> {
        let mut roots = Vec::new();
        for root in directory_roots {
            if !root.is_absolute() {
                return Err(Error::invalid_input(format!(
                    "directory root {} is not an absolute path",
                    root.display()
                )));
            }
            let canonical = std::fs::canonicalize(root).map_err(|e| {
                Error::invalid_input(format!(
                    "directory root {}: {e}; create it first",
                    root.display()
                ))
            })?;
            if !canonical.is_dir() {
                return Err(Error::invalid_input(format!(
                    "directory root {} is not a directory",
                    root.display()
                )));
            }
            roots.push(canonical);
        }
        Ok(Self {
            allowed_networks,
            directory_roots: roots,
        })
    }

    /// The configured directory roots (resolved).
    pub fn directory_roots(&self) -> &[PathBuf] {
        &self.directory_roots
    }

    /// The networks allowed besides public addresses.
    pub fn allowed_networks(&self) -> &[Network] {
        &self.allowed_networks
    }

    /// Whether `ip` may be reached: public, or inside an allowed network.
    pub fn check_ip(&self, ip: IpAddr) -> Result<()> {
        let Some(why) = non_public(ip) else {
            return Ok(());
        };
        if self.allowed_networks.iter().any(|n| n.contains(ip)) {
            return Ok(());
        }
        Err(Error::not_allowed(format!(
            "the address is {why}, {REFUSED_MARK}; an operator can allow a private range \
             for self-hosted storage (DBCRATE_OUTBOUND_ALLOW)"
        )))
    }

    /// Resolves `host` and returns its addresses with `port`, each checked; refused if
    /// any address is forbidden (a name that answers with a mix is not trusted).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| Error::unreachable(format!("cannot resolve the name {host:?}")))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Error::unreachable(format!(
                "the name {host:?} has no address"
            )));
        }
        for addr in &addrs {
            self.check_ip(addr.ip())?;
        }
        Ok(addrs)
    }

    /// `path` if it is an absolute, normalised path under a configured root with no
    /// symbolic link below the root (checked without following any); refused otherwise,
    /// before anything is read or written there. Components that do not exist yet are
    /// allowed (they are created as directories, never links).
    pub fn check_directory(&self, path: &Path) -> Result<PathBuf> {
        let refuse = |why: &str| {
            Error::not_allowed(format!(
                "the directory {} is refused: {why}",
                path.display()
            ))
        };
        if !path.is_absolute() {
            return Err(refuse("it is not an absolute path"));
        }
        if path
            .components()
            .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
        {
            return Err(refuse("it holds a . or .. component"));
        }
        if self.directory_roots.is_empty() {
            return Err(refuse(
                "no directory roots are configured; the operator allows directory \
                 destinations under chosen roots with DBCRATE_DIRECTORY_ROOTS",
            ));
        }
        let Some((root, rest)) = self
            .directory_roots
            .iter()
            .find_map(|root| path.strip_prefix(root).ok().map(|rest| (root, rest)))
        else {
            return Err(refuse(&format!(
                "it is not under a configured directory root ({})",
                self.directory_roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let mut walked = root.clone();
        for component in rest.components() {
            walked.push(component);
            match std::fs::symlink_metadata(&walked) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(refuse(&format!(
                        "{} is a symbolic link (it could lead out of the root)",
                        walked.display()
                    )))
                }
                Ok(meta) if !meta.is_dir() => {
                    return Err(refuse(&format!("{} is not a directory", walked.display())))
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(refuse(&format!("{}: {e}", walked.display()))),
            }
        }
        Ok(path.to_path_buf())
    }
}

/// Whether `error` or one of its causes is a refusal by a reach policy: the S3 client
/// hands the [`PolicyResolver`]'s refusal back wrapped in its own errors, which keep it
/// as a cause (an I/O error's payload included, which `source()` skips).
pub fn refused_in_chain(error: &(dyn std::error::Error + 'static)) -> bool {
    crate::error::cause_in_chain::<Error>(error)
        .is_some_and(|e| e.class() == FailureClass::NotAllowed)
}

/// A DNS resolver for the S3 client that answers only addresses the policy allows, so
/// the address checked is the address connected to.
#[derive(Debug, Clone)]
pub struct PolicyResolver(pub std::sync::Arc<ReachPolicy>);

impl aws_smithy_runtime_api::client::dns::ResolveDns for PolicyResolver {
    fn resolve_dns<'a>(
        &'a self,
        name: &'a str,
    ) -> aws_smithy_runtime_api::client::dns::DnsFuture<'a> {
        use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDnsError};
        DnsFuture::new(async move {
            let addrs = self
                .0
                .resolve(name, 0)
                .await
                .map_err(ResolveDnsError::new)?;
            Ok(addrs.into_iter().map(|a| a.ip()).collect())
        })
    }
}

/// The host of an `http(s)://host[:port]/…` URL (IPv6 literals without brackets).
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(authority.split(':').next().unwrap_or(authority)).filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("http://127.0.0.1:3900"), Some("127.0.0.1"));
        assert_eq!(url_host("https://s3.example.com/x"), Some("s3.example.com"));
        assert_eq!(url_host("http://[::1]:9000/"), Some("::1"));
        assert_eq!(url_host("http://user@host:1"), Some("host"));
        assert_eq!(url_host("nothing"), None);
    }

    #[test]
    fn networks_parse_and_contain() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.1.2.3")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(!n.contains(ip("::ffff:10.0.0.1")));
        assert!(Network::parse("127.0.0.1")
            .unwrap()
            .contains(ip("127.0.0.1")));
        assert!(!Network::parse("127.0.0.1")
            .unwrap()
            .contains(ip("127.0.0.2")));
        assert!(Network::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "ten", "10.0.0.0/x", "::1/129"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn non_public_addresses() {
        for forbidden in [
            "127.0.0.1",
            "10.0.0.5",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "ff02::1",
        ] {
            assert!(non_public(ip(forbidden)).is_some(), "{forbidden}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert_eq!(non_public(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn allowed_ranges_open_private_addresses() {
        let strict = ReachPolicy::default();
        let err = strict.check_ip(ip("127.0.0.1")).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(strict.check_ip(ip("8.8.8.8")).is_ok());
        let open = ReachPolicy::new(vec![Network::parse("127.0.0.0/8").unwrap()], &[]).unwrap();
        assert!(open.check_ip(ip("127.0.0.1")).is_ok());
        assert!(open.check_ip(ip("10.0.0.1")).is_err());
    }

    #[tokio::test]
    async fn names_are_resolved_and_every_address_checked() {
        let strict = ReachPolicy::default();
        let err = strict.resolve("localhost", 9000).await.unwrap_err();
        assert_eq!(err.class(), crate::error::FailureClass::NotAllowed, "{err}");
        let err = strict.resolve("[::1]", 9000).await.unwrap_err();
        assert_eq!(err.class(), crate::error::FailureClass::NotAllowed, "{err}");
        let open = ReachPolicy::new(
            vec![
                Network::parse("127.0.0.0/8").unwrap(),
                Network::parse("::1").unwrap(),
            ],
            &[],
        )
        .unwrap();
        let addrs = open.resolve("localhost", 9000).await.unwrap();
        assert!(addrs
            .iter()
            .all(|a| a.port() == 9000 && a.ip().is_loopback()));
    }

    #[test]
    fn a_refusal_is_recognised_by_its_type_through_wrappers_not_by_its_words() {
        use aws_smithy_runtime_api::client::dns::ResolveDnsError;
        use std::error::Error as _;
        let refusal = || {
            ReachPolicy::default()
                .check_ip(ip("127.0.0.1"))
                .unwrap_err()
        };
        // As the S3 client's resolver hands it back, and inside an I/O error.
        let wrapped = ResolveDnsError::new(refusal());
        assert!(refused_in_chain(&wrapped));
        let io = std::io::Error::other(ResolveDnsError::new(refusal()));
        assert!(refused_in_chain(&io));
        assert!(io.source().is_some());
        // The words without the refusal, or a storage failure of another class: no.
        let worded = std::io::Error::other(format!("the address is private, {REFUSED_MARK}"));
        assert!(!refused_in_chain(&worded));
        let other = Error::unreachable(format!("cannot connect, {REFUSED_MARK}"));
        assert!(!refused_in_chain(&ResolveDnsError::new(other)));
    }
}
