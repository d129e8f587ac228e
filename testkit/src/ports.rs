//! Free loopback ports for servers that must be told their port up front.

use crate::{KitError, Result};
use std::net::TcpListener;

/// A TCP port on 127.0.0.1 that was free a moment ago. Another process may take it
/// before the server binds it; the servers retry start-up on "address in use".
pub(crate) fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| KitError::io("finding a free port on 127.0.0.1", e))
}
