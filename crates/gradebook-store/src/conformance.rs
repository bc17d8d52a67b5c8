//! The conformance suite: what every backend must do, checked through the
//! [`crate::Store`] trait only.
