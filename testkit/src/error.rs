//! The kit's one error type: a message meant for the developer reading a failed test,
//! naming the cause and the fix. It is the shape the registry and signer tools use too
//! ([`dbcrate_core::failure`]); an I/O error stays its `source()`.

pub use dbcrate_core::failure::Failure as KitError;
